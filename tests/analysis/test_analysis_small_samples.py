"""The report on small and degenerate samples: it always renders, and never shows an interval that
claims more than the data can say (issue 26)."""

import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from analysis_exports import answer_row, participant_row, write_export
from comparison_exports import comparison_answer, write_comparison_export
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure

from analysis.cli import main
from analysis.figures import draw_preference_panel
from analysis.io import InputError
from analysis.report import ReportOptions, build_report
from analysis.statistics import usable_intervals

COMPARISONS = [("bla_t", "cam"), ("bla_t", "l2x_f"), ("bla_t", "random"), ("grad_cam", "cam")]
ANSWER = st.tuples(st.sampled_from(COMPARISONS), st.sampled_from(["1", "2", "equal"]),
                   st.sampled_from(["A", "B"]), st.sampled_from(["A", "B"]))
EXPORTS = st.lists(st.lists(ANSWER, min_size=1, max_size=5), min_size=1, max_size=3)
SMALL = settings(max_examples=20, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow])


def read_text_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def assert_sound_interval(row: pd.Series, share: float) -> None:
    """No interval, or one from at least two people that holds the share (as printed, rounded)."""
    if row["ci_low"] == "":
        assert row["ci_high"] == ""
        return
    assert int(row["n_participants"]) >= 2
    assert 0.0 <= float(row["ci_low"]) < float(row["ci_high"]) <= 100.0
    assert float(row["ci_low"]) - 0.05 <= share <= float(row["ci_high"]) + 0.05


def test_one_participant_with_a_third_for_each_answer_renders_without_an_interval(tmp_path):
    """The crash of issue 26: a 1/3 share drew a whisker from the rounded CI below the bar."""
    answers = [answer_row("p1", k + 1, "bla_t_vs_cam", "A", outcome)
               for k, outcome in enumerate(["bla_t", "other", "equal"])]
    write_export(tmp_path / "export", answers, [participant_row("p1")])
    assert main(["report", "--export-dir", str(tmp_path / "export"), "--out",
                 str(tmp_path / "out"), "--quiet", "--bootstrap", "50"]) == 0
    row = read_text_csv(tmp_path / "out" / "preferences.csv").iloc[0]
    assert (row["bla_t_pct"], row["other_pct"], row["equal_pct"]) == ("33.3", "33.3", "33.3")
    assert (row["ci_low"], row["ci_high"]) == ("", "")  # one person: no spread to resample
    assert (tmp_path / "out" / "figure4_preferences.png").stat().st_size > 0
    assert "| 33.3–33.3%" not in (tmp_path / "out" / "preferences.md").read_text()


def test_the_whisker_is_drawn_from_the_unrounded_ends_even_outside_the_bar():
    row = pd.Series({"n_answers": 3, "n_participants": 4, "bla_t": 1, "other": 1, "equal": 1,
                     "other_methods": "cam", "ci_low": 100 / 3 + 1e-9, "ci_high": 60.0})
    ax = Figure().subplots()
    draw_preference_panel(ax, row, "BLA-T vs. CAM")
    (segments,) = [c.get_segments() for c in ax.collections if len(c.get_segments()) == 1]
    (_, low), (_, high) = segments[0]
    assert (low, high) == pytest.approx((1 / 3 + 1e-11, 0.6))


def test_an_interval_needs_two_people_and_a_point_becomes_the_wilson_interval():
    hits = np.array([[1, 3, 0, 2], [0, 3, 2, 0], [0, 3, 0, 0]])    # cells: spread, alike, one, none
    totals = np.array([[2, 4, 0, 2], [2, 4, 3, 0], [2, 4, 0, 0]])
    bounds = np.array([[0.0, 0.5], [0.75, 0.75], [2 / 3, 2 / 3], [1.0, 1.0]])
    shown = usable_intervals(hits, totals, bounds, 0.95)
    assert shown[0] == pytest.approx([0.0, 0.5])                     # the bootstrap's, kept
    assert shown[1] == pytest.approx([0.4677, 0.9111], abs=1e-4)     # Wilson, 9 of 12 answers
    assert np.isnan(shown[2:]).all()                                 # one person answered


def test_no_counted_participant_is_one_clear_error_and_writes_nothing(tmp_path):
    answers = [answer_row("bot", 1, "bla_t_vs_cam", "A", "bla_t")]
    paths = write_export(tmp_path / "export", answers, [participant_row("bot", simulated="true")])
    with pytest.raises(InputError, match="no answers are left after the inclusion rules"):
        build_report(*paths, tmp_path / "out", ReportOptions(n_boot=20))
    assert not (tmp_path / "out").exists()


CAM = ("bla_t", "cam")


@SMALL
@given(people=EXPORTS)
@example(people=[[(CAM, "equal", "A", "A")]] * 3)                           # all 'equal'
@example(people=[[(CAM, "1", "A", "A"), (CAM, "2", "A", "B")]] * 2)         # 1/2 each, alike
@example(people=[[(CAM, "1", "A", "A")], [(CAM, "2", "B", "A")] * 2,        # shares 1, 0, 2/3
                 [(CAM, "1", "A", "A"), (CAM, "1", "A", "B"), (CAM, "equal", "A", "A")]])
def test_any_small_export_renders_the_whole_report(people):
    answers = [comparison_answer(f"p{i}", k + 1, m1, m2, result, dataset, side)
               for i, person in enumerate(people)
               for k, ((m1, m2), result, dataset, side) in enumerate(person)]
    with tempfile.TemporaryDirectory() as folder:
        paths = write_comparison_export(Path(folder) / "export", answers)
        result = build_report(*paths, Path(folder) / "out", ReportOptions(n_boot=20))
        out = Path(folder) / "out"
        assert (out / "report.html").stat().st_size > 0
        assert all(path.exists() for path in result.files)
        tables = [(read_text_csv(out / "comparisons.csv"), "method_1_count")]
        papers = (out / "preferences.csv").exists()
        if papers:
            tables.append((read_text_csv(out / "preferences.csv"), "bla_t"))
    counted = Counter((m1, f"random({m1})" if m2 == "random" else m2)
                      for person in people for (m1, m2), *_ in person)
    assert papers == any(m1 == "bla_t" for m1, _ in counted)
    for table, first in tables:
        for _, row in table.iterrows():
            assert_sound_interval(row, 100 * int(row[first]) / int(row["n_answers"]))
    pooled = result.comparisons[result.comparisons["dataset"] == "all"]
    assert dict(zip(zip(pooled["method_1"], pooled["method_2"]), pooled["n_answers"])) == counted
