"""Read and validate the two export CSVs (docs/formats.md, "Export CSVs") into DataFrames.

Every problem a user can cause raises :class:`InputError` with one sentence naming the file,
the data row (1-based, counting the rows after the header) and the column. Only one kind of
row is dropped with a warning instead of an error, because dropping it cannot change a result:
a row that repeats an earlier row of the same file in every column (e.g. two exports pasted
together). Rows that share a key but differ anywhere else are an error — which one is right
cannot be known.

Methods are data: any well-formed method key and any question type ``{a}_vs_{b}`` whose two
shown methods form it (:func:`analysis.comparisons.comparison_sides`) is accepted.
Attention-check rows (question type ``attention_check``, docs/formats.md) are validated like other
answers plus their ``expected_choice``, and kept apart from the preference answers: they never
count in preference statistics. An export made before attention checks has no
``expected_choice`` column and loads as an export without attention checks. An adaptive design's
export gives every answer its inverse-probability ``design_weight`` (contracts.adaptive, a finite
number above 0; empty is allowed on attention checks); without the column every weight is 1.

``export_manifest.json`` beside ``answers.csv``, where present, may name the study's
``max_failed_checks`` (the attention-check rule the server applied); :func:`load_export` reads it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from analysis.comparisons import oriented
from analysis.vocabulary import (
    ATTENTION_CHECK,
    CHOICES,
    EQUAL,
    EXPECTED_CHOICE,
    EXPERIENCE_LABELS,
    FALSE_WORDS,
    NOT_GIVEN,
    REQUIRED_ANSWER_COLUMNS,
    REQUIRED_PARTICIPANT_COLUMNS,
    STATUSES,
    TRUE_WORDS,
)
from contracts.columns import DESIGN_WEIGHT, EXPORT_MANIFEST_NAME
from contracts.comparisons import METHOD_1, METHOD_2, RESULT, RESULTS, comparison_sides
from contracts.vocabulary import parse_question_type, validate_method_key

ANSWER_KEY = ["study", "participant", "position"]
PARTICIPANT_KEY = ["study", "participant"]
MAX_AGE = 130
MANIFEST_NAME = EXPORT_MANIFEST_NAME


class InputError(ValueError):
    """A mistake in the user's input; the message is one sentence meant for the user."""


@dataclass(frozen=True)
class Export:
    """Validated export: preference answers (with the comparison model's ``method_1``,
    ``method_2`` and ``result`` codes), attention checks (with ``passed``), participants,
    warnings."""

    answers: pd.DataFrame
    checks: pd.DataFrame
    participants: pd.DataFrame
    warnings: tuple[str, ...]
    answers_path: Path
    participants_path: Path
    max_failed_checks: int | None = None  # the study's rule from export_manifest.json, if given


def load_export(answers_path: Path, participants_path: Path) -> Export:
    """Read both files, validate each and their link (every answer's participant is listed)."""
    answers, answer_warnings = read_answers(answers_path)
    participants, participant_warnings = read_participants(participants_path)
    known = pd.MultiIndex.from_frame(participants[PARTICIPANT_KEY])
    listed = pd.MultiIndex.from_frame(answers[PARTICIPANT_KEY]).isin(known)
    _fail_first(
        answers_path, answers, ~listed, "participant",
        lambda row: f"participant {row['participant']!r} of study {row['study']!r} "
        f"is not listed in {participants_path}",
    )
    is_check = (answers["question_type"] == ATTENTION_CHECK).to_numpy()
    checks = answers.loc[is_check].reset_index(drop=True)
    checks["passed"] = (checks["choice"] == checks[EXPECTED_CHOICE]).to_numpy()
    return Export(answers.loc[~is_check].reset_index(drop=True), checks, participants,
                  tuple(answer_warnings + participant_warnings),
                  Path(answers_path), Path(participants_path),
                  manifest_max_failed_checks(Path(answers_path).parent / MANIFEST_NAME))


def manifest_max_failed_checks(path: Path) -> int | None:
    """The ``max_failed_checks`` of an export manifest; None without the file or the key.

    InputError when the file is not JSON or the value is not a whole number 0 or above."""
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputError(f"{path}: not a valid JSON file") from None
    value = manifest.get("max_failed_checks") if isinstance(manifest, dict) else None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(f"{path}, key 'max_failed_checks': {value!r} is not a whole number "
                         "0 or above")
    return value


def read_answers(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """Read ``answers.csv``; give each preference answer ``method_1``, ``method_2`` and ``result``.

    ``result`` is the code (0, 1, 2) of contracts.comparisons.RESULTS. Exports that carry the
    model's columns must agree with what their question type, sides and choice imply; older
    exports lack them and get them derived. The rows include attention checks (model columns
    empty, result -1); :func:`load_export` separates them.
    """
    df = _read_csv(path, REQUIRED_ANSWER_COLUMNS)
    if EXPECTED_CHOICE not in df.columns:
        df[EXPECTED_CHOICE] = ""
    for column in ("study", "participant", "question_type", "dataset",
                   "method_a", "method_b", "choice", "chosen_method"):
        df[column] = df[column].astype("category")  # few distinct values: compare codes
        _fail_first(path, df, df[column] == "", column, lambda row: "the value is empty")
    position = pd.to_numeric(df["position"], errors="coerce")
    _fail_first(path, df, ~(position >= 1) | (position % 1 != 0), "position",
                lambda row: f"{row['position']!r} is not a positive whole number")
    df["position"] = position.astype(np.int64)
    response = pd.to_numeric(df["response_ms"], errors="coerce")
    _fail_first(path, df, (df["response_ms"] != "") & ~(response >= 0), "response_ms",
                lambda row: f"{row['response_ms']!r} is not a time in milliseconds (a number "
                "0 or above) or empty")
    df["response_ms"] = response.astype(np.float64)
    df, warnings = _drop_repeated_rows(path, df, ANSWER_KEY, "answer")

    is_check = (df["question_type"] == ATTENTION_CHECK).to_numpy()
    df[DESIGN_WEIGHT] = _design_weights(path, df, is_check)
    _check_each(path, df, ["question_type"], "question_type", parse_question_type,
                ~is_check)
    _check_expected_choice(path, df, is_check)
    _check_each(path, df, ["method_a"], "method_a", validate_method_key)
    _check_each(path, df, ["method_b"], "method_b", validate_method_key)
    _check_allowed(path, df, "choice", CHOICES)
    # A check shows any pair's images; every other answer's methods form its question type.
    _check_each(path, df, ["question_type", "method_a", "method_b"], "method_b",
                comparison_sides, ~is_check)
    shown = np.select([df["choice"] == "A", df["choice"] == "B"],
                      [df["method_a"], df["method_b"]], default=EQUAL)
    _fail_first(path, df, df["chosen_method"] != shown, "chosen_method",
                lambda row: f"{row['chosen_method']!r} contradicts choice {row['choice']!r} "
                f"(System A was {row['method_a']!r}, System B {row['method_b']!r})")
    return _with_comparison_model(path, df, ~is_check), warnings


def _with_comparison_model(path: Path, df: pd.DataFrame, preference: np.ndarray) -> pd.DataFrame:
    """``df`` with method_1, method_2 and result codes; the file's own model columns must agree."""
    derived = oriented(df.loc[preference, ["question_type", "method_a", "method_b", "choice"]])
    model = pd.DataFrame({METHOD_1: "", METHOD_2: "", RESULT: ""}, index=df.index)
    model.loc[preference, [METHOD_1, METHOD_2]] = derived[[METHOD_1, METHOD_2]].to_numpy()
    model.loc[preference, RESULT] = np.asarray(RESULTS, dtype=object)[derived[RESULT].to_numpy()]
    for column in (METHOD_1, METHOD_2, RESULT):
        if column in df.columns:
            _fail_first(path, df, (df[column].astype(str) != model[column]).to_numpy(), column,
                        lambda row, c=column: f"{row[c]!r} contradicts the answer's question type, "
                        f"sides and choice, which give {model.loc[row.name, c]!r}")
    out = df.assign(**{METHOD_1: model[METHOD_1], METHOD_2: model[METHOD_2]})
    out[RESULT] = -1
    out.loc[preference, RESULT] = derived[RESULT].to_numpy()
    return out.astype({RESULT: np.int64})


def _design_weights(path: Path, df: pd.DataFrame, is_check: np.ndarray) -> np.ndarray:
    """Each answer's ``design_weight`` as floats: 1 without the column (a balanced design) and
    on attention checks left empty; otherwise a finite number above 0."""
    if DESIGN_WEIGHT not in df.columns:
        return np.ones(len(df))
    text = df[DESIGN_WEIGHT].astype(str).str.strip()
    text = text.where(~(is_check & (text == "").to_numpy()), "1")
    weight = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    _fail_first(path, df, ~(np.isfinite(weight) & (weight > 0)), DESIGN_WEIGHT,
                lambda row: f"{row[DESIGN_WEIGHT]!r} is not a design weight (a finite number "
                "above 0; 1 in a balanced design)")
    return weight


def _check_expected_choice(path: Path, df: pd.DataFrame, is_check: np.ndarray) -> None:
    """Attention checks name the instructed choice; no other answer has one."""
    expected = df[EXPECTED_CHOICE]
    _fail_first(path, df, is_check & (expected == "").to_numpy(), EXPECTED_CHOICE,
                lambda row: f"an {ATTENTION_CHECK!r} answer needs the instructed choice "
                f"(one of {', '.join(map(repr, CHOICES))}), but the value is empty")
    _fail_first(path, df, is_check & ~expected.isin(CHOICES).to_numpy(), EXPECTED_CHOICE,
                lambda row: f"unknown value {row[EXPECTED_CHOICE]!r} (expected one of "
                f"{', '.join(map(repr, CHOICES))})")
    _fail_first(path, df, ~is_check & (expected != "").to_numpy(), EXPECTED_CHOICE,
                lambda row: f"{row[EXPECTED_CHOICE]!r} given for question type "
                f"{row['question_type']!r}; only {ATTENTION_CHECK!r} answers have an "
                "expected choice")


def read_participants(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """Read ``participants.csv``; normalise labels, parse ``simulated`` and ``age``."""
    df = _read_csv(path, REQUIRED_PARTICIPANT_COLUMNS)  # `language` is optional (older exports)
    for column in ("study", "participant", "status"):
        _fail_first(path, df, df[column] == "", column, lambda row: "the value is empty")
    df, warnings = _drop_repeated_rows(path, df, PARTICIPANT_KEY, "participant")
    _check_allowed(path, df, "status", STATUSES)

    simulated = df["simulated"].str.strip().str.lower()
    _fail_first(path, df, ~simulated.isin(TRUE_WORDS | FALSE_WORDS), "simulated",
                lambda row: f"{row['simulated']!r} is not true or false")
    df["simulated"] = simulated.isin(TRUE_WORDS)

    age_text = df["age"].str.strip()
    age = pd.to_numeric(age_text, errors="coerce")
    bad_age = (age_text != "") & ~((age >= 0) & (age <= MAX_AGE) & (age % 1 == 0))
    _fail_first(path, df, bad_age, "age",
                lambda row: f"{row['age']!r} is not an age in whole years (0 to {MAX_AGE}) "
                "or empty")
    df["age"] = age.astype("Int64")

    for column in ("ml_experience", "xai_experience"):
        df[column] = df[column].str.strip().str.lower()
        _check_allowed(path, df, column, (*EXPERIENCE_LABELS, ""))
        df[column] = df[column].replace("", NOT_GIVEN)
    gender = df["gender"].str.strip().str.lower()
    df["gender"] = gender.where(gender != "", NOT_GIVEN)
    return df, warnings


def _read_csv(path: Path, columns: Iterable[str]) -> pd.DataFrame:
    """Read every cell as text (empty stays ''), check the header, keep the 1-based data row."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the file is empty (expected a header row)") from None
    except pd.errors.ParserError as error:
        raise InputError(f"{path}: not a valid CSV file ({str(error).strip()})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    missing = [column for column in columns if column not in df.columns]
    if missing:
        raise InputError(f"{path}, header row: missing column(s) "
                         f"{', '.join(repr(c) for c in missing)}")
    df.insert(0, "row", np.arange(1, len(df) + 1))
    return df


def _fail_first(path: Path, df: pd.DataFrame, bad: pd.Series | np.ndarray, column: str,
                describe) -> None:
    """Raise an InputError for the first row where ``bad`` holds; ``describe(row)`` says why."""
    bad = np.asarray(bad, dtype=bool)
    if bad.any():
        row = df.iloc[int(np.argmax(bad))]
        raise InputError(f"{path}, data row {row['row']}, column {column!r}: {describe(row)}")


def _check_each(path: Path, df: pd.DataFrame, columns: list[str], column: str,
                check: Callable[..., object], rows: np.ndarray | None = None) -> None:
    """Fail on the first of ``rows`` (default all) whose ``columns`` values ``check`` refuses.

    ``check`` takes the values of ``columns`` and raises ValueError with one sentence; it is
    called once per distinct combination, so the cost does not grow with the rows.
    """
    rows = np.ones(len(df), dtype=bool) if rows is None else np.asarray(rows, dtype=bool)
    values = df.loc[rows, columns].astype(str).drop_duplicates()
    problems = {}
    for combination in values.itertuples(index=False):
        try:
            check(*combination)
        except ValueError as error:
            problems[tuple(combination)] = str(error)
    if problems:
        bad = rows & pd.MultiIndex.from_frame(df[columns].astype(str)).isin(list(problems))
        _fail_first(path, df, bad, column,
                    lambda row: problems[tuple(str(row[c]) for c in columns)])


def _check_allowed(path: Path, df: pd.DataFrame, column: str, allowed: Iterable[str]) -> None:
    """Fail on the first value of ``column`` outside ``allowed``."""
    allowed = tuple(allowed)
    shown = ", ".join(repr(value) for value in allowed if value)
    _fail_first(path, df, ~df[column].isin(allowed), column,
                lambda row: f"unknown value {row[column]!r} (expected one of {shown})")


def _drop_repeated_rows(path: Path, df: pd.DataFrame, key: list[str],
                        noun: str) -> tuple[pd.DataFrame, list[str]]:
    """Drop rows identical to an earlier row (warning); fail on rows that share only the key."""
    data = [column for column in df.columns if column != "row"]
    clash = df.duplicated(subset=key, keep=False).to_numpy()
    if not clash.any():  # a repeated row repeats its key, so nothing more to look for
        return df, []
    repeated = np.zeros(len(df), dtype=bool)
    repeated[clash] = df.loc[clash].duplicated(subset=data, keep="first").to_numpy()
    warnings = []
    if repeated.any():
        rows = df.loc[repeated, "row"].tolist()
        listed = ", ".join(map(str, rows[:10])) + (", …" if len(rows) > 10 else "")
        warnings.append(f"{path}: dropped {len(rows)} row(s) identical to an earlier row "
                        f"(data rows {listed}); a repeated row cannot change any result")
        df = df.loc[~repeated].reset_index(drop=True)
    clash = df.duplicated(subset=key, keep=False).to_numpy()
    if clash.any():
        first = df.loc[clash].iloc[0]
        same = (df.loc[clash, key] == first[key]).all(axis=1)
        rows = df.loc[clash].loc[same, "row"].tolist()
        differing = [column for column in data
                     if df.loc[clash].loc[same, column].nunique() > 1]
        raise InputError(
            f"{path}, data rows {rows[0]} and {rows[1]}, column {differing[0]!r}: two different "
            f"{noun} records share {', '.join(_show(k, first[k]) for k in key)}")
    return df, warnings


def _show(name: str, value: object) -> str:
    """name='text' for strings, name=3 for numbers (no numpy type names in messages)."""
    return f"{name}={value!r}" if isinstance(value, str) else f"{name}={value}"
