"""Read and validate a usefulness export: ``trials.csv`` beside ``participants.csv``.

The trial columns are contracts.usefulness.TRIAL_COLUMNS (docs/formats.md, "trials.csv"). Every
problem raises :class:`analysis.io.InputError` with one sentence naming the file, data row and
column, as for the preference export. Each row's ``matches_model`` must be what the one scoring
rule (:func:`contracts.usefulness.matches_model`) gives for its answer. Learning trials are studied,
not answered, and are dropped; attention checks (rows whose optional ``expected_answer`` is set)
are kept apart, as the preference export's checks, so that :func:`analysis.selection.select`
applies the same inclusion rules to both kinds of study.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.io import (
    MANIFEST_NAME,
    PARTICIPANT_KEY,
    Export,
    InputError,
    _check_allowed,
    _check_each,
    _drop_repeated_rows,
    _fail_first,
    _read_csv,
    manifest_max_failed_checks,
    read_participants,
)
from analysis.vocabulary import FALSE_WORDS, TRUE_WORDS
from contracts.usefulness import (
    ARM,
    CONFIDENCE_LEVELS,
    CORRECT,
    DISTINCTION,
    EXPECTED_ANSWER,
    FORWARD_SIMULATION,
    LEARN,
    MAX_PANELS,
    MIN_PANELS,
    NO_EXPLANATION,
    PHASES,
    REQUIRED_TRIAL_COLUMNS,
    USEFULNESS_TASKS,
    matches_model,
    parse_panel_classes,
)
from contracts.vocabulary import validate_method_key

TRIAL_KEY = ["study", "participant", "position"]


def load_usefulness_export(trials_path: Path, participants_path: Path) -> Export:
    """Both files validated and linked; ``answers`` holds the answered trials, ``checks`` the
    attention checks (with ``passed``)."""
    trials, trial_warnings = read_trials(trials_path)
    participants, participant_warnings = read_participants(participants_path)
    known = pd.MultiIndex.from_frame(participants[PARTICIPANT_KEY])
    listed = pd.MultiIndex.from_frame(trials[PARTICIPANT_KEY]).isin(known)
    _fail_first(trials_path, trials, ~listed, "participant",
                lambda row: f"participant {row['participant']!r} of study {row['study']!r} "
                f"is not listed in {participants_path}")
    _check_participant_arms(participants_path, participants, trials)
    answered = trials.loc[trials["phase"] != LEARN]
    is_check = (answered[EXPECTED_ANSWER] != "").to_numpy()
    checks = answered.loc[is_check].reset_index(drop=True)
    checks["passed"] = (checks["answer"] == checks[EXPECTED_ANSWER]).to_numpy()
    return Export(answered.loc[~is_check].reset_index(drop=True), checks, participants,
                  tuple(trial_warnings + participant_warnings), Path(trials_path),
                  Path(participants_path),
                  manifest_max_failed_checks(Path(trials_path).parent / MANIFEST_NAME))


def read_trials(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """Read ``trials.csv``: typed columns ``model_correct``, ``matches`` (bool), ``options``
    (panels of a distinction trial), ``confidence``, ``says_correct`` (agreement answer)."""
    df = _read_csv(path, REQUIRED_TRIAL_COLUMNS)  # expected_answer is optional (older exports)
    if EXPECTED_ANSWER not in df.columns:
        df[EXPECTED_ANSWER] = ""
    for column in ("study", "participant", "trial_id", "task"):
        _fail_first(path, df, df[column] == "", column, lambda row: "the value is empty")
    position = pd.to_numeric(df["position"], errors="coerce")
    _fail_first(path, df, ~(position >= 1) | (position % 1 != 0), "position",
                lambda row: f"{row['position']!r} is not a positive whole number")
    df["position"] = position.astype(np.int64)
    df, warnings = _drop_repeated_rows(path, df, TRIAL_KEY, "trial")
    _check_allowed(path, df, "task", USEFULNESS_TASKS)
    forward = (df["task"] == FORWARD_SIMULATION).to_numpy()
    _check_phase_and_arm(path, df, forward)
    for column in ("model_correct", "matches_model"):
        df[column] = df[column].str.strip().str.lower()
    answered = (df["phase"] != LEARN).to_numpy()
    _fail_first(path, df, ~df["model_correct"].isin(TRUE_WORDS | FALSE_WORDS), "model_correct",
                lambda row: f"{row['model_correct']!r} is not true or false")
    df["model_correct"] = df["model_correct"].isin(TRUE_WORDS)
    _fail_first(path, df, df["model_correct"] != (df["predicted_class"] == df["true_class"]),
                "model_correct", lambda row: f"{str(row['model_correct']).lower()} contradicts "
                f"predicted class {row['predicted_class']!r} and true class {row['true_class']!r}")
    df["options"] = _panel_counts(path, df)
    _check_prediction_panel(path, df)
    _check_answers(path, df, answered)
    _fail_first(path, df, answered & ~df["matches_model"].isin(TRUE_WORDS | FALSE_WORDS),
                "matches_model", lambda row: f"{row['matches_model']!r} is not true or false")
    df["matches"] = df["matches_model"].isin(TRUE_WORDS)
    scored = np.array([_score(*values) if keep else False for keep, values in zip(
        answered, df[["task", "answer", "predicted_class", "model_correct",
                      "prediction_panel"]].itertuples(index=False))], dtype=bool)
    _fail_first(path, df, answered & (scored != df["matches"].to_numpy()), "matches_model",
                lambda row: f"{row['matches_model']!r} contradicts the answer {row['answer']!r}, "
                "which contracts.usefulness.matches_model scores otherwise")
    confidence = pd.to_numeric(df["confidence"], errors="coerce")
    _fail_first(path, df, answered & ~confidence.isin(CONFIDENCE_LEVELS), "confidence",
                lambda row: f"{row['confidence']!r} is not one of "
                f"{', '.join(map(str, CONFIDENCE_LEVELS))}")
    df["confidence"] = confidence.fillna(0).astype(np.int64)
    response = pd.to_numeric(df["response_ms"], errors="coerce")
    _fail_first(path, df, (df["response_ms"] != "") & ~(response >= 0), "response_ms",
                lambda row: f"{row['response_ms']!r} is not a time in milliseconds (a number "
                "0 or above) or empty")
    df["response_ms"] = response.astype(np.float64)
    df["says_correct"] = (df["answer"] == CORRECT).to_numpy()
    return df, warnings


def _check_answers(path: Path, df: pd.DataFrame, answered: np.ndarray) -> None:
    """Every answered trial has an answer its task knows (a panel 1…k, correct / incorrect, a
    class); an attention check's ``expected_answer`` is such an answer too; learning trials
    have neither."""
    scored = ["task", "answer", "predicted_class", "model_correct", "prediction_panel"]
    _fail_first(path, df, answered & (df["answer"] == "").to_numpy(), "answer",
                lambda row: f"a {row['task']!r} trial needs its answer, but the value is empty")
    _check_each(path, df, scored, "answer", _score, answered)
    panel = pd.to_numeric(df["answer"], errors="coerce")
    distinction = answered & (df["task"] == DISTINCTION).to_numpy()
    outside = ~((panel >= 1) & (panel <= df["options"])).to_numpy()
    _fail_first(path, df, distinction & outside, "answer",
                lambda row: f"panel {row['answer']} chosen, but the trial shows "
                f"{row['options']} panels")
    check = (df[EXPECTED_ANSWER] != "").to_numpy()
    _fail_first(path, df, check & ~answered, EXPECTED_ANSWER,
                lambda row: "a learning trial is not answered, so it cannot be an attention "
                "check")
    expected = df.assign(answer=df[EXPECTED_ANSWER])
    _check_each(path, expected, scored, EXPECTED_ANSWER, _score, check & answered)
    instructed = pd.to_numeric(df[EXPECTED_ANSWER], errors="coerce")
    outside = ~((instructed >= 1) & (instructed <= df["options"])).to_numpy()
    _fail_first(path, df, check & distinction & outside,
                EXPECTED_ANSWER, lambda row: f"panel {row[EXPECTED_ANSWER]} instructed, but "
                f"the trial shows {row['options']} panels")


def _score(task: str, answer: str, predicted_class: str, model_correct: bool | str,
           prediction_panel: str) -> bool:
    """contracts.usefulness.matches_model of one row's text cells (ValueError for a bad answer)."""
    panel = int(prediction_panel) if prediction_panel.isdigit() else None
    return matches_model(task, answer, predicted_class=predicted_class,
                         model_correct=model_correct in (True, "True"),
                         prediction_panel=panel)


def _check_phase_and_arm(path: Path, df: pd.DataFrame, forward: np.ndarray) -> None:
    """Forward simulation: a phase and an arm (method key or 'none'); other tasks: neither."""
    _fail_first(path, df, forward & ~df["phase"].isin(PHASES).to_numpy(), "phase",
                lambda row: f"unknown value {row['phase']!r} (expected one of "
                f"{', '.join(map(repr, PHASES))})")
    for column in ("phase", "arm"):
        _fail_first(path, df, ~forward & (df[column] != "").to_numpy(), column,
                    lambda row, c=column: f"{row[c]!r} given for task {row['task']!r}; only "
                    f"{FORWARD_SIMULATION!r} trials have a {c}")
    _fail_first(path, df, forward & (df["arm"] == "").to_numpy(), "arm",
                lambda row: "a forward-simulation trial needs the participant's arm")
    arms = forward & (df["arm"] != NO_EXPLANATION).to_numpy()
    _check_each(path, df, ["arm"], "arm", validate_method_key, arms)
    judged = ~forward
    _fail_first(path, df, judged & (df["method"] == "").to_numpy(), "method",
                lambda row: f"a {row['task']!r} trial needs the method of its explanations")
    _check_each(path, df, ["method"], "method", validate_method_key, judged)
    per_person = df.loc[forward].groupby(PARTICIPANT_KEY, observed=True)["arm"].nunique()
    mixed = pd.MultiIndex.from_frame(df[PARTICIPANT_KEY]).isin(per_person[per_person > 1].index)
    _fail_first(path, df, forward & mixed, "arm",
                lambda row: f"participant {row['participant']!r} has trials of more than one arm")


def _panel_counts(path: Path, df: pd.DataFrame) -> np.ndarray:
    """The number of panels of each trial (JSON list in ``panel_classes``); distinction: 2–4."""
    counts = np.zeros(len(df), dtype=np.int64)
    for index, value in enumerate(df["panel_classes"]):
        try:
            counts[index] = len(parse_panel_classes(value))
        except (json.JSONDecodeError, TypeError):
            _fail_first(path, df, np.arange(len(df)) == index, "panel_classes",
                        lambda row: f"{row['panel_classes']!r} is not a JSON list of classes")
    distinction = (df["task"] == DISTINCTION).to_numpy()
    _fail_first(path, df, distinction & ((counts < MIN_PANELS) | (counts > MAX_PANELS)),
                "panel_classes", lambda row: f"a distinction trial shows {MIN_PANELS} to "
                f"{MAX_PANELS} panels, got {row['panel_classes']!r}")
    return counts


def _check_prediction_panel(path: Path, df: pd.DataFrame) -> None:
    """Distinction: the model's panel is a place 1…k; other tasks leave it empty."""
    distinction = (df["task"] == DISTINCTION).to_numpy()
    panel = pd.to_numeric(df["prediction_panel"], errors="coerce")
    valid = (panel >= 1) & (panel <= df["options"]) & (panel % 1 == 0)
    _fail_first(path, df, distinction & ~valid.to_numpy(), "prediction_panel",
                lambda row: f"{row['prediction_panel']!r} is not a panel place 1 to "
                f"{row['options']}")
    _fail_first(path, df, ~distinction & (df["prediction_panel"] != "").to_numpy(),
                "prediction_panel", lambda row: f"{row['prediction_panel']!r} given for task "
                f"{row['task']!r}; only distinction trials have a prediction panel")


def _check_participant_arms(path: Path, participants: pd.DataFrame,
                            trials: pd.DataFrame) -> None:
    """participants.csv's optional ``arm`` must agree with the arm of the participant's trials."""
    if ARM not in participants.columns:
        return
    forward = trials.loc[trials["task"] == FORWARD_SIMULATION]
    arms = forward.groupby(PARTICIPANT_KEY, observed=True)["arm"].first()
    given = participants.set_index(PARTICIPANT_KEY)[ARM]
    trial_arm = arms.reindex(given.index).fillna("").to_numpy()
    bad = (given.to_numpy() != "") & (trial_arm != "") & (given.to_numpy() != trial_arm)
    _fail_first(path, participants, bad, ARM,
                lambda row: f"{row[ARM]!r} contradicts the arm of the participant's trials")


def tasks_of(export: Export) -> tuple[str, ...]:
    """The usefulness tasks present among the answered trials, in contract order."""
    present = set(export.answers["task"]) | set(export.checks["task"])
    if not present:
        raise InputError(f"{export.answers_path}: no answered trials (only learning trials, or "
                         "none at all)")
    return tuple(task for task in USEFULNESS_TASKS if task in present)

