"""Adaptive against balanced assignment of comparisons (contracts/adaptive.py), by simulation.

Five methods of known Bradley–Terry strengths, all ten pairs; participants with their own share
per comparison (logit-normal, σ = 0.5, around the strengths' share) and 15 % "equal" answers,
twelve questions each. Participants arrive one by one; the balanced design gives each comparison
its turn in rotation (12 questions over 10 comparisons, least-asked first), the adaptive design
splits them with contracts.adaptive (minimum half the balanced share) from the answers so far and
weights every answer by 1/(K·p). After every fifth participant:

* pairwise: each comparison's (weighted) method-1 share with its participant-clustered 95 %
  interval (contracts.intervals, the dashboard's formula) — the widest interval;
* ranking: a Bradley–Terry logistic model of the decisive answers (statsmodels GLM, IPW weights,
  covariance clustered by participant) — the widest 95 % Wald interval of a strength against the
  first method.

Printed over the replays: answers needed until the widest interval is at most the target, adaptive
against balanced, and the coverage of the true values by the intervals at that moment (both
designs should be ≥ 0.93).

    .venv/bin/python bench/adaptive_design.py [--replays 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import warnings
from itertools import combinations
from pathlib import Path

import numpy as np
import statsmodels.api as sm
from scipy import special, stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.planning import logit_centre
from contracts import adaptive
from contracts.adaptive import adaptive_probabilities, allocate, design_weight
from contracts.intervals import ComparisonSums, clustered_interval

STRENGTHS = np.array([0.0, 0.3, 0.6, 1.5, 3.0])
PAIRS = list(combinations(range(len(STRENGTHS)), 2))
NAMES = [f"m{i}_vs_m{j}" for i, j in PAIRS]
TIE_RATE, SIGMA, QUESTIONS = 0.15, 0.5, 12
SHARES = special.expit(STRENGTHS[[i for i, _ in PAIRS]] - STRENGTHS[[j for _, j in PAIRS]])
TRUE_SHARE_OF_ALL = (1 - TIE_RATE) * SHARES  # method 1's share of all answers
TARGETS = {"pairwise": 0.20, "ranking": 1.0}
CHECK_EVERY, MAX_PARTICIPANTS, COVERAGE_TARGET, COVERAGE_AT = 5, 600, 0.93, 80
DESIGNS = {"balanced": None, "adaptive (shares)": adaptive.SHARES,
           "adaptive (ranking)": adaptive.RANKING}
CENTRES = np.array([logit_centre(s, SIGMA) for s in SHARES])


class Study:
    """Counts (participants × comparisons × method 1 / method 2 / equal) and each participant's
    weight per comparison."""

    def __init__(self) -> None:
        self.counts = np.zeros((MAX_PARTICIPANTS, len(PAIRS), 3))
        self.weights = np.ones((MAX_PARTICIPANTS, len(PAIRS)))
        self.people = 0

    def sums(self, k: int, weighted: bool) -> ComparisonSums:
        counts = self.counts[: self.people, k]
        w = self.weights[: self.people, k] if weighted else 1.0
        a, n = counts[:, 0] * w, counts.sum(axis=1) * w
        answered = counts.sum(axis=1) > 0
        b, e = counts[:, 1] * w, counts[:, 2] * w
        return ComparisonSums(NAMES[k], int(answered.sum()), float(a.sum()), float(b.sum()),
                              float(e.sum()), float((a * a).sum()), float((a * n).sum()),
                              float((n * n).sum()))

    def add(self, questions: np.ndarray, weights: np.ndarray, rng: np.random.Generator) -> None:
        personal = special.expit(CENTRES + SIGMA * rng.normal(size=len(PAIRS)))
        chance = np.stack([(1 - TIE_RATE) * personal, (1 - TIE_RATE) * (1 - personal),
                           np.full(len(PAIRS), TIE_RATE)], axis=1)
        for k, n in enumerate(questions):
            if n:
                self.counts[self.people, k] = rng.multinomial(n, chance[k])
        self.weights[self.people] = weights
        self.people += 1


def balanced_questions(study: Study) -> tuple[np.ndarray, np.ndarray]:
    """12 questions over the 10 comparisons: one each, two more for the least-asked so far."""
    asked = study.counts[: study.people].sum(axis=(0, 2))
    extra = np.argsort(asked + np.random.default_rng(study.people).random(len(PAIRS)) * 0.1)
    questions = np.full(len(PAIRS), QUESTIONS // len(PAIRS))
    questions[extra[: QUESTIONS % len(PAIRS)]] += 1
    return questions, np.ones(len(PAIRS))


def adaptive_questions(study: Study, rng: random.Random,
                       objective: str) -> tuple[np.ndarray, np.ndarray]:
    """The adaptive split from the (unweighted) answers so far, and each comparison's weight."""
    sums = {NAMES[k]: study.sums(k, weighted=False) for k in range(len(PAIRS))}
    probabilities = adaptive_probabilities(NAMES, sums, objective=objective)
    counts = allocate(probabilities, QUESTIONS, rng)
    return (np.array([counts[name] for name in NAMES]),
            np.array([design_weight(probabilities[name], len(PAIRS)) for name in NAMES]))


def pairwise_intervals(study: Study) -> np.ndarray | None:
    intervals = [clustered_interval(study.sums(k, weighted=True)) for k in range(len(PAIRS))]
    return None if any(i is None for i in intervals) else np.array(intervals)


def ranking_intervals(study: Study) -> np.ndarray | None:
    """95 % Wald intervals of strengths 1..4 against method 0 (cluster-robust, IPW)."""
    people, comparisons = np.nonzero(study.counts[: study.people, :, :2].sum(axis=2))
    wins = study.counts[people, comparisons, 0]
    decisive = wins + study.counts[people, comparisons, 1]
    design = np.zeros((len(people), len(STRENGTHS)))
    for row, k in enumerate(comparisons):
        design[row, PAIRS[k][0]], design[row, PAIRS[k][1]] = 1.0, -1.0
    weights = decisive * study.weights[people, comparisons]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fit = sm.GLM(wins / decisive, design[:, 1:], family=sm.families.Binomial(),
                         var_weights=weights).fit(cov_type="cluster", cov_kwds={"groups": people})
        except (np.linalg.LinAlgError, ValueError):
            return None
    se = np.sqrt(np.diag(fit.cov_params()))
    if not np.all(np.isfinite(se)):
        return None
    z = stats.norm.ppf(0.975)
    return np.stack([fit.params - z * se, fit.params + z * se], axis=1)


MEASURES = {"pairwise": pairwise_intervals, "ranking": ranking_intervals}
TRUTHS = {"pairwise": TRUE_SHARE_OF_ALL, "ranking": STRENGTHS[1:] - STRENGTHS[0]}


def run(design: str, seed: int) -> dict[str, tuple[int, float]]:
    """Per target: (answers when it was first met, share of the intervals covering the truth at
    the fixed size COVERAGE_AT participants)."""
    rng, choice_rng, study = np.random.default_rng(seed), random.Random(seed), Study()
    reached: dict[str, int] = {}
    covered: dict[str, float] = {}
    while study.people < MAX_PARTICIPANTS and (len(reached) < len(TARGETS)
                                               or len(covered) < len(TARGETS)):
        questions, weights = (balanced_questions(study) if design == "balanced"
                              else adaptive_questions(study, choice_rng, DESIGNS[design]))
        study.add(questions, weights, rng)
        if study.people % CHECK_EVERY:
            continue
        for name, measure in MEASURES.items():
            if name in reached and study.people != COVERAGE_AT:
                continue
            intervals = measure(study)
            if intervals is None:
                continue
            if name not in reached and (intervals[:, 1] - intervals[:, 0]).max() <= TARGETS[name]:
                reached[name] = study.people * QUESTIONS
            if study.people == COVERAGE_AT:
                inside = (intervals[:, 0] <= TRUTHS[name]) & (TRUTHS[name] <= intervals[:, 1])
                covered[name] = float(inside.mean())
    return {name: (reached.get(name, -1), covered.get(name, float("nan"))) for name in TARGETS}


def main(argv: list[str] | None = None) -> int:
    """Print answers needed and coverage per design; exit 1 if coverage misses 0.93 anywhere."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replays", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(f"strengths {STRENGTHS.tolist()}, {len(PAIRS)} comparisons, shares "
          f"{np.round(SHARES, 2).tolist()}, {args.replays} replays")
    results = {}
    for design in DESIGNS:
        started = time.perf_counter()
        results[design] = [run(design, args.seed * 100_000 + r) for r in range(args.replays)]
        print(f"{design}: {time.perf_counter() - started:.0f} s")
    ok = True
    print(f"target | design | median answers (quartiles) | vs balanced | not reached | "
          f"coverage at {COVERAGE_AT * QUESTIONS} answers")
    for name, target in TARGETS.items():
        medians = {}
        for design, runs in results.items():
            answers = np.array([r[name][0] for r in runs if r[name][0] > 0])
            coverage = float(np.nanmean([r[name][1] for r in runs]))
            ok &= coverage >= COVERAGE_TARGET
            medians[design] = float(np.median(answers)) if len(answers) else float("nan")
            q1, q3 = np.percentile(answers, [25, 75]) if len(answers) else (np.nan, np.nan)
            print(f"{name} width ≤ {target} | {design} | {medians[design]:.0f} ({q1:.0f}–{q3:.0f}) | "
                  f"{medians[design] / medians['balanced'] - 1:+.1%} | {len(runs) - len(answers)} | "
                  f"{coverage:.3f}")
    print(f"coverage ≥ {COVERAGE_TARGET} under every design: {'met' if ok else 'missed'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
