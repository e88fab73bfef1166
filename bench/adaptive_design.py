"""Adaptive against balanced assignment of comparisons (contracts/adaptive.py), by simulation.

Five methods of known Bradley–Terry strengths, all ten pairs; participants with their own share
per comparison (logit-normal, σ = 0.5, around the strengths' share) and 15 % "equal" answers,
twelve questions each. Participants arrive one by one; the balanced design gives each comparison
its turn in rotation (12 questions over 10 comparisons, least-asked first), the adaptive design
splits them with contracts.adaptive (minimum half the balanced share) from the answers so far and
weights every answer by 1/(K·p). The participants' tastes come from their own random stream, so
replay r meets the same people under every design (paired comparisons). The two objectives:

* pairwise: each comparison's (weighted) method-1 share with its participant-clustered 95 %
  interval — the Wilson score interval at the clustered effective sample size
  (contracts.intervals.clustered_interval, the dashboard's) — the widest interval;
* ranking: a Bradley–Terry logistic model of the decisive answers (statsmodels GLM, IPW weights,
  covariance clustered by participant, t quantile with participants − 1 degrees of freedom) — the
  widest 95 % interval of a strength against the first method.

Each objective is checked after every fifth participant; at the first check that meets the target
the four participants before it are checked one by one, so answers needed are exact to one
participant (12 answers). Printed over the replays, as a Markdown table: answers needed until the
widest interval is at most the target (median and quartiles, the medians' change against balanced,
and the median and quartiles of each replay's own ratio to balanced), replays that never got there
within MAX_PARTICIPANTS, and the coverage of the true values by the intervals at COVERAGE_AT
participants (every design should be ≥ 0.93; exit 1 otherwise).

    nice .venv/bin/python bench/adaptive_design.py [--replays 200] [--seed 0]
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

    def __init__(self, seed: int) -> None:
        self.counts = np.zeros((MAX_PARTICIPANTS, len(PAIRS), 3))
        self.weights = np.ones((MAX_PARTICIPANTS, len(PAIRS)))
        self.people = 0
        # Participant j's own shares, the same under every design for one seed.
        self.tastes = special.expit(CENTRES + SIGMA * np.random.default_rng([seed, 1]).normal(
            size=(MAX_PARTICIPANTS, len(PAIRS))))

    def sums(self, k: int, weighted: bool, people: int | None = None) -> ComparisonSums:
        """Comparison k's sums over the first ``people`` participants (default all so far)."""
        people = self.people if people is None else people
        counts = self.counts[:people, k]
        w = self.weights[:people, k] if weighted else 1.0
        a, n = counts[:, 0] * w, counts.sum(axis=1) * w
        answered = counts.sum(axis=1) > 0
        b, e = counts[:, 1] * w, counts[:, 2] * w
        return ComparisonSums(NAMES[k], int(answered.sum()), float(a.sum()), float(b.sum()),
                              float(e.sum()), float((a * a).sum()), float((a * n).sum()),
                              float((n * n).sum()))

    def add(self, questions: np.ndarray, weights: np.ndarray, rng: np.random.Generator) -> None:
        """The next participant answers ``questions`` per comparison."""
        personal = self.tastes[self.people]
        chance = np.stack([(1 - TIE_RATE) * personal, (1 - TIE_RATE) * (1 - personal),
                           np.full(len(PAIRS), TIE_RATE)], axis=1)
        self.counts[self.people] = rng.multinomial(questions, chance)
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


def pairwise_intervals(study: Study, people: int) -> np.ndarray | None:
    """Each comparison's 95 % interval of method 1's share (weighted) after ``people``."""
    intervals = [clustered_interval(study.sums(k, True, people)) for k in range(len(PAIRS))]
    return None if any(i is None for i in intervals) else np.array(intervals)


def ranking_intervals(study: Study, people: int) -> np.ndarray | None:
    """95 % intervals of strengths 1..4 against method 0 after ``people`` (cluster-robust, IPW,
    t with G − 1 degrees of freedom)."""
    people, comparisons = np.nonzero(study.counts[:people, :, :2].sum(axis=2))
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
    z = stats.t.ppf(0.975, len(np.unique(people)) - 1)  # G − 1 degrees of freedom
    return np.stack([fit.params - z * se, fit.params + z * se], axis=1)


MEASURES = {"pairwise": pairwise_intervals, "ranking": ranking_intervals}
TRUTHS = {"pairwise": TRUE_SHARE_OF_ALL, "ranking": STRENGTHS[1:] - STRENGTHS[0]}


def meets(name: str, intervals: np.ndarray | None) -> bool:
    """Whether the widest of ``intervals`` is at most objective ``name``'s target."""
    return intervals is not None and (intervals[:, 1] - intervals[:, 0]).max() <= TARGETS[name]


def run(design: str, seed: int) -> dict[str, tuple[int, np.ndarray]]:
    """Per target: (answers when it was first met, -1 if never; which intervals covered the truth
    at the fixed size COVERAGE_AT participants, NaN without intervals)."""
    rng, choice_rng, study = np.random.default_rng([seed, 2]), random.Random(seed), Study(seed)
    reached: dict[str, int] = {}
    covered: dict[str, np.ndarray] = {}
    while study.people < MAX_PARTICIPANTS and (len(reached) < len(TARGETS)
                                               or len(covered) < len(TARGETS)):
        questions, weights = (balanced_questions(study) if design == "balanced"
                              else adaptive_questions(study, choice_rng, DESIGNS[design]))
        study.add(questions, weights, rng)
        people = study.people
        if people % CHECK_EVERY:
            continue
        for name, measure in MEASURES.items():
            if name in reached and people != COVERAGE_AT:
                continue
            intervals = measure(study, people)
            if name not in reached and meets(name, intervals):
                first = next(k for k in range(people - CHECK_EVERY + 1, people + 1)
                             if k == people or meets(name, measure(study, k)))
                reached[name] = first * QUESTIONS
            if people == COVERAGE_AT and intervals is not None:
                inside = (intervals[:, 0] <= TRUTHS[name]) & (TRUTHS[name] <= intervals[:, 1])
                covered[name] = inside.astype(float)
    return {name: (reached.get(name, -1), covered.get(name, np.full(len(TRUTHS[name]), np.nan)))
            for name in TARGETS}


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
    print(f"| objective (widest interval ≤ target) | design | answers needed, median (quartiles) "
          f"| median vs balanced | per-replay ratio to balanced, median (quartiles) "
          f"| not reached | coverage at {COVERAGE_AT * QUESTIONS} answers: all intervals "
          f"(least-covered one) |")
    print("|---|---|---|---|---|---|---|")
    for name, target in TARGETS.items():
        needed = {design: np.array([r[name][0] for r in runs], dtype=float)
                  for design, runs in results.items()}
        for design, answers in needed.items():
            answers = np.where(answers > 0, answers, np.nan)  # not reached: left out
            per_interval = np.nanmean([r[name][1] for r in results[design]], axis=0)
            coverage = float(per_interval.mean())
            ok &= coverage >= COVERAGE_TARGET
            median, q1, q3 = np.nanpercentile(answers, [50, 25, 75])
            base = np.where(needed["balanced"] > 0, needed["balanced"], np.nan)
            ratio = np.nanpercentile(answers / base, [50, 25, 75])
            change = median / np.nanmedian(base) - 1
            print(f"| {name} ≤ {target} | {design} | {median:.0f} ({q1:.0f}–{q3:.0f}) | "
                  f"{change:+.1%} | {ratio[0]:.2f} ({ratio[1]:.2f}–{ratio[2]:.2f}) | "
                  f"{int(np.isnan(answers).sum())} | {coverage:.3f} ({per_interval.min():.3f}) |")
    print(f"coverage ≥ {COVERAGE_TARGET} under every design: {'met' if ok else 'missed'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
