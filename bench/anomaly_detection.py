"""Detection benchmark of the anomaly flag (participants_quality.csv ``anomalous``, contracts/anomaly.py).

Simulated studies of the paper's three comparisons (BLA-T's share against CAM, L2X-F and the
random control 0.65 / 0.70 / 0.85, 15 % ties, participant heterogeneity σ = 0.5 on the logit
scale) with genuine participants and injected random responders, written as exports and run
through the report's own path (load_export, select, participant_quality). Printed per answers per
participant: the share of random responders flagged at α = 0.1 (target ≥ 0.8) and the share of
genuine participants flagged (false flags), over the replays, with 95 % Wilson intervals.

Two kinds of random responder: ``three buttons`` picks A, B or "equal" uniformly (the target
applies to them); ``two buttons`` picks A or B, never "equal" — printed to show the method's limit:
half "method 1" and half "method 2" is close to what the weaker comparisons' genuine participants
answer, so answer-by-answer p-values cannot single them out (side bias and attention checks can).

    .venv/bin/python bench/anomaly_detection.py [--replays 100] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import special
from statsmodels.stats.proportion import proportion_confint

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "analysis")]

from comparison_exports import comparison_answer, write_comparison_export

from analysis.io import load_export
from analysis.planning import logit_centre
from analysis.quality import participant_quality
from analysis.selection import select

TARGET = 0.8
PAIRS = (("bla_t", "cam"), ("bla_t", "l2x_f"), ("bla_t", "random"))
SHARES, TIE_RATE, SIGMA = (0.65, 0.70, 0.85), 0.15, 0.5
GENUINE, RANDOM_RESPONDERS = 60, 6
PER_COMPARISON = (4, 8, 12)  # answers per comparison: 12, 24 or 36 answers per participant
RESPONDERS = {"three buttons": ("A", "B", "equal"), "two buttons": ("A", "B")}


def genuine_rows(name: str, per_comparison: int, rng: np.random.Generator) -> list[dict]:
    """A participant with a personal share per comparison drawn around SHARES."""
    rows, position = [], 0
    for (method_1, method_2), share in zip(PAIRS, SHARES):
        personal = special.expit(logit_centre(share, SIGMA) + SIGMA * rng.normal())
        chance = [(1 - TIE_RATE) * personal, (1 - TIE_RATE) * (1 - personal), TIE_RATE]
        for result in rng.choice(["1", "2", "equal"], size=per_comparison, p=chance):
            position += 1
            side = "A" if rng.random() < 0.5 else "B"
            rows.append(comparison_answer(name, position, method_1, method_2, str(result),
                                          "A", side))
    return rows


def random_rows(name: str, per_comparison: int, buttons: tuple[str, ...],
                rng: np.random.Generator) -> list[dict]:
    """A participant pressing ``buttons`` at random, whatever the screen shows."""
    rows, position = [], 0
    for method_1, method_2 in PAIRS:
        for _ in range(per_comparison):
            position += 1
            side = "A" if rng.random() < 0.5 else "B"  # where method 1 is shown
            button = buttons[rng.integers(len(buttons))]
            result = "equal" if button == "equal" else ("1" if button == side else "2")
            rows.append(comparison_answer(name, position, method_1, method_2, result, "A", side))
    return rows


def flagged(per_comparison: int, buttons: tuple[str, ...], replays: int,
            seed: int) -> tuple[int, int]:
    """(random responders flagged, genuine participants flagged) summed over the replays."""
    rng = np.random.default_rng([seed, per_comparison, len(buttons)])
    found = false = 0
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(replays):
            rows = [row for k in range(GENUINE)
                    for row in genuine_rows(f"g{k:03d}", per_comparison, rng)]
            rows += [row for k in range(RANDOM_RESPONDERS)
                     for row in random_rows(f"r{k:03d}", per_comparison, buttons, rng)]
            export = load_export(*write_comparison_export(Path(folder), rows))
            quality = participant_quality(export, select(export))
            hit = quality["flags"].str.contains("anomalous").to_numpy()
            is_random = quality["participant"].str.startswith("r").to_numpy()
            found += int(hit[is_random].sum())
            false += int(hit[~is_random].sum())
    return found, false


def share_text(count: int, total: int) -> str:
    low, high = proportion_confint(count, total, method="wilson")
    return f"{count / total:.3f} ({low:.3f}–{high:.3f})"


def main(argv: list[str] | None = None) -> int:
    """Print detection and false-flag rates; exit 1 if three-button random responders are found
    below the target at 24 answers or more (12 answers are shown for the record)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replays", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(f"{GENUINE} genuine + {RANDOM_RESPONDERS} random responders per study, "
          f"{args.replays} studies; flag at alpha = 0.1")
    print("responder | answers each | random responders flagged | genuine flagged | seconds")
    met = True
    for label, buttons in RESPONDERS.items():
        for per_comparison in PER_COMPARISON:
            started = time.perf_counter()
            found, false = flagged(per_comparison, buttons, args.replays, args.seed)
            answers = per_comparison * len(PAIRS)
            detection = found / (RANDOM_RESPONDERS * args.replays)
            if answers >= 24 and len(buttons) == 3:
                met &= detection >= TARGET
            print(f"{label} | {answers} | {share_text(found, RANDOM_RESPONDERS * args.replays)} | "
                  f"{share_text(false, GENUINE * args.replays)} | "
                  f"{time.perf_counter() - started:.1f}")
    print(f"target: at least {TARGET:.0%} of three-button random responders flagged from 24 answers: "
          f"{'met' if met else 'missed'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
