"""An adaptive design's inverse-probability weights (answers.csv's ``design_weight``) in every
preference estimate, checked by hand; a balanced export gives exactly today's numbers; the
failed-check rule of export_manifest.json; the Wilson interval at the clustered effective n."""

import html
import json
import math

import numpy as np
import pandas as pd
import pytest

from analysis.comparisons import comparison_table, oriented
from analysis.io import InputError, load_export
from analysis.ranking import rank_methods
from analysis.report import ReportOptions, build_report
from analysis.statistics import sampled_sign_flip_test, sign_flip_test
from analysis_exports import (
    answer_row, check_row, design_answers, participant_row, sign_flip_p, write_csv, write_export,
)
from contracts.columns import (
    DESIGN_WEIGHT, OPTIONAL_ANSWER_COLUMNS, PARTICIPANT_COLUMNS, REQUIRED_ANSWER_COLUMNS,
)

WEIGHTED_SENTENCE = "Adaptive design: estimates inverse-probability weighted"


def weighted_export(folder, answers: list[dict], weights: dict[str, str],
                    participants: list[str] | None = None):
    """answers.csv with a design_weight column (each participant's weight; '' for checks)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{**row, DESIGN_WEIGHT: row.get(DESIGN_WEIGHT, weights.get(row["participant"], ""))}
            for row in answers]
    names = participants or sorted({row["participant"] for row in answers})
    columns = (*REQUIRED_ANSWER_COLUMNS, *(c for c in OPTIONAL_ANSWER_COLUMNS if c != DESIGN_WEIGHT
                                           and any(c in row for row in answers)), DESIGN_WEIGHT)
    return (write_csv(folder / "answers.csv", columns, rows),
            write_csv(folder / "participants.csv", PARTICIPANT_COLUMNS,
                      [participant_row(name) for name in names]))


def two_people() -> list[dict]:
    """p1 (weight 2): BLA-T, other; p2 (weight 0.5): BLA-T, BLA-T — bla_t_vs_cam, dataset A."""
    return [answer_row("p1", 1, "bla_t_vs_cam", "A", "bla_t"),
            answer_row("p1", 2, "bla_t_vs_cam", "A", "other", "B"),
            answer_row("p2", 1, "bla_t_vs_cam", "A", "bla_t", "B"),
            answer_row("p2", 2, "bla_t_vs_cam", "A", "bla_t")]


def test_a_missing_column_reads_as_weight_one_and_an_empty_check_weight_is_allowed(tmp_path):
    export = load_export(*write_export(tmp_path / "old", two_people(),
                                       [participant_row("p1"), participant_row("p2")]))
    assert export.answers[DESIGN_WEIGHT].tolist() == [1.0] * 4
    rows = two_people() + [check_row("p1", 3, "equal")]
    export = load_export(*weighted_export(tmp_path / "new", rows, {"p1": "2", "p2": "0.5"}))
    assert export.answers[DESIGN_WEIGHT].tolist() == [2.0, 2.0, 0.5, 0.5]
    assert len(export.checks) == 1


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "two", ""])
def test_a_weight_that_is_not_a_finite_positive_number_is_one_clear_error(tmp_path, value):
    rows = two_people()
    rows[2] = {**rows[2], DESIGN_WEIGHT: value}
    paths = weighted_export(tmp_path, rows, {"p1": "2", "p2": "0.5"})
    with pytest.raises(InputError) as caught:
        load_export(*paths)
    assert str(caught.value) == (
        f"{paths[0]}, data row 3, column 'design_weight': {value!r} is not a design weight "
        "(a finite number above 0; 1 in a balanced design)")


def test_two_participants_with_weights_2_and_half_give_the_exact_weighted_share(tmp_path):
    # p1: (a, n) = (1, 2) × 2 = (2, 4); p2: (2, 2) × 0.5 = (1, 1): share 3/5, not the raw 3/4.
    export = load_export(*weighted_export(tmp_path, two_people(), {"p1": "2", "p2": "0.5"}))
    table = comparison_table(oriented(export.answers), n_boot=500, seed=0)
    row = table.set_index("dataset").loc["all"]
    assert (row["n_answers"], row["method_1_count"], row["method_2_count"]) == (4, 3, 1)
    assert (row["method_1_pct"], row["method_2_pct"], row["equal_pct"]) == ("60.0", "40.0", "0.0")
    assert row["weighted_n_answers"] == 5.0
    # The bootstrap draws both, one or the other person: shares 3/5, 1/2 (p1 twice), 1 (p2).
    assert (float(row["ci_low"]), float(row["ci_high"])) == (50.0, 100.0)
    # Weighted differences 2 · (1 − 1) = 0 and 0.5 · (2 − 0) = 1: one sign, p = 1.
    assert row["p_value"] == 1.0


def test_a_weight_counts_as_that_many_copies_of_the_participant_in_the_ranking(tmp_path):
    people = 6
    rows = design_answers({("bla_t_vs_cam", "A"): (8, 3, 1), ("bla_t_vs_l2x_f", "A"): (5, 5, 2),
                           ("bla_t_vs_random", "A"): (9, 2, 1)}, people, 2)
    doubled = rows + [{**row, "participant": "p000b"}
                      for row in rows if row["participant"] == "p000"]
    weights = {f"p{i:03d}": "2" if i == 0 else "1" for i in range(people)}
    weighted = load_export(*weighted_export(tmp_path / "w", rows, weights))
    copied = load_export(*write_export(tmp_path / "c", doubled, [
        participant_row(name) for name in sorted({row["participant"] for row in doubled})]))
    fit_w = rank_methods(oriented(weighted.answers), n_boot=50, seed=0)
    fit_c = rank_methods(oriented(copied.answers), n_boot=50, seed=0)
    assert fit_w.table["strength"].to_numpy() == pytest.approx(fit_c.table["strength"].to_numpy())
    assert list(fit_w.table["method"]) == list(fit_c.table["method"])
    assert fit_w.table["n_answers"].sum() == 2 * len(rows)  # the answers given, unweighted
    assert fit_w.chosen.to_numpy() == pytest.approx(fit_c.chosen.to_numpy())
    table_w = comparison_table(oriented(weighted.answers), n_boot=50)
    table_c = comparison_table(oriented(copied.answers), n_boot=50)
    assert list(table_w["method_1_pct"]) == list(table_c["method_1_pct"])


def test_a_balanced_export_gives_bit_identical_results_with_or_without_the_column(tmp_path):
    cells = {("bla_t_vs_cam", "A"): (12, 5, 3), ("bla_t_vs_cam", "B"): (9, 9, 2),
             ("bla_t_vs_random", "A"): (14, 4, 2), ("bla_t_vs_l2x_f", "B"): (7, 10, 3)}
    rows = design_answers(cells, 10, 2)
    names = sorted({row["participant"] for row in rows})
    old = build_report(*write_export(tmp_path / "old", rows, [participant_row(n) for n in names]),
                       tmp_path / "old_out", ReportOptions(n_boot=300, seed=3))
    new = build_report(*weighted_export(tmp_path / "new", rows, dict.fromkeys(names, "1")),
                       tmp_path / "new_out", ReportOptions(n_boot=300, seed=3))
    pd.testing.assert_frame_equal(old.table, new.table, check_exact=True)
    pd.testing.assert_frame_equal(old.comparisons, new.comparisons, check_exact=True)
    pd.testing.assert_frame_equal(old.ranking.table, new.ranking.table, check_exact=True)
    for name in ("comparisons.csv", "preferences.csv", "ranking.csv", "comparisons.md",
                 "preferences.md"):
        old_file, new_file = tmp_path / "old_out" / name, tmp_path / "new_out" / name
        assert old_file.read_bytes() == new_file.read_bytes()
    assert WEIGHTED_SENTENCE not in (tmp_path / "new_out" / "comparisons.md").read_text()


def test_a_weighted_report_says_so_and_weights_the_paper_table(tmp_path):
    rows = design_answers({("bla_t_vs_cam", "A"): (6, 2, 0)}, 4, 2)
    weights = {"p000": "2", "p001": "0.5", "p002": "1", "p003": "1"}
    result = build_report(*weighted_export(tmp_path / "export", rows, weights), tmp_path / "out",
                          ReportOptions(n_boot=200))
    for name in ("comparisons.md", "preferences.md", "report.html"):
        assert WEIGHTED_SENTENCE in (tmp_path / "out" / name).read_text()
    answers = pd.DataFrame(rows).assign(w=lambda d: d["participant"].map(weights).astype(float))
    bla = answers.loc[answers["chosen_method"] == "bla_t", "w"].sum()
    row = result.table.set_index("dataset").loc["all"]
    assert row["bla_t"] == 6 and row["n_answers"] == 8
    assert float(row["bla_t_pct"]) == pytest.approx(100 * bla / answers["w"].sum(), abs=0.05)
    assert "weighted_bla_t" not in pd.read_csv(tmp_path / "out" / "preferences.csv").columns


def test_the_sign_flip_test_of_weighted_differences_matches_enumeration():
    assert sampled_sign_flip_test(np.array([1.5, 0.5])) == pytest.approx(0.5, abs=0.01)
    differences = [2.0, -0.5, 1.5, 3.0, 0.5, 1.0, -1.5, 2.5]
    expected = sign_flip_p([round(2 * d) for d in differences])  # the same test, doubled
    assert sign_flip_test(np.array(differences)) == pytest.approx(expected, abs=0.01)
    assert sign_flip_test(np.array([2.0, 1.0, -1.0])) == sign_flip_test(np.array([2, 1, -1]))
    assert math.isnan(sampled_sign_flip_test(np.zeros(3)))


def with_checks(tmp_path, manifest: dict | None):
    """p0 and p1 each fail one attention check, p2 none."""
    rows = design_answers({("bla_t_vs_cam", "A"): (4, 1, 1)}, 3, 2)
    rows += [check_row("p000", 10, "A"), check_row("p001", 10, "B"), check_row("p002", 10, "equal")]
    paths = write_export(tmp_path, rows, [participant_row(f"p{i:03d}") for i in range(3)])
    if manifest is not None:
        (tmp_path / "export_manifest.json").write_text(json.dumps(manifest))
    return paths


@pytest.mark.parametrize("manifest, explicit, counted, rule", [
    (None, None, 1, "the analysis default"),
    ({"max_failed_checks": 1, "design": "adaptive"}, None, 3,
     "the study's rule (export_manifest.json)"),
    ({"max_failed_checks": 1}, 0, 1, "--max-failed-checks"),
    ({"files": {}}, None, 1, "the analysis default"),
])
def test_the_manifest_rule_for_failed_checks_is_the_default(tmp_path, manifest, explicit,
                                                            counted, rule):
    result = build_report(*with_checks(tmp_path / "export", manifest), tmp_path / "out",
                          ReportOptions(n_boot=50, max_failed_checks=explicit))
    assert len(result.selection.participants) == counted
    assert result.selection.max_failed_rule == rule
    assert html.escape(f"failed attention check(s) ({rule})") in (
        tmp_path / "out" / "report.html").read_text()


def test_a_bad_manifest_rule_is_one_clear_error(tmp_path):
    paths = with_checks(tmp_path, {"max_failed_checks": -1})
    with pytest.raises(InputError, match=r"export_manifest.json, key 'max_failed_checks': -1 is "
                                         "not a whole number 0 or above"):
        load_export(*paths)
