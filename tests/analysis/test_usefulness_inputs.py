"""Bad usefulness exports: one `error:` line naming file, data row and column, exit 2, and nothing
written; exports made before attention checks (no ``expected_answer`` column) still load."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from analysis.cli import main
from analysis.io import InputError
from analysis.simulation import attention_check, numbered, participant_row, trial_row, write_export
from analysis.usefulness_io import load_usefulness_export
from contracts.usefulness import (
    AGREEMENT,
    DISTINCTION,
    EXPECTED_ANSWER,
    FORWARD_SIMULATION,
    LEARN,
    POST,
    PRE,
    REQUIRED_TRIAL_COLUMNS,
)


def small_export() -> tuple[list[dict], list[dict]]:
    """Two participants: distinction rows 1–2 (3 panels), agreement rows 3–4, forward-simulation
    rows 5–7 (pre, learn, post, arm bla_t) for each."""
    trials, people = [], []
    for name in ("p1", "p2"):
        rows = [trial_row(DISTINCTION, name, True, method="bla_t", panels=3),
                trial_row(DISTINCTION, name, False, model_correct=False, method="cam", panels=3),
                trial_row(AGREEMENT, name, True, method="bla_t"),
                trial_row(AGREEMENT, name, False, model_correct=False, method="bla_t"),
                trial_row(FORWARD_SIMULATION, name, True, phase=PRE, arm="bla_t"),
                trial_row(FORWARD_SIMULATION, name, False, phase=LEARN, arm="bla_t",
                          method="bla_t"),
                trial_row(FORWARD_SIMULATION, name, False, phase=POST, arm="bla_t")]
        trials += numbered(rows)
        people.append(participant_row(name, "bla_t"))
    return trials, people


def error_of(tmp_path: Path, trials: list[dict], people: list[dict]) -> str:
    folder = write_export(tmp_path, trials, people)
    with pytest.raises(InputError) as caught:
        load_usefulness_export(folder / "trials.csv", folder / "participants.csv")
    return str(caught.value)


@pytest.mark.parametrize(("row", "column", "value", "says"), [
    (1, "task", "ranking", "unknown value 'ranking'"),
    (1, "task", "", "the value is empty"),
    (1, "position", "first", "'first' is not a positive whole number"),
    (1, "answer", "A", "a distinction answer is a panel number, got 'A'"),
    (1, "answer", "4", "panel 4 chosen, but the trial shows 3 panels"),
    (1, "answer", "0", "panel 0 chosen, but the trial shows 3 panels"),
    (1, "answer", "", "a 'distinction' trial needs its answer, but the value is empty"),
    (1, "matches_model", "false", "'false' contradicts the answer '1'"),
    (1, "matches_model", "maybe", "'maybe' is not true or false"),
    (1, "confidence", "5", "'5' is not one of 1, 2, 3, 4"),
    (1, "confidence", "", "'' is not one of 1, 2, 3, 4"),
    (1, "model_correct", "yes please", "'yes please' is not true or false"),
    (1, "model_correct", "false", "false contradicts predicted class '3' and true class '3'"),
    (1, "prediction_panel", "4", "'4' is not a panel place 1 to 3"),
    (1, "panel_classes", "[\"3\"]", "a distinction trial shows 2 to 4 panels"),
    (1, "panel_classes", "3, 8", "'3, 8' is not a JSON list of classes"),
    (1, "phase", "pre", "'pre' given for task 'distinction'"),
    (1, "method", "Grad-CAM", "method key 'Grad-CAM' is not a lowercase identifier"),
    (1, "method", "", "a 'distinction' trial needs the method of its explanations"),
    (1, "response_ms", "soon", "'soon' is not a time in milliseconds"),
    (3, "answer", "yes", "an agreement answer is 'correct' or 'incorrect', got 'yes'"),
    (3, "prediction_panel", "1", "only distinction trials have a prediction panel"),
    (5, "phase", "during", "unknown value 'during'"),
    (5, "arm", "", "a forward-simulation trial needs the participant's arm"),
    (5, "arm", "cam", "participant 'p1' has trials of more than one arm"),
    (5, "answer", "", "a 'forward_simulation' trial needs its answer"),
    (6, EXPECTED_ANSWER, "3", "a learning trial is not answered"),
    (2, EXPECTED_ANSWER, "7", "panel 7 instructed, but the trial shows 3 panels"),
    (4, EXPECTED_ANSWER, "right", "an agreement answer is 'correct' or 'incorrect'"),
    (1, "participant", "p9", "participant 'p9' of study 'sim' is not listed"),
])
def test_bad_trial_values_name_file_row_and_column(tmp_path, row, column, value, says):
    trials, people = small_export()
    trials[row - 1][column] = value
    message = error_of(tmp_path, trials, people)
    assert message.startswith(f"{tmp_path / 'trials.csv'}, data row {row}, column {column!r}")
    assert says in message


def test_an_arm_in_participants_csv_must_agree_with_the_trials(tmp_path):
    trials, people = small_export()
    people[1]["arm"] = "none"
    message = error_of(tmp_path, trials, people)
    assert message.startswith(f"{tmp_path / 'participants.csv'}, data row 2, column 'arm'")
    assert "'none' contradicts the arm of the participant's trials" in message


def test_two_different_trials_at_one_position_are_an_error(tmp_path):
    trials, people = small_export()
    trials[1]["position"] = "1"
    assert "two different trial records share" in error_of(tmp_path, trials, people)


def test_missing_columns_and_unreadable_files_are_one_sentence(tmp_path):
    trials, people = small_export()
    folder = write_export(tmp_path, trials, people)
    with open(folder / "trials.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    kept = [c for c in REQUIRED_TRIAL_COLUMNS if c != "matches_model"]
    with open(folder / "trials.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=kept, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(InputError, match="header row: missing column\\(s\\) 'matches_model'"):
        load_usefulness_export(folder / "trials.csv", folder / "participants.csv")
    (folder / "trials.csv").write_bytes(b"")
    with pytest.raises(InputError, match="the file is empty"):
        load_usefulness_export(folder / "trials.csv", folder / "participants.csv")
    with pytest.raises(InputError, match="no such file"):
        load_usefulness_export(folder / "missing.csv", folder / "participants.csv")


def test_an_export_without_expected_answer_loads_without_checks(tmp_path):
    trials, people = small_export()
    folder = write_export(tmp_path, trials, people)
    with open(folder / "trials.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(REQUIRED_TRIAL_COLUMNS),
                                extrasaction="ignore")
        writer.writeheader()
        writer.writerows(trials)
    export = load_usefulness_export(folder / "trials.csv", folder / "participants.csv")
    assert export.checks.empty and len(export.answers) == 12  # learning trials dropped


def test_attention_checks_are_kept_apart_with_passed(tmp_path):
    trials, people = small_export()
    checks = [attention_check(trials[0], "2", "3"),
              attention_check(trials[2], "correct", "correct")]
    for position, check in enumerate(checks, start=8):
        check.update(position=str(position), trial_id=f"check-{position}")
    folder = write_export(tmp_path, trials + checks, people)
    export = load_usefulness_export(folder / "trials.csv", folder / "participants.csv")
    assert export.checks["passed"].tolist() == [False, True]
    assert len(export.answers) == 12


def run_cli(tmp_path: Path, capsys, trials: list[dict], people: list[dict],
            *extra: str) -> tuple[int, str, Path]:
    folder = write_export(tmp_path / "export", trials, people)
    out = tmp_path / "out"
    code = main(["usefulness", "--export-dir", str(folder), "--out", str(out),
                 "--bootstrap", "50", *extra])
    return code, capsys.readouterr().err, out


def test_cli_reports_one_error_line_exits_2_and_writes_nothing(tmp_path, capsys):
    trials, people = small_export()
    trials[0]["confidence"] = "9"
    code, err, out = run_cli(tmp_path, capsys, trials, people)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert "column 'confidence'" in err and not out.exists()


def test_cli_refuses_when_no_one_is_left_and_names_why(tmp_path, capsys):
    trials, people = small_export()
    for person in people:
        person["simulated"] = "true"
    code, err, out = run_cli(tmp_path, capsys, trials, people)
    assert code == 2 and "no answered trials are left after the inclusion rules" in err
    assert "2 simulated (bot) participants" in err and not out.exists()
    code, err, out = run_cli(tmp_path, capsys, trials, people, "--include-simulated")
    assert code == 0 and "every counted participant is simulated" in err


def test_cli_refuses_an_out_that_is_a_file_and_a_bad_preference_export(tmp_path, capsys):
    trials, people = small_export()
    (tmp_path / "out").write_text("not a folder")
    code, err, _ = run_cli(tmp_path, capsys, trials, people)
    assert code == 2
    assert err == f"error: {tmp_path / 'out'}: not a folder (--out names the report folder)\n"
    (tmp_path / "out").unlink()
    code, err, out = run_cli(tmp_path, capsys, trials, people, "--preference-export",
                             str(tmp_path / "nowhere"))
    assert code == 2 and "answers.csv: no such file" in err and not out.exists()


def test_only_learning_trials_is_an_error(tmp_path, capsys):
    trials, people = small_export()
    learning = [row for row in trials if row["phase"] == LEARN]
    code, err, out = run_cli(tmp_path, capsys, learning, people)
    assert code == 2 and "no answered trials (only learning trials, or none at all)" in err
