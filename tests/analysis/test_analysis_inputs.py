"""Bad exports: one clear sentence naming file, row and column; harmless repeats only warn."""

import pandas as pd
import pytest

from analysis.cli import main
from analysis.io import InputError, load_export
from analysis_exports import answer_row, participant_row, write_export
from contracts.comparisons import METHOD_1, METHOD_2, RESULT, RESULTS, oriented_answer


def small_export() -> tuple[list[dict], list[dict]]:
    """Two participants, three answers each (one per question type)."""
    answers, people = [], []
    for person in ("p000", "p001"):
        people.append(participant_row(person))
        for position, (question_type, outcome) in enumerate(
                [("bla_t_vs_cam", "bla_t"), ("bla_t_vs_l2x_f", "equal"),
                 ("bla_t_vs_random", "other")], start=1):
            answers.append(answer_row(person, position, question_type, "A", outcome,
                                      "A" if position % 2 else "B"))
    return answers, people


def load(tmp_path, answers, people):
    return load_export(*write_export(tmp_path, answers, people))


def error_of(tmp_path, answers, people) -> str:
    with pytest.raises(InputError) as caught:
        load(tmp_path, answers, people)
    return str(caught.value)


@pytest.mark.parametrize(("column", "value", "row", "says"), [
    ("choice", "C", 2, "unknown value 'C'"),
    ("choice", "", 2, "the value is empty"),
    ("method_a", "Grad-CAM", 2, "method key 'Grad-CAM' is not a lowercase identifier"),
    ("method_b", "cam_vs_lime", 2, "method key 'cam_vs_lime' contains '_vs_'"),
    ("question_type", "bla_t_versus_cam", 2,
     "question type 'bla_t_versus_cam' is not of the form <method>_vs_<method>"),
    ("chosen_method", "frobnicate", 2, "'frobnicate' contradicts choice"),
    ("position", "two", 2, "'two' is not a positive whole number"),
    ("position", "0", 2, "'0' is not a positive whole number"),
])
def test_bad_answer_values_name_file_row_and_column(tmp_path, column, value, row, says):
    answers, people = small_export()
    answers[row - 1][column] = value
    message = error_of(tmp_path, answers, people)
    assert message.startswith(f"{tmp_path / 'answers.csv'}, data row {row}, column {column!r}")
    assert says in message


def test_methods_that_do_not_form_the_question_type_are_an_error(tmp_path):
    answers, people = small_export()
    answers[0].update(method_a="bla_t", method_b="random", choice="A", chosen_method="bla_t")
    message = error_of(tmp_path, answers, people)
    assert "data row 1, column 'method_b'" in message
    assert "do not form question type 'bla_t_vs_cam'" in message


def test_chosen_method_must_match_the_choice(tmp_path):
    answers, people = small_export()
    answers[0]["chosen_method"] = "equal"  # choice is A = bla_t
    message = error_of(tmp_path, answers, people)
    assert "data row 1, column 'chosen_method'" in message and "contradicts choice 'A'" in message


def test_missing_columns_are_named(tmp_path):
    answers, people = small_export()
    answers_csv, participants_csv = write_export(tmp_path, answers, people)
    table = pd.read_csv(answers_csv, dtype=str).drop(columns=["chosen_method", "dataset"])
    table.to_csv(answers_csv, index=False)
    with pytest.raises(InputError, match=r"answers.csv, header row: missing column\(s\) "
                                         r"'dataset', 'chosen_method'"):
        load_export(answers_csv, participants_csv)


def test_answers_of_an_unlisted_participant_are_an_error(tmp_path):
    answers, people = small_export()
    message = error_of(tmp_path, answers, people[:1])
    assert "answers.csv, data row 4, column 'participant'" in message
    assert "participant 'p001' of study 's1' is not listed in" in message


def test_two_different_answers_at_one_position_are_an_error(tmp_path):
    answers, people = small_export()
    clash = dict(answers[1], position="1")
    message = error_of(tmp_path, answers + [clash], people)
    assert "data rows 1 and 7, column 'pair_id'" in message
    assert "participant='p000', position=1" in message


def test_identical_repeated_rows_are_dropped_with_a_warning(tmp_path):
    answers, people = small_export()
    export = load(tmp_path, answers + [answers[2], answers[4]], people + [people[1]])
    assert len(export.answers) == 6 and len(export.participants) == 2
    assert any("answers.csv: dropped 2 row(s) identical to an earlier row (data rows 7, 8)" in w
               for w in export.warnings)
    assert any("participants.csv: dropped 1 row(s)" in w for w in export.warnings)


@pytest.mark.parametrize(("column", "value", "says"), [
    ("status", "done", "unknown value 'done'"),
    ("simulated", "maybe", "'maybe' is not true or false"),
    ("age", "thirty", "'thirty' is not an age in whole years"),
    ("age", "31.5", "'31.5' is not an age in whole years"),
    ("ml_experience", "a lot", "unknown value 'a lot'"),
])
def test_bad_participant_values_name_file_row_and_column(tmp_path, column, value, says):
    answers, people = small_export()
    people[1][column] = value
    message = error_of(tmp_path, answers, people)
    assert message.startswith(f"{tmp_path / 'participants.csv'}, data row 2, column {column!r}")
    assert says in message


def test_labels_are_normalised_and_blanks_mean_not_given(tmp_path):
    answers, people = small_export()
    people[0].update(gender="", age="", ml_experience="Strongly Agree", simulated="TRUE")
    export = load(tmp_path, answers, people)
    first = export.participants.iloc[0]
    assert (first["gender"], first["ml_experience"], bool(first["simulated"])) == \
        ("not given", "strongly agree", True)
    assert pd.isna(first["age"]) and export.participants.iloc[1]["age"] == 30


def test_unreadable_files_are_one_sentence(tmp_path):
    answers, people = small_export()
    answers_csv, participants_csv = write_export(tmp_path, answers, people)
    answers_csv.write_text("")
    with pytest.raises(InputError, match="answers.csv: the file is empty"):
        load_export(answers_csv, participants_csv)
    with pytest.raises(InputError, match="nope.csv: no such file"):
        load_export(tmp_path / "nope.csv", participants_csv)


def test_cli_reports_one_error_line_and_writes_nothing(tmp_path, capsys):
    answers, people = small_export()
    answers[3]["choice"] = "X"
    write_export(tmp_path / "export", answers, people)
    code = main(["report", "--export-dir", str(tmp_path / "export"), "--out",
                 str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [f"error: {tmp_path / 'export' / 'answers.csv'}, data row 4, column 'choice': "
                   "unknown value 'X' (expected one of 'A', 'B', 'equal')"]
    assert not (tmp_path / "out").exists()


def with_model(answers: list[dict]) -> list[dict]:
    """The rows as the study app now exports them: with method_1, method_2 and result."""
    return [{**row, **dict(zip((METHOD_1, METHOD_2, RESULT), oriented_answer(
        row["question_type"], row["method_a"], row["method_b"], row["choice"])))}
        for row in answers]


def test_exported_model_columns_are_read_as_the_answers_say(tmp_path):
    answers, people = small_export()
    derived = load(tmp_path / "old", answers, people).answers
    exported = load(tmp_path / "new", with_model(answers), people).answers
    columns = [METHOD_1, METHOD_2, RESULT]
    assert exported[columns].equals(derived[columns])
    assert list(exported[METHOD_2][:3]) == ["cam", "l2x_f", "random(bla_t)"]
    assert [RESULTS[code] for code in exported[RESULT][:3]] == ["method_1", "equal", "method_2"]


def test_a_model_column_that_contradicts_the_answer_is_one_clear_error(tmp_path):
    answers, people = small_export()
    answers = with_model(answers)
    answers[3][RESULT] = "method_2"  # p001's BLA-T vs CAM answer chose BLA-T
    assert error_of(tmp_path, answers, people).endswith(
        "answers.csv, data row 4, column 'result': 'method_2' contradicts the answer's question "
        "type, sides and choice, which give 'method_1'")
