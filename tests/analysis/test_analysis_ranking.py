"""ranking.csv: Davidson's Bradley–Terry model with ties, checked against hand-computed fits,
simulated exports with known strengths, a disconnected design and an unbounded likelihood."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

from analysis.comparisons import oriented
from analysis.io import load_export
from analysis.ranking import rank_methods
from analysis.report import ReportOptions, build_report
from analysis.vocabulary import RANKING_COLUMNS
from comparison_exports import (
    comparison_answer, contender, davidson_probabilities, simulated_answers,
    write_comparison_export,
)

TRUTH = {"bla_t": 0.9, "grad_cam": 0.3, "integrated_gradients": -0.1, "cam": -0.4,
         "random(bla_t)": -0.7}  # sums to 0, as the fit is centred
METHODS = ["bla_t", "grad_cam", "integrated_gradients", "cam"]
ALL_PAIRS = [(a, b) for i, a in enumerate(METHODS) for b in METHODS[i + 1:]] + [
    ("bla_t", "random")]
TIE = 0.6


def ranking_of(tmp_path, answers, n_boot=50, seed=0, confidence=0.95):
    export = load_export(*write_comparison_export(tmp_path, answers))
    return rank_methods(oriented(export.answers), n_boot, seed, confidence)


def dealt(method_1, method_2, results, start=0):
    """Answers with the given results, dealt round-robin to three participants, sides mixed."""
    return [comparison_answer(f"p{(start + k) % 3}", start + k + 1, method_1, method_2, result,
                              method_1_side="AB"[k % 2])
            for k, result in enumerate(results)]


def test_two_methods_match_the_closed_form(tmp_path):
    # Two methods: the model is saturated, so the fit reproduces the observed shares:
    # exp(θ1 − θ2) = W / L and ν = T / √(W·L); centred, θ1 = −θ2 = ½ ln(W / L).
    answers = dealt("grad_cam", "cam", ["1"] * 6 + ["2"] * 2 + ["equal"] * 3)
    ranking = ranking_of(tmp_path, answers)
    table = ranking.table.set_index("method")
    assert table.loc["grad_cam", "strength"] == pytest.approx(0.5 * math.log(3), abs=1e-9)
    assert table.loc["cam", "strength"] == pytest.approx(-0.5 * math.log(3), abs=1e-9)
    assert ranking.fit.tie == pytest.approx(3 / math.sqrt(12), abs=1e-9)
    assert list(ranking.table["method"]) == ["grad_cam", "cam"]
    assert list(table["rank"]) == [1, 2] and list(table["n_answers"]) == [11, 11]
    assert list(ranking.table.columns) == list(RANKING_COLUMNS)
    # Three participants: some resamples hold no cam answer chosen; those replicates are skipped.
    assert all("bootstrap replicates of the ranking were skipped" in w for w in ranking.warnings)


def test_without_equal_answers_it_is_the_plain_bradley_terry_model(tmp_path):
    answers = dealt("lime", "random", ["1"] * 7 + ["2"] * 2)
    ranking = ranking_of(tmp_path, answers)
    table = ranking.table.set_index("method")
    assert ranking.fit.tie == 0.0
    assert table.loc["lime", "strength"] == pytest.approx(0.5 * math.log(7 / 2), abs=1e-9)
    assert table.loc["random(lime)", "strength"] == pytest.approx(-0.5 * math.log(7 / 2),
                                                                  abs=1e-9)


def test_three_methods_maximise_davidsons_likelihood(tmp_path):
    counts = {("bla_t", "cam"): (5, 2, 2), ("cam", "l2x_f"): (3, 3, 1),
              ("bla_t", "l2x_f"): (2, 4, 3)}
    answers, start = [], 0
    for (a, b), (w, l, t) in counts.items():
        answers += dealt(a, b, ["1"] * w + ["2"] * l + ["equal"] * t, start)
        start += w + l + t
    ranking = ranking_of(tmp_path, answers)
    names = ["bla_t", "cam", "l2x_f"]

    def negative_loglik(x):  # θ of cam and l2x_f against bla_t = 0, then log ν
        theta = dict(zip(names, [0.0, x[0], x[1]]))
        return -sum(n * math.log(p) for (a, b), outcome in counts.items()
                    for n, p in zip(outcome, davidson_probabilities(theta[a], theta[b],
                                                                    math.exp(x[2]))))
    best = optimize.minimize(negative_loglik, np.zeros(3), method="Nelder-Mead",
                             options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20_000}).x
    theta = np.array([0.0, best[0], best[1]])
    expected = dict(zip(names, theta - theta.mean()))
    fitted = ranking.table.set_index("method")["strength"]
    for name in names:
        assert fitted[name] == pytest.approx(expected[name], abs=1e-6)
    assert ranking.fit.tie == pytest.approx(math.exp(best[2]), rel=1e-6)


def test_a_large_simulated_export_recovers_the_strengths(tmp_path):
    answers = simulated_answers(TRUTH, TIE, ALL_PAIRS, n_participants=300, per_pair=10, seed=7)
    ranking = ranking_of(tmp_path, answers, n_boot=100)
    table = ranking.table.set_index("method")
    errors = np.array([table.loc[name, "strength"] - theta for name, theta in TRUTH.items()])
    assert np.abs(errors).max() < 0.1 and np.abs(errors).mean() < 0.05  # 21,000 answers
    assert list(ranking.table["method"]) == sorted(TRUTH, key=TRUTH.get, reverse=True)
    assert list(ranking.table["rank"]) == [1, 2, 3, 4, 5]
    assert ranking.fit.tie == pytest.approx(TIE, abs=0.05)
    assert table.loc["random(bla_t)", "n_answers"] == 300 * 10
    assert table.loc["bla_t", "n_answers"] == 300 * 10 * 4


def test_bootstrap_intervals_cover_the_true_strengths(tmp_path):
    # 20 seeded studies of 40 participants; 90% intervals of 5 strengths each.
    covered = []
    for seed in range(20):
        answers = simulated_answers(TRUTH, TIE, ALL_PAIRS, n_participants=40, per_pair=3,
                                    seed=100 + seed)
        export = load_export(*write_comparison_export(tmp_path / str(seed), answers))
        table = rank_methods(oriented(export.answers), n_boot=100, seed=seed,
                             confidence=0.9).table.set_index("method")
        covered += [table.loc[m, "ci_low"] <= theta <= table.loc[m, "ci_high"]
                    for m, theta in TRUTH.items()]
    assert 0.8 <= np.mean(covered) <= 0.98, np.mean(covered)


def test_the_bootstrap_is_seeded(tmp_path):
    answers = simulated_answers(TRUTH, TIE, ALL_PAIRS, n_participants=20, per_pair=2, seed=3)
    first = ranking_of(tmp_path / "a", answers, n_boot=60, seed=5).table
    again = ranking_of(tmp_path / "b", answers, n_boot=60, seed=5).table
    other = ranking_of(tmp_path / "c", answers, n_boot=60, seed=6).table
    pd.testing.assert_frame_equal(first, again)
    assert not first["ci_low"].equals(other["ci_low"])
    assert first["strength"].equals(other["strength"])


def test_a_disconnected_design_is_reported_and_ranks_are_not_written(tmp_path):
    answers = (dealt("bla_t", "cam", ["1"] * 4 + ["2"] * 2)
               + dealt("lime", "saliency", ["1"] * 1 + ["2"] * 3, start=6))
    result = build_report(*write_comparison_export(tmp_path / "export", answers),
                          tmp_path / "out", ReportOptions(n_boot=30))
    warning = ("the comparison graph is not connected: 2 groups of methods were never compared "
               "with each other ({bla_t, cam}; {lime, saliency})")
    assert any(w.startswith(warning) for w in result.warnings)
    written = pd.read_csv(tmp_path / "out" / "ranking.csv", keep_default_na=False)
    assert list(written.columns) == list(RANKING_COLUMNS)
    assert (written["rank"] == "").all()
    strength = written.set_index("method")["strength"].astype(float)
    # No 'equal' answers (ν is shared by all groups): each group is its own closed form, centred.
    assert strength["bla_t"] == pytest.approx(0.5 * math.log(2), abs=1e-9)
    assert strength["cam"] == pytest.approx(-0.5 * math.log(2), abs=1e-9)
    assert strength["lime"] == pytest.approx(-0.5 * math.log(3), abs=1e-9)
    assert warning in (tmp_path / "out" / "comparisons.md").read_text()
    assert "not connected" in (tmp_path / "out" / "report.html").read_text()


def test_a_method_chosen_in_every_answer_has_no_finite_strength(tmp_path):
    answers = dealt("bla_t", "cam", ["1"] * 5) + dealt("cam", "lime", ["1", "2", "2"], start=5)
    ranking = ranking_of(tmp_path, answers)
    assert ranking.fit is None
    assert ranking.table["strength"].isna().all() and ranking.table["rank"].isna().all()
    assert list(ranking.table["n_answers"]) == [5, 8, 3]  # bla_t, cam, lime (by name)
    assert any("no finite maximum" in w for w in ranking.warnings)


def test_ties_bound_a_method_that_never_lost(tmp_path):
    # bla_t is never chosen less than cam, but two of its answers are 'equal'; with ν pinned
    # by the decisive cam/lime answers the likelihood has a finite maximum.
    answers = dealt("bla_t", "cam", ["1"] * 5 + ["equal"] * 2) + dealt(
        "cam", "lime", ["1", "2", "2"], start=7)
    ranking = ranking_of(tmp_path, answers)
    assert ranking.fit is not None and np.isfinite(ranking.table["strength"]).all()
    assert list(ranking.table["method"]) == ["bla_t", "lime", "cam"]


def test_random_controls_are_contenders_of_their_own():
    assert contender("grad_cam", "random") == "random(grad_cam)"
    assert contender("grad_cam", "cam") == "cam"
