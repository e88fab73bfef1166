"""The paper's Figure 4 proportions go in; every number of preferences.csv comes out exactly.

The paper labels its bars 71/14/14, 53/22/24 and 79/6/13 percent. Those cannot be rounded
shares of three answers (79 + 6 + 13 = 98 needs shares that were truncated), so the export
below uses counts whose exact shares truncate to the paper's labels: 71.2/14.4/14.4,
53.2/22.4/24.4 and 79.6/6.8/13.6 percent — 125 participants, 4 answers per question type ×
dataset, 1500 answers per question type, 500 per cell (shares of 500 are exact at 0.1 %).
"""

import math

import pandas as pd
import pytest

from analysis.report import ReportOptions, build_report
from analysis_exports import (
    design_answers, participant_row, sign_flip_p, two_sided_sign_p, write_export,
)

PARTICIPANTS = 125
CELLS = {
    ("bla_t_vs_cam", "A"): (400, 50, 50), ("bla_t_vs_cam", "B"): (356, 72, 72),
    ("bla_t_vs_cam", "C"): (312, 94, 94),
    ("bla_t_vs_l2x_f", "A"): (280, 110, 110), ("bla_t_vs_l2x_f", "B"): (266, 112, 122),
    ("bla_t_vs_l2x_f", "C"): (252, 114, 134),
    ("bla_t_vs_random", "A"): (400, 34, 66), ("bla_t_vs_random", "B"): (398, 34, 68),
    ("bla_t_vs_random", "C"): (396, 34, 70),
}
PAPER = {"bla_t_vs_cam": (71, 14, 14), "bla_t_vs_l2x_f": (53, 22, 24),
         "bla_t_vs_random": (79, 6, 13)}
POOLED_PCT = {"bla_t_vs_cam": ("71.2", "14.4", "14.4"),
              "bla_t_vs_l2x_f": ("53.2", "22.4", "24.4"),
              "bla_t_vs_random": ("79.6", "6.8", "13.6")}
OTHER = {"bla_t_vs_cam": "cam", "bla_t_vs_l2x_f": "l2x_f", "bla_t_vs_random": "random"}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("figure4")
    answers = design_answers(CELLS, PARTICIPANTS, per_cell=4)
    people = [participant_row(f"p{i:03d}") for i in range(PARTICIPANTS)]
    answers_csv, participants_csv = write_export(folder / "export", answers, people)
    build_report(answers_csv, participants_csv, folder / "out", ReportOptions(n_boot=400))
    csv = pd.read_csv(folder / "out" / "preferences.csv", dtype={"bla_t_pct": str,
                      "other_pct": str, "equal_pct": str, "difference_pct": str,
                      "ci_low": str, "ci_high": str})
    return folder / "out", csv, pd.DataFrame(answers)


def expected_rows():
    """(dataset, question type) -> counts, from CELLS, pooled rows first."""
    for question_type in PAPER:
        cells = {d: c for (q, d), c in CELLS.items() if q == question_type}
        yield "all", question_type, tuple(map(sum, zip(*cells.values())))
        for dataset, counts in cells.items():
            yield dataset, question_type, counts


def test_rows_are_one_per_question_type_then_one_per_dataset(report):
    _, csv, _ = report
    assert list(zip(csv["dataset"], csv["question_type"])) == \
        [(d, q) for d, q, _ in expected_rows()]


def test_every_count_percentage_and_test_is_exact(report):
    _, csv, answers = report
    for dataset, question_type, (bla, other, equal) in expected_rows():
        row = csv[(csv["dataset"] == dataset) & (csv["question_type"] == question_type)].iloc[0]
        n = bla + other + equal
        assert (row["bla_t"], row["other"], row["equal"], row["n_answers"]) == \
            (bla, other, equal, n)
        assert row["n_participants"] == PARTICIPANTS
        assert row["other_methods"] == OTHER[question_type]
        for column, count in (("bla_t_pct", bla), ("other_pct", other), ("equal_pct", equal)):
            assert row[column] == f"{count * 1000 // n / 10:.1f}"  # n | 1000·count here
        assert row["difference_pct"] == f"{(bla - other) * 1000 // n / 10:.1f}"
        assert row["p_value_answers_naive"] == pytest.approx(two_sided_sign_p(bla, other),
                                                             rel=1e-9, abs=0)
        assert row["cohens_h"] == pytest.approx(
            2 * math.asin(math.sqrt(bla / (bla + other))) - math.pi / 2)
        assert float(row["ci_low"]) < bla * 100 / n < float(row["ci_high"])
        cell = answers[(answers["question_type"] == question_type)
                       & ((answers["dataset"] == dataset) | (dataset == "all"))]
        per_person = pd.crosstab(cell["participant"], cell["chosen_method"])
        wins = int((per_person["bla_t"] > per_person[OTHER[question_type]]).sum())
        losses = int((per_person["bla_t"] < per_person[OTHER[question_type]]).sum())
        assert row["p_value_participants"] == pytest.approx(two_sided_sign_p(wins, losses))
        differences = (per_person["bla_t"] - per_person[OTHER[question_type]]).tolist()
        assert row["p_value"] == pytest.approx(max(sign_flip_p(differences), 1e-12), rel=1e-6)
        pooled = dataset == "all"
        assert pd.notna(row["between_datasets_p"]) == pooled
        if pooled:
            assert (row["between_datasets_df1"], row["between_datasets_df2"]) == \
                (4, PARTICIPANTS - 4)
            assert 0 <= row["between_datasets_p"] <= 1


def test_pooled_shares_truncate_to_the_papers_figure4(report):
    _, csv, _ = report
    for question_type, paper in PAPER.items():
        row = csv[(csv["dataset"] == "all") & (csv["question_type"] == question_type)].iloc[0]
        printed = (row["bla_t_pct"], row["other_pct"], row["equal_pct"])
        assert printed == POOLED_PCT[question_type]
        assert tuple(math.floor(float(p)) for p in printed) == paper


def test_figures_and_markdown_show_the_same_percentages(report):
    out, _, _ = report
    svg = (out / "figure4_preferences.svg").read_text()
    markdown = (out / "preferences.md").read_text()
    for question_type, printed in POOLED_PCT.items():
        for pct in printed:
            assert f"{pct}%" in svg
            assert f"({pct}%)" in markdown
    figure7 = (out / "figure7_preferences_by_dataset.svg").read_text()
    for counts in CELLS.values():
        for count in counts:
            assert f"{count / 5:.1f}%" in figure7
