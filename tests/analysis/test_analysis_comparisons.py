"""comparisons.csv: every comparison of any two methods, counted by hand, with the
participant-clustered tests; exports of any methods load; a study without BLA-T has no
preferences.csv."""

import re

import pandas as pd
import pytest

from analysis.comparisons import comparison_table, oriented
from analysis.io import InputError, load_export
from analysis.report import ReportOptions, build_report
from analysis.vocabulary import COMPARISON_COLUMNS
from analysis_exports import sign_flip_p
from comparison_exports import comparison_answer, write_comparison_export

# Per participant (method 1 chosen, method 2 chosen, equal) in dataset A, then in dataset B.
DESIGN = {
    ("grad_cam", "cam"): {"p0": ((3, 0, 1), (1, 1, 0)), "p1": ((2, 1, 0), (2, 0, 0)),
                          "p2": ((0, 2, 1), (1, 0, 1))},
    ("lime", "random"): {"p0": ((2, 0, 0), (1, 0, 0)), "p1": ((1, 1, 0), (2, 0, 1)),
                         "p2": ((3, 0, 0), (0, 0, 1))},
}


def design_answers() -> list[dict]:
    rows, positions = [], {}
    for (method_1, method_2), people in DESIGN.items():
        for person, per_dataset in people.items():
            for dataset, counts in zip("AB", per_dataset):
                for result, count in zip(("1", "2", "equal"), counts):
                    for _ in range(count):
                        positions[person] = positions.get(person, 0) + 1
                        rows.append(comparison_answer(
                            person, positions[person], method_1, method_2, result, dataset,
                            "AB"[positions[person] % 2]))
    return rows


@pytest.fixture
def table(tmp_path):
    export = load_export(*write_comparison_export(tmp_path, design_answers()))
    return comparison_table(oriented(export.answers), n_boot=200, seed=1)


def test_every_comparison_is_counted_by_hand(table):
    assert list(table.columns) == list(COMPARISON_COLUMNS)
    rows = table.set_index(["question_type", "dataset"])
    pooled = rows.loc[("grad_cam_vs_cam", "all")]
    assert (pooled["method_1"], pooled["method_2"]) == ("grad_cam", "cam")
    assert (pooled["n_answers"], pooled["n_participants"]) == (16, 3)
    assert (pooled["method_1_count"], pooled["method_2_count"], pooled["equal"]) == (9, 4, 3)
    assert (pooled["method_1_pct"], pooled["method_2_pct"], pooled["equal_pct"]) == (
        "56.2", "25.0", "18.8")  # 9/16 = 56.25 rounds half to even
    control = rows.loc[("lime_vs_random", "B")]
    assert (control["method_1"], control["method_2"]) == ("lime", "random(lime)")
    assert (control["method_1_count"], control["method_2_count"], control["equal"]) == (3, 0, 2)
    assert list(table["dataset"]) == ["all", "A", "B", "all", "A", "B"]


def test_p_values_are_participant_sign_flips_with_holm_per_dataset_row(table):
    rows = table.set_index(["question_type", "dataset"])
    # grad_cam − cam per participant, pooled: p0 4 − 1, p1 4 − 1, p2 1 − 2.
    p_cam = sign_flip_p([3, 3, -1])
    p_random = sign_flip_p([3, 2, 3])  # lime − random(lime): p0 3, p1 2, p2 3
    assert rows.loc[("grad_cam_vs_cam", "all"), "p_value"] == pytest.approx(p_cam)
    assert rows.loc[("lime_vs_random", "all"), "p_value"] == pytest.approx(p_random)
    low, high = sorted([p_cam, p_random])
    holm = {low: min(1.0, 2 * low), high: max(min(1.0, 2 * low), high)}
    assert rows.loc[("grad_cam_vs_cam", "all"), "p_value_holm"] == pytest.approx(holm[p_cam])
    assert rows.loc[("lime_vs_random", "all"), "p_value_holm"] == pytest.approx(holm[p_random])
    a = sign_flip_p([3, 1, -2])  # dataset A only: its own family of two
    assert rows.loc[("grad_cam_vs_cam", "A"), "p_value"] == pytest.approx(a)


def test_the_interval_is_the_method_1_share_with_the_point_inside(table):
    for row in table.itertuples():
        share = 100 * row.method_1_count / row.n_answers
        assert float(row.ci_low) <= share <= float(row.ci_high)


def test_the_papers_stand_in_is_its_own_comparison(tmp_path):
    answers = [comparison_answer("p0", 1, "bla_t", "cam", "1"),
               comparison_answer("p0", 2, "bla_t", "grad_cam", "2")]
    answers[1]["question_type"] = "bla_t_vs_cam"  # the paper showed Grad-CAM where CAM had none
    answers[1]["pair_id"] = "x"
    export = load_export(*write_comparison_export(tmp_path, answers))
    table = comparison_table(oriented(export.answers), n_boot=20)
    pooled = table[table["dataset"] == "all"]
    assert list(zip(pooled["method_1"], pooled["method_2"], pooled["method_2_count"])) == [
        ("bla_t", "cam", 0), ("bla_t", "grad_cam", 1)]


@pytest.mark.parametrize(("change", "says"), [
    ({"question_type": "cam_vs_lime"},
     "methods 'grad_cam' and 'lime' do not form question type 'cam_vs_lime'"),
    ({"question_type": "random_vs_cam"}, "'random' can only be the second side"),
    ({"question_type": "cam_vs_cam"}, "a comparison needs two different methods"),
])
def test_answers_that_do_not_form_their_comparison_are_one_clear_error(tmp_path, change, says):
    answers = [comparison_answer("p0", 1, "grad_cam", "lime", "1")]
    answers[0].update(change)
    with pytest.raises(InputError) as caught:
        load_export(*write_comparison_export(tmp_path, answers))
    assert "data row 1" in str(caught.value) and says in str(caught.value)


def test_a_study_without_bla_t_has_comparisons_and_a_ranking_but_no_paper_table(tmp_path):
    result = build_report(*write_comparison_export(tmp_path / "export", design_answers()),
                          tmp_path / "out", ReportOptions(n_boot=30))
    names = {path.name for path in result.files}
    assert {"comparisons.csv", "comparisons.md", "ranking.csv", "ranking_strengths.svg",
            "preference_matrix.svg", "report.html"} <= names
    assert not names & {"preferences.csv", "preferences.md", "figure4_preferences.png"}
    written = pd.read_csv(tmp_path / "out" / "comparisons.csv", keep_default_na=False)
    assert list(written.columns) == list(COMPARISON_COLUMNS) and len(written) == 6
    assert "the comparison graph is not connected" in " ".join(result.warnings)
    markdown = (tmp_path / "out" / "comparisons.md").read_text()
    assert "| all | grad_cam_vs_cam | Grad-CAM | CAM | 16 | 3 | 9 (56.2%) |" in markdown
    assert "Random (LIME)" in markdown and "Davidson" in markdown
    matrix = (tmp_path / "out" / "preference_matrix.svg").read_text()
    assert "56.2%" in matrix and "25.0%" in matrix  # grad_cam over cam, cam over grad_cam
    # The position trend counts each comparison's method 1: 9 grad_cam of 16 + 9 lime of 12.
    page = re.sub(r"\s+", " ", (tmp_path / "out" / "report.html").read_text())
    quarters = re.findall(r"<tr><td>[1-4]</td><td>(\d+)</td><td>(\d+)</td>", page)
    assert [sum(int(q[k]) for q in quarters) for k in (0, 1)] == [28, 18]
