"""Attention checks leave inattentive people out; participants_quality.csv and the sample checks."""

import re

import pandas as pd
import pytest

from analysis.cli import main
from analysis.io import InputError, load_export
from analysis.quality import QualityThresholds
from analysis.report import ReportOptions, build_report
from analysis.selection import select
from tests.anomaly_reference import moment_matched_p
from analysis_exports import answer_row, check_row, participant_row, report_on_export, write_export

# Positions 1–10 with attention checks at 3 and 8: the answers' quarters are 1,1,2,2,3,3,4,4.
ANSWER_POSITIONS = (1, 2, 4, 5, 6, 7, 9, 10)
OUTCOMES = ("bla_t", "bla_t", "other", "equal", "bla_t", "bla_t", "bla_t", "other")
# BLA-T alternates sides A, B, …, so these outcomes are the choices A B B equal A B A A.


def person_rows(name: str, checks: tuple[str, str], response_ms=None, always_a=False):
    """Eight answers (OUTCOMES, or always 'A') and two checks instructing 'equal'."""
    rows = []
    for k, position in enumerate(ANSWER_POSITIONS):
        side = "A" if k % 2 == 0 else "B"
        outcome = ("bla_t" if side == "A" else "other") if always_a else OUTCOMES[k]
        row = answer_row(name, position, "bla_t_vs_cam", "A", outcome, side)
        row["response_ms"] = str(response_ms[k] if response_ms else 1500)
        rows.append(row)
    rows += [check_row(name, 3, checks[0]), check_row(name, 8, checks[1])]
    return rows


def study_rows():
    answers = (person_rows("good", ("equal", "equal"), [1000 * k for k in range(1, 9)])
               + person_rows("fast", ("equal", "equal"), [400] * 8)
               + person_rows("lazy", ("A", "A"), always_a=True)
               + person_rows("once", ("equal", "B")))
    people = [participant_row(name) for name in ("good", "fast", "lazy", "once")]
    return answers, people


def report(tmp_path, **options):
    return report_on_export(tmp_path, lambda folder: write_export(folder, *study_rows()), **options)


@pytest.fixture(scope="module")
def default(tmp_path_factory):
    folder = tmp_path_factory.mktemp("quality")
    return folder, report(folder)


def test_checks_are_kept_apart_from_the_preference_answers(tmp_path):
    export = load_export(*write_export(tmp_path, *study_rows()))
    assert len(export.answers) == 32 and len(export.checks) == 8
    assert export.checks.groupby("participant", observed=True)["passed"].sum().to_dict() == \
        {"fast": 2, "good": 2, "lazy": 0, "once": 1}


@pytest.mark.parametrize(("options", "counted"), [
    ({}, {"good", "fast"}),
    ({"max_failed_checks": 1}, {"good", "fast", "once"}),
    ({"keep_inattentive": True}, {"good", "fast", "lazy", "once"}),
])
def test_participants_failing_too_many_checks_are_left_out(tmp_path, options, counted):
    export = load_export(*write_export(tmp_path, *study_rows()))
    selection = select(export, **options)
    assert set(selection.participants["participant"]) == counted
    assert len(selection.answers) == 8 * len(counted)  # checks never count as answers
    left_out = selection.left_out.set_index("reason").loc["inattentive"]
    assert (left_out["participants"], left_out["answers"]) == (4 - len(counted),
                                                              8 * (4 - len(counted)))


def test_report_says_who_was_left_out_for_failed_checks(default):
    folder, result = default
    pooled = result.table.iloc[0]
    assert (pooled["n_answers"], pooled["n_participants"]) == (16, 2)
    page = re.sub(r"\s+", " ", (folder / "out" / "report.html").read_text())
    assert ("<td>Left out: failed more than 0 attention check(s)</td><td>2</td><td>16</td>"
            in page)
    assert "8 attention check(s) were given, 5 passed." in page


def test_participants_quality_csv_holds_hand_computed_values(default):
    folder, _ = default
    quality = pd.read_csv(folder / "out" / "participants_quality.csv",
                          dtype={"side_a_pct": str, "flags": str}, keep_default_na=False)
    rows = quality.set_index("participant")
    assert list(rows.index) == ["good", "fast", "lazy", "once"]
    expected = {  # answers, median ms, side A (4 of 7 decisive), longest run, checks, flags
        "good": (8, 4500.0, "57.1", 2, 2, 2, "", True, ""),
        "fast": (8, 400.0, "57.1", 2, 2, 2, "speeder", True, ""),
        "lazy": (8, 1500.0, "100.0", 8, 2, 0, "straight_liner;failed_checks", False,
                 "inattentive"),
        "once": (8, 1500.0, "57.1", 2, 2, 1, "failed_checks", False, "inattentive"),
    }
    columns = ["answers", "median_response_ms", "side_a_pct", "longest_run", "checks_given",
               "checks_passed", "flags", "counted", "left_out"]
    for name, values in expected.items():
        assert tuple(rows.loc[name, columns]) == values


def test_flag_thresholds_are_options(tmp_path):
    result = report(tmp_path, quality=QualityThresholds(speeder_ms=1600,
                                                        straight_line_share=0.25))
    flags = result.quality.set_index("participant")["flags"]
    # A B B equal A B A A: 'A' is 4 of 8 answers, at least a quarter.
    assert flags["good"] == "straight_liner"
    assert flags["once"] == "speeder;straight_liner;failed_checks"


def test_bla_t_share_by_quarter_and_side_a_share_are_exact(default):
    folder, result = default
    page = re.sub(r"\s+", " ", (folder / "out" / "report.html").read_text())
    # good and fast answer alike: quarters hold (bla, bla), (other, equal), (bla, bla),
    # (bla, other); identical people make every bootstrap interval a point, which would claim
    # certainty, so the interval is the Wilson score interval of the answers (issue 26).
    for quarter, bla, share, interval in [
            (1, 4, "100.0", "51.0–100.0"), (2, 0, "0.0", "0.0–49.0"),
            (3, 4, "100.0", "51.0–100.0"), (4, 2, "50.0", "15.0–85.0")]:
        assert (f"<tr><td>{quarter}</td><td>4</td><td>{bla}</td><td>{share}%</td>"
                f"<td>{interval}%</td></tr>") in page
    assert ("System A was chosen in 57.1% of the 14 decisive counted answers (95% CI "
            "32.6–78.6%" in page)
    assert (folder / "out" / "quality_positions.svg").read_text().count("(n = 4)") == 4


@pytest.mark.parametrize(("pressing_b", "share", "biased"), [(0, "87.5", True),
                                                           (6, "50.0", False)])
def test_a_side_bias_is_a_warning(tmp_path, capsys, pressing_b, share, biased):
    answers, people = [], []
    for i in range(12):  # BLA-T always on A; p0… choose it 7 times in 8, the last p-s once
        people.append(participant_row(f"p{i}"))
        lean = ("other", "bla_t") if i < 12 - pressing_b else ("bla_t", "other")
        answers += [answer_row(f"p{i}", k + 1, "bla_t_vs_cam", "A", lean[k < 7])
                    for k in range(8)]
    write_export(tmp_path / "export", answers, people)
    code = main(["report", "--export-dir", str(tmp_path / "export"), "--out",
                 str(tmp_path / "out"), "--bootstrap", "200", "--quiet"])
    err = capsys.readouterr().err
    page = (tmp_path / "out" / "report.html").read_text()
    assert code == 0
    assert f"System A was chosen in {share}% of the 96 decisive" in page
    assert ("warning: side bias: System A was chosen" in err) == biased
    assert ("the interval excludes 50%: a side bias." in page) == biased
    assert ("the interval includes 50%: no side bias detected." in page) != biased


def test_an_export_without_expected_choice_reports_no_attention_checks(tmp_path):
    answers, people = study_rows()
    answers = [row for row in answers if row["question_type"] != "attention_check"]
    answers_csv, _ = write_export(tmp_path / "export", answers, people)
    assert "expected_choice" not in answers_csv.read_text().splitlines()[0]
    result = build_report(answers_csv, tmp_path / "export" / "participants.csv",
                          tmp_path / "out", ReportOptions(n_boot=50))
    assert result.table.iloc[0]["n_participants"] == 4
    assert result.quality["checks_given"].tolist() == [0, 0, 0, 0]
    assert "The export has no attention checks." in (tmp_path / "out" / "report.html").read_text()


@pytest.mark.parametrize(("row", "value", "says"), [
    (2, "X", "unknown value 'X' (expected one of 'A', 'B', 'equal')"),
    (2, "", "an 'attention_check' answer needs the instructed choice"),
    (0, "equal", "'equal' given for question type 'bla_t_vs_cam'; only 'attention_check' "
                 "answers have an expected choice"),
])
def test_bad_expected_choices_are_one_sentence_and_nothing_is_written(tmp_path, capsys, row,
                                                                       value, says):
    answers, people = study_rows()
    answers = answers[:10]
    people = people[:1]
    answers[8 if row == 2 else row]["expected_choice"] = value
    write_export(tmp_path / "export", answers, people)
    with pytest.raises(InputError, match=re.escape(says)):
        load_export(tmp_path / "export" / "answers.csv", tmp_path / "export" / "participants.csv")
    code = main(["report", "--export-dir", str(tmp_path / "export"), "--out",
                 str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    data_row = 9 if row == 2 else 1
    assert err[0].startswith(f"error: {tmp_path / 'export' / 'answers.csv'}, data row "
                             f"{data_row}, column 'expected_choice': {says}")
    assert not (tmp_path / "out").exists()


def test_response_times_must_be_numbers(tmp_path):
    answers, people = study_rows()
    answers[1]["response_ms"] = "fast"
    with pytest.raises(InputError, match=r"data row 2, column 'response_ms': 'fast' is not a "
                                         r"time in milliseconds"):
        load_export(*write_export(tmp_path, answers, people))


def test_a_participant_answering_against_everyone_else_is_flagged_anomalous(tmp_path):
    # p1 and p2 prefer BLA-T in all four answers, "odd" prefers CAM in all four.
    answers = [answer_row(name, k, "bla_t_vs_cam", "A", outcome, "AB"[k % 2])
               for name, outcome in (("p1", "bla_t"), ("p2", "bla_t"), ("odd", "other"))
               for k in range(1, 5)]
    people = [participant_row(name) for name in ("p1", "p2", "odd")]
    result = report_on_export(tmp_path, lambda folder: write_export(folder, answers, people))
    quality = pd.read_csv(result.out_dir / "participants_quality.csv").set_index("participant")
    # odd: the others answered (8, 0, 0) → shares 9/11, 1/11, 1/11; p-values 6/11, 1/11, 1/11.
    assert quality.loc["odd", "anomaly_p"] == pytest.approx(
        moment_matched_p([9 / 11, 1 / 11, 1 / 11], [1] * 4))
    # p1: the others answered (4, 4, 0) → shares 5/11, 5/11, 1/11; each BLA-T answer has p = 6/11.
    assert quality.loc["p1", "anomaly_p"] == pytest.approx(
        moment_matched_p([5 / 11, 5 / 11, 1 / 11], [0] * 4))
    assert quality["flags"].fillna("").str.contains("anomalous").to_dict() == {
        "p1": False, "p2": False, "odd": True}
