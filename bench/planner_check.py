"""Check of the sample-size planner (``python -m analysis plan``) against real analyses.

For each design, the planner's simulated power is set beside the empirical power of studies
simulated independently (answer by answer), written as exports and run through the report's
own path (load_export, select, comparison_numbers: sign-flip test, Holm over the comparisons).
The two should agree within ±5 points at 1,000 replays.

    .venv/bin/python bench/planner_check.py [--replays 1000] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import special

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "analysis")]

from comparison_exports import comparison_answer, write_comparison_export

from analysis.comparisons import comparison_numbers
from analysis.io import load_export
from analysis.planning import ComparisonModel, Design, logit_centre, plan
from analysis.selection import select
from analysis.statistics import ALL_DATASETS

TOLERANCE = 0.05
PAIRS = (("bla_t", "cam"), ("bla_t", "l2x_f"), ("bla_t", "random"))
# (participants, answers per participant and comparison, (share, tie rate, sigma) per comparison)
DESIGNS = (
    (30, 6, ((0.62, 0.20, 0.8), (0.58, 0.25, 0.5))),
    (60, 4, ((0.60, 0.15, 1.0), (0.55, 0.30, 0.3), (0.50, 0.20, 0.6))),
)


def design_of(answers: int, models: tuple[tuple[float, float, float], ...]) -> Design:
    """A planner design whose comparisons are named by their method pairs."""
    return Design(tuple(ComparisonModel(f"{a}_vs_{b}", *m) for (a, b), m in zip(PAIRS, models)),
                  answers)


def study_rows(design: Design, participants: int, rng: np.random.Generator) -> list[dict]:
    """One simulated study, answer by answer: each person draws a personal share per comparison,
    then each answer is a tie, method 1 or method 2."""
    rows = []
    for person in range(participants):
        name, position = f"p{person:04d}", 0
        for (method_1, method_2), model in zip(PAIRS, design.comparisons):
            personal = special.expit(logit_centre(model.share, model.sigma)
                                     + model.sigma * rng.normal())
            chance = [(1 - model.tie_rate) * personal, (1 - model.tie_rate) * (1 - personal),
                      model.tie_rate]
            for result in rng.choice(["1", "2", "equal"], size=design.answers, p=chance):
                position += 1
                rows.append(comparison_answer(name, position, method_1, method_2, str(result),
                                              "A", "A" if position % 2 else "B"))
    return rows


def empirical_power(design: Design, participants: int, replays: int, seed: int) -> np.ndarray:
    """Share of simulated studies whose comparisons.csv (dataset 'all') has p_value_holm below
    alpha, per comparison and then for all comparisons at once."""
    rng = np.random.default_rng([seed, 99])
    significant = np.zeros((replays, len(design.comparisons)), dtype=bool)
    with tempfile.TemporaryDirectory() as folder:
        for replay in range(replays):
            answers, people = write_comparison_export(Path(folder),
                                                      study_rows(design, participants, rng))
            table = comparison_numbers(select(load_export(answers, people)).answers, n_boot=20)
            pooled = table[table["dataset"] == ALL_DATASETS].sort_values("question_type")
            names = [f"{a}_vs_{b}" for a, b in PAIRS[:len(design.comparisons)]]
            holm = pooled.set_index("question_type").reindex(names)["p_value_holm"]
            significant[replay] = (holm < design.alpha).to_numpy()
    return np.append(significant.mean(axis=0), significant.all(axis=1).mean())


def planned_power(design: Design, participants: int, replays: int, seed: int) -> np.ndarray:
    """The planner's power at this participant number, per comparison and for all at once."""
    curve = plan(design, (participants,), replays, seed).curve
    return curve["power"].to_numpy()


def main(argv: list[str] | None = None) -> int:
    """Print planner and empirical power side by side; exit 1 if any differ by over 5 points."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replays", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    worst = 0.0
    print("design | comparison | planner | empirical | difference")
    for index, (participants, answers, models) in enumerate(DESIGNS):
        design = design_of(answers, models)
        started = time.perf_counter()
        planned = planned_power(design, participants, args.replays, args.seed)
        planner_s = time.perf_counter() - started
        empirical = empirical_power(design, participants, args.replays, args.seed)
        empirical_s = time.perf_counter() - started - planner_s
        names = [c.name for c in design.comparisons] + (["all"] if len(models) > 1 else [])
        for name, a, b in zip(names, planned, empirical):
            worst = max(worst, abs(a - b))
            print(f"{index + 1}: N={participants}, {answers} answers | {name} | {a:.3f} | "
                  f"{b:.3f} | {100 * (a - b):+.1f} points")
        print(f"   planner {planner_s:.1f} s, empirical {empirical_s:.1f} s "
              f"({args.replays} replays each)")
    print(f"largest difference {100 * worst:.1f} points (tolerance {100 * TOLERANCE:.0f})")
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
