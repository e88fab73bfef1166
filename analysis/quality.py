"""Data quality: per-participant flags (``participants_quality.csv``) and sample-level checks.

Per participant, over their preference answers in position order (attention checks are counted
apart): number of answers, median response time, share of decisive answers on side A, longest
run of one choice, attention checks passed of those given, and flags with stated thresholds —
speeder (median response below ``speeder_ms``), straight-liner (one choice, A, B or equal, for at
least ``straight_line_share`` of the answers) and failed attention checks, and the anomaly p of :mod:`contracts.anomaly` (Fisher's method over the
participant's answers' p-values under the other counted participants' shares, as Chatbot Arena
screens its voters) with the flag ``anomalous`` below ``anomaly_alpha``. Flags inform; only
failed attention checks leave a participant out (:mod:`analysis.selection`).

For the counted sample: the side-A share of all decisive answers with a participant-level
bootstrap CI (a warning when it excludes 1/2: people pressed one side more, whatever it
showed), and the method-1 share (the first method of each answer's comparison ``{a}_vs_{b}``:
BLA-T in the paper's) in each quarter of a participant's sequence (fatigue, learning).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.comparisons import FIRST
from analysis.io import PARTICIPANT_KEY, Export
from analysis.percentages import DEFAULT_DECIMALS, format_percent
from analysis.selection import Selection
from analysis.statistics import DEFAULT_CONFIDENCE, cluster_bootstrap_ci, usable_intervals
from analysis.vocabulary import CHOICES
from contracts.anomaly import DEFAULT_ANOMALY_ALPHA, fisher_anomaly_p
from contracts.comparisons import RESULTS

DEFAULT_SPEEDER_MS = 1000.0
DEFAULT_STRAIGHT_LINE_SHARE = 0.9
QUARTERS = 4
FLAGS: dict[str, str] = {
    "speeder": "median response time below {speeder_ms:g} ms",
    "straight_liner": "one choice (A, B or equal) for at least {straight_pct:g}% of the answers",
    "failed_checks": "failed at least one attention check",
    "anomalous": "answers unlike the other participants' (Fisher-combined p below {alpha:g})",
}
QUALITY_COLUMNS: tuple[str, ...] = (
    "study", "participant", "status", "simulated", "counted", "left_out", "answers",
    "median_response_ms", "side_a_pct", "longest_run", "checks_given", "checks_passed", "flags",
    "anomaly_p",
)
POSITION_COLUMNS: tuple[str, ...] = ("quarter", "answers", "method_1", "method_1_share",
                                     "ci_low", "ci_high")


@dataclass(frozen=True)
class QualityThresholds:
    """Where the speeder and straight-liner flags start."""

    speeder_ms: float = DEFAULT_SPEEDER_MS
    straight_line_share: float = DEFAULT_STRAIGHT_LINE_SHARE
    anomaly_alpha: float = DEFAULT_ANOMALY_ALPHA

    def flag_descriptions(self) -> dict[str, str]:
        """Each flag's name and its rule with this report's thresholds."""
        return {name: rule.format(speeder_ms=self.speeder_ms,
                                  straight_pct=100 * self.straight_line_share,
                                  alpha=self.anomaly_alpha)
                for name, rule in FLAGS.items()}


@dataclass(frozen=True)
class SampleChecks:
    """Side bias and position trend of the counted answers (shares in [0, 1]; intervals as
    :func:`analysis.statistics.usable_intervals` gives them, NaN with fewer than two people)."""

    side_a: int
    decisive: int
    side_a_ci: tuple[float, float]
    participant_side_a: np.ndarray  # each counted participant's side-A share (decisive > 0)
    positions: pd.DataFrame  # POSITION_COLUMNS, one row per quarter with answers
    confidence: float

    @property
    def side_a_share(self) -> float:
        return self.side_a / self.decisive if self.decisive else float("nan")

    def warnings(self) -> list[str]:
        """A side-bias warning when the CI of the side-A share excludes 1/2."""
        low, high = self.side_a_ci
        if not low > 0.5 and not high < 0.5:
            return []
        return [f"side bias: System A was chosen in {100 * self.side_a_share:.1f}% of the "
                f"{self.decisive} decisive answers ({100 * self.confidence:g}% CI "
                f"{100 * low:.1f}–{100 * high:.1f}%), so participants favoured one side "
                "whatever it showed; see participants_quality.csv"]


def participant_quality(export: Export, selection: Selection,
                        thresholds: QualityThresholds = QualityThresholds(),
                        decimals: int = DEFAULT_DECIMALS) -> pd.DataFrame:
    """One row per participant of the export (QUALITY_COLUMNS), counted or not."""
    people = export.participants
    keys = pd.MultiIndex.from_frame(people[PARTICIPANT_KEY])
    answers = export.answers
    grouped = answers.groupby(PARTICIPANT_KEY, observed=True)
    per_choice = answers.groupby([*PARTICIPANT_KEY, "choice"], observed=True).size()
    per_choice = per_choice.unstack(fill_value=0).reindex(index=keys, columns=list(CHOICES),
                                                          fill_value=0)
    n = per_choice.sum(axis=1).to_numpy()
    side_a, side_b = per_choice["A"].to_numpy(), per_choice["B"].to_numpy()
    median = grouped["response_ms"].median().reindex(keys).to_numpy()
    checks = export.checks.groupby(PARTICIPANT_KEY, observed=True)["passed"]
    given = checks.size().reindex(keys, fill_value=0).to_numpy()
    passed = checks.sum().reindex(keys, fill_value=0).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        top_share = per_choice.max(axis=1).to_numpy() / n
    anomaly = anomaly_p_values(answers, selection).reindex(keys).to_numpy(dtype=float)
    flags = {
        "speeder": median < thresholds.speeder_ms,
        "straight_liner": (n > 0) & (top_share >= thresholds.straight_line_share),
        "failed_checks": passed < given,
        "anomalous": anomaly < thresholds.anomaly_alpha,
    }
    return pd.DataFrame({
        "study": people["study"].to_numpy(), "participant": people["participant"].to_numpy(),
        "status": people["status"].to_numpy(), "simulated": people["simulated"].to_numpy(),
        "counted": (selection.reason == "").to_numpy(), "left_out": selection.reason.to_numpy(),
        "answers": n,
        "median_response_ms": median,
        "side_a_pct": [format_percent(a, a + b, decimals) for a, b in zip(side_a, side_b)],
        "longest_run": longest_runs(answers).reindex(keys, fill_value=0).to_numpy(),
        "checks_given": given, "checks_passed": passed,
        "flags": [";".join(name for name in FLAGS if flags[name][i]) for i in range(len(n))],
        "anomaly_p": anomaly,
    }, columns=list(QUALITY_COLUMNS))


def anomaly_p_values(answers: pd.DataFrame, selection: Selection) -> pd.Series:
    """Each answering participant's Fisher-combined anomaly p (contracts.anomaly), the reference
    being the counted participants' answers to the same comparison, the participant's own left out."""
    keys = [*PARTICIPANT_KEY, "question_type"]
    counts = (answers.groupby([*keys, "result"], observed=True).size()
              .unstack(fill_value=0).reindex(columns=range(len(RESULTS)), fill_value=0))
    counted = set(selection.answers[PARTICIPANT_KEY].itertuples(index=False, name=None))
    person_of = list(zip(*(counts.index.get_level_values(k) for k in PARTICIPANT_KEY), strict=True))
    in_reference = np.array([person in counted for person in person_of], dtype=bool)
    reference = counts[in_reference].groupby(level="question_type", observed=True).sum()
    reference = reference.reindex(counts.index.unique("question_type"), fill_value=0)
    values: dict[tuple, float | None] = {}
    for person, rows in counts.groupby(level=PARTICIPANT_KEY, observed=True):
        own = {q: rows.loc[(*person, q)].tolist() for q in rows.index.get_level_values("question_type")}
        add_own = person not in counted  # the reference lacks them: nothing to take out
        totals = {q: [r + (c if add_own else 0) for r, c in zip(reference.loc[q].tolist(), own[q])]
                  for q in own}
        values[person] = fisher_anomaly_p(own, totals)
    return pd.Series(values, dtype=float)


def longest_runs(answers: pd.DataFrame) -> pd.Series:
    """Longest run of one choice in each participant's answers ordered by position."""
    ordered = answers.sort_values([*PARTICIPANT_KEY, "position"])
    person = ordered.groupby(PARTICIPANT_KEY, observed=True, sort=False).ngroup().to_numpy()
    choice = ordered["choice"].astype(str).to_numpy()
    starts = np.ones(len(ordered), dtype=bool)
    starts[1:] = (person[1:] != person[:-1]) | (choice[1:] != choice[:-1])
    run = np.cumsum(starts)
    lengths = np.bincount(run)[run]
    frame = ordered[PARTICIPANT_KEY].assign(length=lengths)
    return frame.groupby(PARTICIPANT_KEY, observed=True)["length"].max()


def sample_checks(selection: Selection, checks: pd.DataFrame, n_boot: int, seed: int,
                  confidence: float = DEFAULT_CONFIDENCE) -> SampleChecks:
    """Side-A share and method-1 share by quarter of the sequence, with participant-level CIs.

    A participant's quarter of an answer is ⌊4 · (position − 1) / last position⌋, the last
    position counting attention checks too, so each person's sequence is split evenly.
    """
    answers = selection.answers
    person = answers.groupby(PARTICIPANT_KEY, observed=True).ngroup().to_numpy()
    n_people = int(person.max()) + 1 if len(person) else 0
    everything = pd.concat([answers[[*PARTICIPANT_KEY, "position"]],
                            checks[[*PARTICIPANT_KEY, "position"]]])
    last = everything.groupby(PARTICIPANT_KEY, observed=True)["position"].max()
    last = last.reindex(pd.MultiIndex.from_frame(answers[PARTICIPANT_KEY])).to_numpy()
    quarter = (answers["position"].to_numpy() - 1) * QUARTERS // last
    is_a = (answers["choice"] == "A").to_numpy()
    decisive = (answers["choice"] != "equal").to_numpy()
    is_first = (answers["result"] == FIRST).to_numpy()

    def per_person(weights: np.ndarray, cells: np.ndarray, n_cells: int) -> np.ndarray:
        flat = np.bincount(person * n_cells + cells, weights=weights,
                           minlength=n_people * n_cells)
        return flat.reshape(n_people, n_cells)

    zero = np.zeros(len(answers), dtype=np.int64)
    hits = np.hstack([per_person(is_a.astype(float), zero, 1),
                      per_person(is_first.astype(float), quarter, QUARTERS)])
    totals = np.hstack([per_person(decisive.astype(float), zero, 1),
                        per_person(np.ones(len(answers)), quarter, QUARTERS)])
    # One cell at a time: few distinct count profiles each, so the bootstrap stays cheap.
    rng = np.random.default_rng([seed, 99])
    bounds = np.vstack([cluster_bootstrap_ci(hits[:, [k]], totals[:, [k]], n_boot, rng,
                                             confidence) for k in range(hits.shape[1])])
    intervals = usable_intervals(hits, totals, bounds, confidence)
    sums, counts = hits.sum(axis=0), totals.sum(axis=0)
    positions = pd.DataFrame([
        {"quarter": k + 1, "answers": int(counts[k + 1]), "method_1": int(sums[k + 1]),
         "method_1_share": sums[k + 1] / counts[k + 1], "ci_low": intervals[k + 1, 0],
         "ci_high": intervals[k + 1, 1]}
        for k in range(QUARTERS) if counts[k + 1] > 0], columns=list(POSITION_COLUMNS))
    with np.errstate(invalid="ignore", divide="ignore"):
        own = hits[:, 0] / totals[:, 0]
    return SampleChecks(int(sums[0]), int(counts[0]), (intervals[0, 0], intervals[0, 1]),
                        own[np.isfinite(own)], positions, confidence)
