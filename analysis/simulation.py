"""Simulated usefulness exports with known effects, for tests, coverage checks and benchmarks.

Each participant has a random effect u ~ Normal(0, σ²) on the logit scale, shared by all their
answers; a trial's answer matches the model with probability expit(logit(p) + u), where p is the
true probability of the median participant for that method and split (distinction and agreement:
separately for model-correct and model-incorrect trials; forward simulation: the pre-test for all
arms, the post-test per arm). Every participant gets the same numbers of trials of each kind, so the
report's pooled shares estimate the population means :func:`population_share` gives. Confidence is
calibrated: 1–4 with probabilities rising with the level for matching answers and falling for the
others (means 3 and 2).

:func:`simulate_trials` draws a study's answered trials at once, typed as
:mod:`analysis.usefulness_io` reads them (what coverage checks replay);
:func:`export_rows` turns them into ``trials.csv`` / ``participants.csv`` rows exactly per
contract (random classes and panel order, learning trials, attention checks; ``matches_model`` by
:func:`contracts.usefulness.matches_model`), and :func:`trial_row` builds one row by hand.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from contracts.columns import PARTICIPANT_COLUMNS
from contracts.usefulness import (
    AGREEMENT,
    ARM,
    CONFIDENCE_LEVELS,
    CORRECT,
    DISTINCTION,
    EXPECTED_ANSWER,
    FORWARD_SIMULATION,
    INCORRECT,
    LEARN,
    NO_EXPLANATION,
    POST,
    PRE,
    TRIAL_COLUMNS,
    matches_model,
    panel_classes_value,
)

CLASSES = ("3", "8", "5", "0")
MATCHING_CONFIDENCE = (0.1, 0.2, 0.3, 0.4)  # mean 3
NOT_MATCHING_CONFIDENCE = (0.4, 0.3, 0.2, 0.1)  # mean 2
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(64)


@dataclass(frozen=True)
class Design:
    """A usefulness study with known truth (probabilities of the median participant).

    ``correct`` / ``incorrect``: per method, P(match) on model-correct / model-incorrect trials
    (distinction, agreement); ``trials``: trials per participant of each method and split
    (distinction, agreement) or of each phase (forward simulation); ``pre`` and ``post`` (per arm,
    ``none`` included): forward-simulation accuracies; ``panels``: k of distinction (and classes of
    forward simulation); ``inattentive`` participants fail every one of their ``checks``.
    """

    task: str
    participants: int
    correct: dict[str, float] = field(default_factory=dict)
    incorrect: dict[str, float] = field(default_factory=dict)
    pre: float = 0.5
    post: dict[str, float] = field(default_factory=dict)
    trials: int = 8
    panels: int = 2
    sigma: float = 0.5
    checks: int = 0
    inattentive: int = 0
    study: str = "sim"


def population_share(p: float, sigma: float) -> float:
    """E[expit(logit(p) + σZ)], Z standard normal (Gauss–Hermite): the population's share."""
    if p in (0.0, 1.0) or sigma == 0:
        return float(p)
    return float(_WEIGHTS @ expit(logit(p) + sigma * _NODES) / _WEIGHTS.sum())


def true_values(design: Design) -> dict[tuple[str, str, str], float]:
    """The estimands: (method or arm, measure, split) → population value."""
    def share(p: float) -> float:
        return population_share(p, design.sigma)
    values: dict[tuple[str, str, str], float] = {}
    if design.task == FORWARD_SIMULATION:
        for arm, post in design.post.items():
            values[(arm, "gain", "all")] = share(post) - share(design.pre)
            if arm != NO_EXPLANATION:
                control = share(design.post[NO_EXPLANATION])
                values[(arm, "gain_difference", "all")] = share(post) - control
                values[(arm, "utility_ratio", "post")] = share(post) / control
        return values
    for method in design.correct:
        right, wrong = share(design.correct[method]), share(design.incorrect[method])
        values[(method, "accuracy", "model_correct")] = right
        values[(method, "accuracy", "model_incorrect")] = wrong
        values[(method, "accuracy", "all")] = (right + wrong) / 2
    return values


def simulate_trials(design: Design, rng: np.random.Generator) -> pd.DataFrame:
    """The answered trials of one simulated study, typed as analysis.usefulness_io reads them
    (study, participant, task, phase, arm, method, model_correct, matches, confidence, options,
    says_correct), participant by participant; drawn for all participants at once."""
    n, effects = design.participants, rng.normal(0.0, design.sigma, design.participants)
    if design.task == FORWARD_SIMULATION:
        arms = list(design.post)
        arm = np.array([arms[i % len(arms)] for i in range(n)], dtype=object)
        phase = np.array([PRE] * design.trials + [POST] * design.trials, dtype=object)
        post = np.array([design.post[a] for a in arm])
        p = np.where(phase[None, :] == PRE, design.pre, post[:, None])
        method = np.full(p.shape, "", dtype=object)
        correct = np.ones(p.shape, dtype=bool)
        phases, arms_of = np.broadcast_to(phase, p.shape), np.broadcast_to(arm[:, None], p.shape)
    else:
        spec = [(m, right, probabilities[m]) for m in design.correct
                for right, probabilities in ((True, design.correct), (False, design.incorrect))
                for _ in range(design.trials)]
        order = rng.permuted(np.tile(np.arange(len(spec)), (n, 1)), axis=1)
        method = np.array([m for m, _, _ in spec], dtype=object)[order]
        correct = np.array([right for _, right, _ in spec])[order]
        p = np.array([q for _, _, q in spec])[order]
        phases = arms_of = np.full(p.shape, "", dtype=object)
    with np.errstate(divide="ignore"):
        matches = rng.random(p.shape) < expit(logit(p) + effects[:, None])
    levels = np.asarray(CONFIDENCE_LEVELS)
    confidence = np.where(matches, rng.choice(levels, p.shape, p=MATCHING_CONFIDENCE),
                          rng.choice(levels, p.shape, p=NOT_MATCHING_CONFIDENCE))
    options = {DISTINCTION: design.panels, AGREEMENT: 1, FORWARD_SIMULATION: 0}[design.task]
    return pd.DataFrame({
        "study": design.study,
        "participant": np.repeat([f"p{i:04d}" for i in range(n)], p.shape[1]),
        "task": design.task, "phase": phases.ravel(), "arm": arms_of.ravel(),
        "method": method.ravel(), "model_correct": correct.ravel(), "matches": matches.ravel(),
        "confidence": confidence.ravel().astype(np.int64), "options": np.int64(options),
        "says_correct": ((matches == correct) & (design.task == AGREEMENT)).ravel(),
    })


def export_rows(design: Design, trials: pd.DataFrame,
                rng: np.random.Generator) -> tuple[list[dict], list[dict]]:
    """trials.csv and participants.csv rows (cells as text) of :func:`simulate_trials`' trials:
    random classes and panel order, learning trials between pre- and post-test, and each
    participant's attention checks (the first ``inattentive`` participants fail them all)."""
    rows: list[dict] = []
    people: list[dict] = []
    for index, (name, mine) in enumerate(trials.groupby("participant", sort=False)):
        arm = str(mine["arm"].iloc[0])
        answered = [_trial(design, name, spec, rng) for spec in mine[
            ["phase", "arm", "method", "model_correct", "matches", "confidence"]].itertuples(
                index=False)]
        if design.task == FORWARD_SIMULATION:
            method = "" if arm == NO_EXPLANATION else arm
            learning = [trial_row(FORWARD_SIMULATION, name, False, phase=LEARN, arm=arm,
                                  method=method, panels=design.panels, study=design.study)
                        for _ in range(design.trials)]
            answered = answered[:design.trials] + learning + answered[design.trials:]
        answered += _checks(design, answered, index < design.inattentive, rng)
        rows += numbered(answered)
        people.append(participant_row(name, arm, study=design.study))
    return rows, people


def _trial(design: Design, participant: str, spec: tuple, rng: np.random.Generator) -> dict:
    """One trials.csv row of (phase, arm, method, model correct, matches, confidence) with random
    classes and panel order."""
    phase, arm, method, model_correct, match, confidence = spec
    predicted, wrong = rng.choice(design.panels, size=2, replace=False).tolist()
    return trial_row(design.task, participant, bool(match), model_correct=bool(model_correct),
                     method=method, phase=phase, arm=arm, panels=design.panels,
                     confidence=int(confidence), order=rng.permutation(design.panels).tolist(),
                     predicted=predicted, wrong=wrong, study=design.study,
                     image_id=f"img{int(rng.integers(10**6)):06d}")


def trial_row(task: str, participant: str, match: bool, *, model_correct: bool = True,
              method: str = "", phase: str = "", arm: str = "", panels: int = 2,
              confidence: int = 3, order: Sequence[int] | None = None, predicted: int = 0,
              wrong: int = 1, study: str = "sim", image_id: str = "img") -> dict:
    """One trials.csv row (cells as text; ``position`` and ``trial_id`` set by :func:`numbered`)
    whose answer matches the model iff ``match``.

    The classes are CLASSES[:panels]: the model predicts class ``predicted``; a wrong answer (and
    the true class of a wrong prediction) is class ``wrong``. Distinction panels show the classes
    in ``order`` (default as listed); agreement and learning trials show one explanation of the
    prediction. ``matches_model`` is scored by :func:`contracts.usefulness.matches_model`.
    """
    classes = list(CLASSES[:panels])
    order = list(range(panels)) if order is None else list(order)
    predicted_class, wrong_class = classes[predicted], classes[wrong]
    panel_list, place, answer = [], None, ""
    if task == DISTINCTION:
        panel_list = [classes[j] for j in order]
        place = order.index(predicted) + 1
        answer = str(place if match else order.index(wrong) + 1)
    elif task == AGREEMENT:
        panel_list = [predicted_class]
        answer = CORRECT if match == model_correct else INCORRECT
    elif phase != LEARN:
        answer = predicted_class if match else wrong_class
    if phase == LEARN and method:
        panel_list = [predicted_class]
    row = {
        "study": study, "participant": participant, "position": "", "trial_id": "",
        "task": task, "phase": phase, "arm": arm, "method": method, "dataset": "mnist38",
        "image_id": image_id, "true_class": predicted_class if model_correct else wrong_class,
        "predicted_class": predicted_class, "model_correct": str(model_correct).lower(),
        "panel_classes": panel_classes_value(panel_list),
        "prediction_panel": "" if place is None else str(place), "answer": answer,
        "matches_model": "", "confidence": "" if phase == LEARN else str(confidence),
        "response_ms": "2500", "answered_at": "2026-12-07T10:00:00Z", EXPECTED_ANSWER: "",
    }
    return scored(row)


def scored(row: dict) -> dict:
    """``row`` with ``matches_model`` as contracts.usefulness.matches_model scores its answer."""
    if row["phase"] == LEARN:
        return {**row, "matches_model": ""}
    place = row["prediction_panel"]
    match = matches_model(row["task"], row["answer"], predicted_class=row["predicted_class"],
                          model_correct=row["model_correct"] == "true",
                          prediction_panel=int(place) if place else None)
    return {**row, "matches_model": str(match).lower()}


def attention_check(trial: dict, answer: str, expected: str) -> dict:
    """An answered trial shown again as an attention check instructing ``expected``."""
    return scored({**trial, "answer": answer, EXPECTED_ANSWER: expected})


def numbered(rows: list[dict]) -> list[dict]:
    """One participant's rows in order, with positions 1… and trial ids where missing."""
    return [{**row, "position": str(position),
             "trial_id": row["trial_id"] or f"{row['participant']}-t{position:03d}"}
            for position, row in enumerate(rows, start=1)]


def _checks(design: Design, rows: list[dict], fails: bool,
            rng: np.random.Generator) -> list[dict]:
    """Attention checks: answered trials shown again, instructing their last answer option
    (an inattentive participant gives the first)."""
    answered = [r for r in rows if r["phase"] != LEARN]
    options = answer_options(design.task, design.panels)
    return [attention_check(answered[int(rng.integers(len(answered)))],
                            options[0] if fails else options[-1], options[-1])
            for _ in range(design.checks)]


def answer_options(task: str, panels: int) -> list[str]:
    """A trial's answer options in the order shown."""
    if task == DISTINCTION:
        return [str(j) for j in range(1, panels + 1)]
    if task == AGREEMENT:
        return [CORRECT, INCORRECT]
    return list(CLASSES[:panels])


def participant_row(name: str, arm: str = "", **fields: str) -> dict:
    """A completed, non-simulated participants.csv row (with its arm) unless ``fields`` say
    otherwise."""
    row = {column: "" for column in PARTICIPANT_COLUMNS}
    row.update(study="sim", participant=name, status="completed",
               started_at="2026-12-07T09:00:00Z", completed_at="2026-12-07T09:30:00Z",
               ml_experience="agree", xai_experience="undecided", simulated="false",
               language="en")
    row[ARM] = arm
    row.update(fields)
    return row


def write_export(folder: Path, trials: list[dict], people: list[dict]) -> Path:
    """Write trials.csv (TRIAL_COLUMNS) and participants.csv (PARTICIPANT_COLUMNS) into folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tables = (("trials.csv", TRIAL_COLUMNS, trials),
              ("participants.csv", PARTICIPANT_COLUMNS, people))
    for name, columns, rows in tables:
        with open(folder / name, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(columns))
            writer.writeheader()
            writer.writerows(rows)
    return folder


def simulate_export(folder: Path, design: Design, seed: int = 0) -> Path:
    """Simulate one study of ``design`` and write its export into ``folder``."""
    rng = np.random.default_rng(seed)
    return write_export(folder, *export_rows(design, simulate_trials(design, rng), rng))
