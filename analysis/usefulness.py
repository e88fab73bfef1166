"""Statistics of the usefulness tasks: do explanations help people predict the model?

One row per task × method × measure × split (``usefulness.csv``, contracts.columns
USEFULNESS_COLUMNS). Answers are nested in participants, so every interval is a percentile cluster
bootstrap that resamples participants (:func:`analysis.statistics.cluster_bootstrap_shares`, all
cells of a task, or of a forward-simulation arm, from the same replicates) and every test is at the
participant level:

* distinction / agreement ``accuracy`` (share of answers matching the model) per method, pooled and
  split by model correct / incorrect, against chance (1/k panels; 1/2): exact sign-flip test of each
  participant's matches minus their chance expectation (exact when chance is 1/2; with k > 2 it
  assumes each participant's excess is symmetric under the null);
* agreement ``says_correct``: the share answering "correct" against the share of those predictions
  that were correct (over-trust: answering "correct" more often than the model is right), sign-flip
  test of each participant's "correct" answers minus their correct predictions;
* forward simulation per arm: pre- and post-test ``accuracy``, the within-participant ``gain``
  post − pre (sign-flip test), and between participants against the control arm ``none`` the
  ``gain_difference`` and Colin et al.'s ``utility_ratio`` (post-test accuracy of the arm over the
  control's), with participants bootstrapped within each arm and a permutation test of arm labels;
* ``confidence``: mean confidence (1–4) of matching and not matching answers and their difference
  (calibration), per method; forward simulation: post-test answers.

p-values are Holm-adjusted across the methods (arms) of each task × measure × split. Where a number
cannot be estimated (no trials, fewer than two participants, an empty arm) it is empty and ``note``
says why.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import stats

from analysis.io import PARTICIPANT_KEY
from analysis.statistics import (
    DEFAULT_BOOTSTRAP,
    DEFAULT_CONFIDENCE,
    MIN_INTERVAL_PARTICIPANTS,
    cluster_bootstrap_shares,
    holm,
    percentile_bounds,
    sign_flip_test,
    usable_intervals,
)
from contracts.columns import USEFULNESS_COLUMNS
from contracts.usefulness import (
    AGREEMENT,
    FORWARD_SIMULATION,
    NO_EXPLANATION,
    POST,
    PRE,
    USEFULNESS_TASKS,
    chance_level,
)

ACCURACY, SAYS_CORRECT, CONFIDENCE = "accuracy", "says_correct", "confidence"
GAIN, GAIN_DIFFERENCE, UTILITY_RATIO = "gain", "gain_difference", "utility_ratio"
ALL, MODEL_CORRECT, MODEL_INCORRECT = "all", "model_correct", "model_incorrect"
MATCHING, NOT_MATCHING, DIFFERENCE = "matching", "not_matching", "difference"
FEW = f"fewer than {MIN_INTERVAL_PARTICIPANTS} participants: no interval or test"


class Sums:
    """Per-participant sums of a task's cells (participants × cells), built one cell at a time."""

    def __init__(self, trials: pd.DataFrame) -> None:
        self.person = trials.groupby(PARTICIPANT_KEY, sort=False, observed=True).ngroup()
        self.person = self.person.to_numpy()
        self.n_people = int(self.person.max()) + 1 if len(trials) else 0
        self.hits: list[np.ndarray] = []
        self.totals: list[np.ndarray] = []
        self.references: list[np.ndarray] = []

    def add(self, mask: np.ndarray, values: np.ndarray, reference: np.ndarray | None = None) -> int:
        """A cell of the trials in ``mask`` summing ``values`` (and integer ``reference`` units);
        returns its column."""
        def total(weights: np.ndarray) -> np.ndarray:
            return np.bincount(self.person[mask], weights[mask], self.n_people).round()
        self.hits.append(total(np.asarray(values, dtype=np.float64)).astype(np.int64))
        self.totals.append(total(np.ones(len(mask))).astype(np.int64))
        zero = np.zeros(len(mask))
        self.references.append(total(zero if reference is None else reference).astype(np.int64))
        return len(self.hits) - 1

    def matrices(self) -> tuple[np.ndarray, np.ndarray]:
        """hits and totals as participants × cells."""
        shape = (self.n_people, 0)
        return (np.stack(self.hits, axis=1) if self.hits else np.zeros(shape, np.int64),
                np.stack(self.totals, axis=1) if self.totals else np.zeros(shape, np.int64))


class Cells:
    """Sums of a group of participants with their bootstrap replicates: the rows' numbers."""

    def __init__(self, sums: Sums, n_boot: int, rng: np.random.Generator,
                 confidence: float) -> None:
        self.hits, self.totals = sums.matrices()
        self.references = sums.references
        self.confidence = confidence
        self.replicates = (cluster_bootstrap_shares(self.hits, self.totals, n_boot, rng)
                           if self.n_people(None) else np.full((n_boot, self.hits.shape[1]),
                                                               np.nan))

    def n_people(self, cell: int | None, *more: int) -> int:
        """Participants with trials in every one of the cells (any cell when None)."""
        if cell is None:
            return int(self.totals.shape[0])
        return int(np.all(self.totals[:, [cell, *more]] > 0, axis=1).sum())

    def estimate(self, cell: int) -> float:
        """The cell's ratio of sums over participants (NaN without trials)."""
        total = int(self.totals[:, cell].sum())
        return self.hits[:, cell].sum() / total if total else math.nan

    def share_interval(self, cell: int) -> np.ndarray:
        """The report's interval of a share (analysis.statistics.usable_intervals)."""
        bounds = percentile_bounds(self.replicates[:, [cell]], self.confidence)
        return usable_intervals(self.hits[:, [cell]], self.totals[:, [cell]], bounds,
                                self.confidence)[0]

    def interval(self, replicates: np.ndarray, people: int) -> np.ndarray:
        """Percentile interval of replicates of any statistic; none under two participants."""
        if people < MIN_INTERVAL_PARTICIPANTS:
            return np.array([math.nan, math.nan])
        finite = np.where(np.isfinite(replicates), replicates, np.nan)
        return percentile_bounds(finite[:, None], self.confidence)[0]

    def paired_p(self, a: int, b: int) -> float:
        """Sign-flip test that cell a's mean equals cell b's within participants (exact integer
        statistic a_sum·b_n − b_sum·a_n of each participant with trials in both)."""
        both = np.all(self.totals[:, [a, b]] > 0, axis=1)
        if both.sum() < MIN_INTERVAL_PARTICIPANTS:
            return math.nan
        h, n = self.hits[both], self.totals[both]
        return sign_flip_test(h[:, a] * n[:, b] - h[:, b] * n[:, a])

    def reference_p(self, cell: int, scale: int) -> float:
        """Sign-flip test of scale · hits − reference units per participant (share = reference)."""
        answered = self.totals[:, cell] > 0
        if answered.sum() < MIN_INTERVAL_PARTICIPANTS:
            return math.nan
        return sign_flip_test(scale * self.hits[answered, cell]
                              - self.references[cell][answered])

    def reference(self, cell: int, scale: int) -> float:
        """The reference share of the cell (chance, or the model's correct share)."""
        total = int(self.totals[:, cell].sum())
        return self.references[cell].sum() / (scale * total) if total else math.nan


def row(task: str, method: str, measure: str, split: str, people: int, trials: int,
        estimate: float, interval: np.ndarray, reference: float = math.nan,
        p_value: float = math.nan, note: str = "") -> dict:
    """One usefulness.csv row (``note`` filled in when something cannot be estimated)."""
    if not note and trials == 0:
        note = "no trials"
    elif not note and people < MIN_INTERVAL_PARTICIPANTS:
        note = FEW
    elif not note and math.isfinite(reference) and math.isnan(p_value):
        note = "every participant's difference from the reference is 0: no test"
    return {"task": task, "method": method, "measure": measure, "split": split,
            "n_participants": people, "n_trials": trials, "estimate": estimate,
            "ci_low": float(interval[0]), "ci_high": float(interval[1]), "reference": reference,
            "p_value": p_value, "p_value_holm": math.nan, "note": note}


def share_row(cells: Cells, task: str, method: str, measure: str, split: str, cell: int,
              scale: int | None = None) -> dict:
    """A share with its interval, and its sign-flip test against the reference when ``scale``."""
    tested = scale is not None
    return row(task, method, measure, split, cells.n_people(cell),
               int(cells.totals[:, cell].sum()), cells.estimate(cell), cells.share_interval(cell),
               cells.reference(cell, scale) if tested else math.nan,
               cells.reference_p(cell, scale) if tested else math.nan)


def confidence_rows(cells: Cells, task: str, method: str, matching: int,
                    not_matching: int) -> list[dict]:
    """Mean confidence of matching and not matching answers, and their paired difference."""
    rows = []
    for split, cell in ((MATCHING, matching), (NOT_MATCHING, not_matching)):
        people = cells.n_people(cell)
        rows.append(row(task, method, CONFIDENCE, split, people, int(cells.totals[:, cell].sum()),
                        cells.estimate(cell), cells.interval(cells.replicates[:, cell], people)))
    both = cells.n_people(matching, not_matching)
    difference = cells.replicates[:, matching] - cells.replicates[:, not_matching]
    note = "" if both else "no participant gave both matching and not matching answers"
    rows.append(row(task, method, CONFIDENCE, DIFFERENCE, both,
                    int(cells.totals[:, [matching, not_matching]].sum()),
                    cells.estimate(matching) - cells.estimate(not_matching),
                    cells.interval(difference, both), 0.0, cells.paired_p(matching, not_matching),
                    note))
    return rows


def judgement_rows(trials: pd.DataFrame, task: str, n_boot: int, rng: np.random.Generator,
                   confidence: float) -> list[dict]:
    """Distinction or agreement: accuracy against chance by split, says-correct, confidence."""
    sums = Sums(trials)
    options = np.maximum(trials["options"].to_numpy(), 1)
    panels = sorted(set(options.tolist())) if task != AGREEMENT else [2]
    scale = math.lcm(*panels)
    chance = (np.full(len(trials), scale // 2) if task == AGREEMENT
              else np.array([scale * chance_level(task, k) for k in options]).round())
    matches = trials["matches"].to_numpy()
    correct = trials["model_correct"].to_numpy()
    levels = trials["confidence"].to_numpy()
    layout = []
    for method in sorted(set(trials["method"])):
        shown = (trials["method"] == method).to_numpy()
        accuracy = [sums.add(shown & part, matches, chance)
                    for part in (shown, correct, ~correct)]
        says = (sums.add(shown, trials["says_correct"].to_numpy(), correct.astype(np.int64))
                if task == AGREEMENT else None)
        sure = (sums.add(shown & matches, levels), sums.add(shown & ~matches, levels))
        layout.append((method, accuracy, says, sure))
    cells = Cells(sums, n_boot, rng, confidence)
    rows = []
    for method, accuracy, says, sure in layout:
        for split, cell in zip((ALL, MODEL_CORRECT, MODEL_INCORRECT), accuracy):
            rows.append(share_row(cells, task, method, ACCURACY, split, cell, scale))
        if says is not None:
            rows.append(share_row(cells, task, method, SAYS_CORRECT, ALL, says, 1))
        rows += confidence_rows(cells, task, method, *sure)
    return rows


def arm_cells(trials: pd.DataFrame, n_boot: int, rng: np.random.Generator,
              confidence: float) -> tuple[Cells, tuple[int, ...]]:
    """One arm's cells: pre and post accuracy, post-test confidence when matching / not."""
    sums = Sums(trials)
    matches = trials["matches"].to_numpy()
    phase = trials["phase"].to_numpy()
    levels = trials["confidence"].to_numpy()
    post = phase == POST
    layout = (sums.add(phase == PRE, matches), sums.add(post, matches),
              sums.add(post & matches, levels), sums.add(post & ~matches, levels))
    return Cells(sums, n_boot, rng, confidence), layout


def arm_shares(sums: np.ndarray) -> np.ndarray:
    """(pre, post) accuracy of summed (pre hits, pre n, post hits, post n) rows (last axis)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.stack([sums[..., 0] / sums[..., 1], sums[..., 2] / sums[..., 3]], axis=-1)


def gain_difference(arm: np.ndarray, control: np.ndarray) -> np.ndarray:
    """(post − pre) of the arm minus (post − pre) of the control, from (pre, post) shares."""
    return (arm[..., 1] - arm[..., 0]) - (control[..., 1] - control[..., 0])


def utility_ratio(arm: np.ndarray, control: np.ndarray) -> np.ndarray:
    """Post-test accuracy of the arm over the control's (Colin, Fel et al. 2022)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return arm[..., 1] / control[..., 1]


def post_difference(arm: np.ndarray, control: np.ndarray) -> np.ndarray:
    """Post-test accuracy of the arm minus the control's (ratio 1 exactly when it is 0)."""
    return arm[..., 1] - control[..., 1]


Statistic = Callable[[np.ndarray, np.ndarray], np.ndarray]


def participant_table(cells: Cells, layout: tuple[int, ...]) -> np.ndarray:
    """participants × (pre hits, pre n, post hits, post n) of an arm."""
    pre, post = layout[0], layout[1]
    return np.stack([cells.hits[:, pre], cells.totals[:, pre], cells.hits[:, post],
                     cells.totals[:, post]], axis=1).astype(np.float64)


def arm_permutation_p(arm: np.ndarray, control: np.ndarray, statistic: Statistic,
                      n_resamples: int, rng: np.random.Generator) -> float:
    """Two-sided permutation test of arm labels (scipy.stats.permutation_test, participants
    as units); ``statistic`` takes the (pre, post) shares of each group's summed rows."""
    data = np.vstack([arm, control])

    def on_indices(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        return statistic(arm_shares(data[x.astype(np.int64)].sum(axis=-2)),
                         arm_shares(data[y.astype(np.int64)].sum(axis=-2)))
    if not np.isfinite(statistic(arm_shares(arm.sum(axis=0)), arm_shares(control.sum(axis=0)))):
        return math.nan
    with np.errstate(invalid="ignore"):
        result = stats.permutation_test(
            (np.arange(len(arm)), np.arange(len(arm), len(data))), on_indices,
            permutation_type="independent", vectorized=True, n_resamples=n_resamples, rng=rng)
    return float(result.pvalue) if np.isfinite(result.pvalue) else math.nan


def forward_rows(trials: pd.DataFrame, n_boot: int, seed: int, confidence: float) -> list[dict]:
    """Forward simulation per arm, and each method arm against the control arm ``none``."""
    task = FORWARD_SIMULATION
    arms = sorted(set(trials["arm"]) - {NO_EXPLANATION}) + [NO_EXPLANATION]
    groups = {}
    for index, arm in enumerate(arms):
        subset = trials.loc[trials["arm"] == arm]
        groups[arm] = arm_cells(subset, n_boot, np.random.default_rng([seed, 2, index]),
                                confidence)
    rows = []
    for arm in arms:
        cells, (pre, post, sure, unsure) = groups[arm]
        rows += [share_row(cells, task, arm, ACCURACY, PRE, pre),
                 share_row(cells, task, arm, ACCURACY, POST, post)]
        both = cells.n_people(pre, post)
        rows.append(row(task, arm, GAIN, ALL, both, int(cells.totals[:, [pre, post]].sum()),
                        cells.estimate(post) - cells.estimate(pre),
                        cells.interval(cells.replicates[:, post] - cells.replicates[:, pre], both),
                        0.0, cells.paired_p(post, pre)))
        if arm != NO_EXPLANATION:
            rows += control_rows(groups[arm], groups[NO_EXPLANATION], arm, n_boot,
                                 np.random.default_rng([seed, 3, arms.index(arm)]))
        rows += confidence_rows(cells, task, arm, sure, unsure)
    return rows


def control_rows(arm: tuple[Cells, tuple[int, ...]], control: tuple[Cells, tuple[int, ...]],
                 name: str, n_resamples: int, rng: np.random.Generator) -> list[dict]:
    """gain_difference and utility_ratio of one method arm against the control arm.

    The estimate is that of the pooled shares of each arm; the interval combines the arms'
    independent participant bootstraps; the test permutes arm labels of participants (the
    utility ratio's test is that of equal post-test accuracy, i.e. a ratio of 1).
    """
    (cells, layout), (base, base_layout) = arm, control
    mine, theirs = participant_table(cells, layout), participant_table(base, base_layout)
    counts = (cells.n_people(*layout[:2]), base.n_people(*base_layout[:2]))
    people = sum(counts)
    trials = int(mine[:, [1, 3]].sum() + theirs[:, [1, 3]].sum())
    shares = arm_shares(mine.sum(axis=0)), arm_shares(theirs.sum(axis=0))
    replicates = (cells.replicates[:, [layout[0], layout[1]]],
                  base.replicates[:, [base_layout[0], base_layout[1]]])
    note = ""
    if counts[1] == 0:
        note = f"the control arm {NO_EXPLANATION!r} has no participant with pre- and post-test"
    elif counts[0] == 0:
        note = "no participant of this arm has pre- and post-test answers"
    elif min(counts) < MIN_INTERVAL_PARTICIPANTS:
        note = f"an arm has {FEW}"
    rows = []
    measures = ((GAIN_DIFFERENCE, ALL, 0.0, gain_difference, gain_difference),
                (UTILITY_RATIO, POST, 1.0, utility_ratio, post_difference))
    for measure, split, reference, statistic, tested in measures:
        estimate = float(statistic(*shares)) if all(counts) else math.nan
        interval, p_value, why = np.array([math.nan, math.nan]), math.nan, note
        if all(counts) and not math.isfinite(estimate):
            why = f"the control arm {NO_EXPLANATION!r} matched the model in no post-test answer"
        elif not note:
            interval = cells.interval(statistic(*replicates), min(counts))
            p_value = arm_permutation_p(mine, theirs, tested, n_resamples, rng)
        rows.append(row(FORWARD_SIMULATION, name, measure, split, people, trials,
                        estimate if math.isfinite(estimate) else math.nan, interval, reference,
                        p_value, why))
    return rows


def usefulness_table(trials: pd.DataFrame, n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0,
                     confidence: float = DEFAULT_CONFIDENCE) -> pd.DataFrame:
    """usefulness.csv of the counted answered trials (analysis.usefulness_io), unrounded."""
    rows: list[dict] = []
    for index, task in enumerate(USEFULNESS_TASKS):
        subset = trials.loc[trials["task"] == task].reset_index(drop=True)
        if subset.empty:
            continue
        if task == FORWARD_SIMULATION:
            rows += forward_rows(subset, n_boot, seed, confidence)
        else:
            rows += judgement_rows(subset, task, n_boot, np.random.default_rng([seed, index]),
                                   confidence)
    table = pd.DataFrame(rows, columns=list(USEFULNESS_COLUMNS))
    if not table.empty:
        table["p_value_holm"] = table.groupby(["task", "measure", "split"], sort=False)[
            "p_value"].transform(holm)
    return table
