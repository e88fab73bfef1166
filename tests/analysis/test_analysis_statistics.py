"""Statistics on tiny hand-built inputs, checked against hand-computed values."""

import math

import numpy as np
import pandas as pd
import pytest

from analysis_exports import (
    answer_row, participant_row, sign_flip_p, two_sided_sign_p, write_export,
)
from null_simulation import simulate
from analysis.io import load_export
from analysis.percentages import format_percent
from analysis.selection import select
from analysis.statistics import (
    between_datasets_test, cluster_bootstrap_ci, cohens_h, count_tensor, holm,
    participant_sign_test, preference_table, sign_flip_test, sign_test,
)


@pytest.mark.parametrize(("count", "total", "decimals", "expected"), [
    (1, 8, 1, "12.5"), (1, 16, 1, "6.2"), (3, 16, 1, "18.8"), (1, 8, 0, "12"), (3, 8, 0, "38"),
    (2, 3, 1, "66.7"), (1, 3, 2, "33.33"), (7, 7, 1, "100.0"), (0, 5, 1, "0.0"), (1, 0, 1, ""),
    (-1, 8, 1, "-12.5"),
])
def test_percentages_round_the_exact_fraction_half_to_even(count, total, decimals, expected):
    assert format_percent(count, total, decimals) == expected


@pytest.mark.parametrize(("wins", "losses"), [(9, 1), (1, 9), (5, 5), (30, 12), (0, 4)])
def test_sign_test_is_the_exact_binomial(wins, losses):
    assert sign_test(wins, losses) == pytest.approx(two_sided_sign_p(wins, losses), rel=1e-12)


def test_sign_test_without_decisive_answers_is_undefined():
    assert math.isnan(sign_test(0, 0))
    assert math.isnan(cohens_h(0, 0))


def test_participant_sign_test_counts_each_person_once_and_drops_ties():
    bla = np.array([4, 3, 2, 0, 1])
    other = np.array([0, 1, 2, 1, 0])  # BLA-T wins for 3 people, loses for 1, 1 tie
    assert participant_sign_test(bla, other) == pytest.approx(two_sided_sign_p(3, 1))


def test_cohens_h_against_no_preference():
    assert cohens_h(1, 1) == pytest.approx(0.0, abs=1e-12)
    assert cohens_h(3, 1) == pytest.approx(2 * math.asin(math.sqrt(0.75)) - math.pi / 2)
    assert cohens_h(1, 0) == pytest.approx(math.pi / 2)


def test_count_tensor_counts_every_answer_in_its_cell():
    counts = count_tensor(np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 0]),
                          np.array([0, 2, 1, 1, 0]), 2, 2)
    assert counts.shape == (2, 2, 3)
    assert counts[0, 0].tolist() == [1, 0, 0] and counts[0, 1].tolist() == [0, 0, 1]
    assert counts[1, 1].tolist() == [0, 2, 0] and counts[1, 0].tolist() == [1, 0, 0]


def test_bootstrap_of_two_opposite_participants_spans_their_shares():
    # Resampling 2 people: shares 0, 1/2, 1 with probability 1/4, 1/2, 1/4.
    hits, totals = np.array([[4], [0]]), np.array([[4], [4]])
    wide = cluster_bootstrap_ci(hits, totals, 4000, np.random.default_rng(0), 0.95)
    narrow = cluster_bootstrap_ci(hits, totals, 4000, np.random.default_rng(0), 0.40)
    assert wide.tolist() == [[0.0, 1.0]]
    assert narrow.tolist() == [[0.5, 0.5]]


def test_bootstrap_collapses_when_every_participant_agrees():
    hits = np.array([[3, 1], [3, 1], [3, 1]])
    totals = np.array([[4, 2], [4, 2], [4, 2]])
    ci = cluster_bootstrap_ci(hits, totals, 300, np.random.default_rng(5))
    assert ci == pytest.approx(np.array([[0.75, 0.75], [0.5, 0.5]]))


def test_bootstrap_is_deterministic_for_a_seed():
    rng = np.random.default_rng(3)
    hits = rng.integers(0, 5, size=(50, 3))
    totals = hits + rng.integers(0, 5, size=(50, 3))
    first = cluster_bootstrap_ci(hits, totals, 500, np.random.default_rng(7))
    second = cluster_bootstrap_ci(hits, totals, 500, np.random.default_rng(7))
    assert np.array_equal(first, second)
    share = hits.sum(0) / totals.sum(0)
    assert np.all((first[:, 0] < share) & (share < first[:, 1]))


def test_between_datasets_test_matches_the_hand_computed_statistic():
    # One answer per participant, so the sandwich covariance is the multinomial one times 6/5:
    # dataset 0 answers (bla, bla, other), dataset 1 (other, equal, bla) → Wald W = 10/7 with
    # k = 2; adjusted F = (5 − 2 + 1) · W / (2 · 5) = 4/7 on (2, 4); P(F(2,4) > x) = (1+x/2)^−2.
    counts = np.zeros((6, 2, 3), dtype=int)
    for person, outcome in enumerate([0, 0, 1, 1, 2, 0]):
        counts[person, person // 3, outcome] = 1
    test = between_datasets_test(counts)
    assert (test.df1, test.df2) == (2, 4)
    assert test.f == pytest.approx(4 / 7)
    assert test.p_value == pytest.approx(49 / 81)


def test_between_datasets_test_needs_two_datasets_and_variation():
    one_dataset = np.ones((5, 1, 3), dtype=int)
    assert between_datasets_test(one_dataset) is None
    identical = np.zeros((4, 2, 3), dtype=int)
    identical[:, :, 0] = 2  # everybody always chose BLA-T
    assert math.isnan(between_datasets_test(identical).p_value)


def test_between_datasets_test_keeps_its_level_with_clustered_answers():
    # Under "no dataset effect", with strongly person-specific preferences, p < 0.05 should
    # happen about 5% of the time.
    rng = np.random.default_rng(11)
    people, datasets, per_cell, runs = 40, 3, 4, 400
    person = np.repeat(np.arange(people), datasets * per_cell)
    dataset = np.tile(np.repeat(np.arange(datasets), per_cell), people)
    rejected = 0
    for _ in range(runs):
        preference = rng.dirichlet([1, 1, 1], size=people).cumsum(axis=1)
        draws = rng.random((people, datasets * per_cell))
        outcome = (draws[:, :, None] > preference[:, None, :]).sum(axis=2).ravel()
        counts = count_tensor(person, dataset, outcome, people, datasets)
        rejected += between_datasets_test(counts).p_value < 0.05
    assert 0.02 <= rejected / runs <= 0.09


def test_between_datasets_test_finds_a_real_difference():
    counts = np.zeros((30, 2, 3), dtype=int)
    counts[:, 0, 0], counts[:, 0, 1] = 3, 1   # dataset 0: BLA-T 75 %
    counts[:, 1, 0], counts[:, 1, 1] = 1, 3   # dataset 1: BLA-T 25 %
    counts[::2, 1, 0], counts[::2, 1, 1] = 2, 2
    assert between_datasets_test(counts).p_value < 1e-6


@pytest.mark.parametrize(("differences", "expected"), [
    ([3, 1, 1], 2 / 8),             # only the two all-same-sign flips reach |5|
    ([2, 2, 2, -2], 10 / 16),       # sum 4: sign sums ±4 (2 ways) or ±2 (8 ways) of 16
    ([3, -1, -1], 1.0),             # sum 1: every flip gives |sum| ≥ 1
    ([0, 4, 0], 1.0),               # one decisive participant: either sign is as extreme
    ([5, 5, 5, 5, 5, 5], 2 / 64),
])
def test_sign_flip_test_matches_hand_counted_flips(differences, expected):
    assert sign_flip_test(np.array(differences)) == pytest.approx(expected, rel=1e-12)


def test_sign_flip_test_matches_enumeration_on_a_mixed_sample():
    differences = np.random.default_rng(4).integers(-4, 6, size=40)
    expected = sign_flip_p(differences.tolist())
    assert 0.001 < expected < 0.9  # a p-value that tells a wrong answer from a right one
    assert sign_flip_test(differences) == pytest.approx(expected, rel=1e-9)


def test_sign_flip_test_without_decisive_participants_is_undefined():
    assert math.isnan(sign_flip_test(np.array([0, 0, 0])))


def test_holm_adjusts_one_family_and_leaves_undefined_values_out():
    adjusted = holm(pd.Series([0.01, 0.04, math.nan, 0.03]))
    assert adjusted[[0, 1, 3]].tolist() == pytest.approx([0.03, 0.06, 0.06])
    assert math.isnan(adjusted[2])


def crafted_answers() -> pd.DataFrame:
    """8 people always choose BLA-T; 40 slightly prefer CAM (5 BLA-T, 6 CAM, 1 equal of 12)."""
    rows = []
    for i in range(48):
        outcomes = ["bla_t"] * 12 if i < 8 else ["bla_t"] * 5 + ["other"] * 6 + ["equal"]
        rows += [answer_row(f"p{i:02d}", k + 1, "bla_t_vs_cam", "A", outcome,
                            "A" if k % 2 else "B") for k, outcome in enumerate(outcomes)]
    return pd.DataFrame(rows)


def test_a_few_enthusiasts_do_not_make_the_headline_test_significant(tmp_path):
    people = [participant_row(f"p{i:02d}") for i in range(48)]
    export = load_export(*write_export(tmp_path, crafted_answers().to_dict("records"), people))
    row = preference_table(select(export).answers, n_boot=100).iloc[0]
    assert (row["bla_t"], row["other"]) == (8 * 12 + 40 * 5, 40 * 6)   # 296 vs 240
    assert row["p_value_answers_naive"] == pytest.approx(two_sided_sign_p(296, 240))
    assert row["p_value_answers_naive"] < 0.05                          # naive: "BLA-T wins"
    assert row["p_value"] == pytest.approx(sign_flip_p([12] * 8 + [-1] * 40), rel=1e-9)
    assert row["p_value"] > 0.05                                        # participants: no
    assert row["p_value_holm"] == row["p_value"]                        # one question type
    assert row["p_value_participants"] == pytest.approx(two_sided_sign_p(8, 40))


def test_headline_test_keeps_its_level_when_people_differ_in_taste():
    rates = simulate(runs=400, participants=62, answers=12, seed=1)
    assert 0.02 <= rates["sign_flip"] <= 0.085
    assert rates["naive_answers"] >= 0.25
    assert rates["participant_sign"] <= 0.085
