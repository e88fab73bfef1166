"""Scale benchmark of the preference report: 10,000 participants × 36 answers (360,000 rows).

Writes a synthetic export (shares like the paper's Figure 4, person-specific preferences, two
attention checks per participant at random positions, failed by about 3 % of them),
runs the full ``python -m analysis report`` in a child process and prints its wall time and
peak memory (the child's maximum resident set size) against the targets 20 s and 1 GB.

    .venv/bin/python bench/analysis_scale.py [--participants 10000] [--bootstrap 2000]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 20.0
TARGET_BYTES = 1024 ** 3
QUESTION_TYPES = {"bla_t_vs_cam": ("cam", (0.71, 0.14, 0.15)),
                  "bla_t_vs_l2x_f": ("l2x_f", (0.53, 0.22, 0.25)),
                  "bla_t_vs_random": ("random", (0.79, 0.07, 0.14))}
DATASETS = ("cats_dogs", "stanford_dogs", "caltech_birds")
PER_CELL = 4
CHECKS = 2
FAIL_CHECK = 0.015


def write_export(folder: Path, participants: int, seed: int) -> int:
    """Write answers.csv and participants.csv; return the number of (preference) answers."""
    rng = np.random.default_rng(seed)
    names = np.array([f"p{i:05d}" for i in range(participants)])
    cells = [(q, d) for q in QUESTION_TYPES for d in DATASETS]
    per_person = len(cells) * PER_CELL
    person = np.repeat(np.arange(participants), per_person)
    cell = np.tile(np.repeat(np.arange(len(cells)), PER_CELL), participants)
    question_type = np.array([q for q, _ in cells])[cell]
    dataset = np.array([d for _, d in cells])[cell]
    other = np.array([QUESTION_TYPES[q][0] for q, _ in cells])[cell]
    # Each person leans their own way: Dirichlet around the question type's shares.
    outcome = np.empty(person.size, dtype=np.int64)
    for q, (_, shares) in QUESTION_TYPES.items():
        rows = question_type == q
        lean = rng.dirichlet(np.array(shares) * 8, size=participants).cumsum(axis=1)
        draws = rng.random(rows.sum())
        outcome[rows] = (draws[:, None] > lean[person[rows]]).sum(axis=1)
    outcome = np.minimum(outcome, 2)
    bla_t_left = rng.random(person.size) < 0.5
    method_a = np.where(bla_t_left, "bla_t", other)
    method_b = np.where(bla_t_left, other, "bla_t")
    chosen = np.select([outcome == 0, outcome == 1], ["bla_t", other], "equal")
    choice = np.select([outcome == 2, chosen == method_a], ["equal", "A"], "B")
    places = np.argsort(rng.random((participants, per_person + CHECKS)), axis=1) + 1
    position = places[:, :per_person].ravel()
    answers = pd.DataFrame({
        "study": "scale", "participant": names[person], "position": position,
        "pair_id": [f"pair{i}" for i in rng.integers(0, 5000, person.size)],
        "question_type": question_type, "dataset": dataset,
        "image_id": [f"img{i}" for i in rng.integers(0, 2000, person.size)],
        "method_a": method_a, "method_b": method_b, "choice": choice, "chosen_method": chosen,
        "response_ms": rng.integers(800, 20000, person.size),
        "answered_at": "2026-11-26T10:05:00Z", "expected_choice": ""})
    rows = len(answers)
    answers = pd.concat([answers, attention_checks(names, places[:, per_person:], rng)])
    answers.to_csv(folder / "answers.csv", index=False)
    labels = np.array(["strongly disagree", "disagree", "undecided", "agree", "strongly agree"])
    pd.DataFrame({
        "study": "scale", "participant": names, "status": "completed",
        "started_at": "2026-11-26T10:00:00Z", "completed_at": "2026-11-26T10:20:00Z",
        "gender": rng.choice(["male", "female", "other", "prefer not to say"], participants),
        "age": rng.integers(18, 70, participants),
        "ml_experience": rng.choice(labels, participants),
        "xai_experience": rng.choice(labels, participants), "simulated": "false",
    }).to_csv(folder / "participants.csv", index=False)
    return rows


def attention_checks(names: np.ndarray, places: np.ndarray,
                     rng: np.random.Generator) -> pd.DataFrame:
    """Rows of the instructed 'equal' items; a failed one is answered 'A'."""
    person = np.repeat(np.arange(len(names)), CHECKS)
    failed = rng.random(person.size) < FAIL_CHECK
    return pd.DataFrame({
        "study": "scale", "participant": names[person], "position": places.ravel(),
        "pair_id": "pair0", "question_type": "attention_check", "dataset": DATASETS[0],
        "image_id": "img0", "method_a": "bla_t", "method_b": "cam",
        "choice": np.where(failed, "A", "equal"), "chosen_method": np.where(failed, "bla_t",
                                                                           "equal"),
        "response_ms": rng.integers(800, 20000, person.size),
        "answered_at": "2026-11-26T10:05:00Z", "expected_choice": "equal"})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=10_000)
    parser.add_argument("--bootstrap", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="analysis-scale-") as tmp:
        folder = Path(tmp)
        rows = write_export(folder, args.participants, args.seed)
        command = [sys.executable, "-m", "analysis", "report", "--export-dir", str(folder),
                   "--out", str(folder / "report"), "--bootstrap", str(args.bootstrap),
                   "--quiet"]
        start = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            return 1
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # KiB on Linux
    print(done.stdout.strip())
    print(f"{rows} answers and {CHECKS * args.participants} attention checks of "
          f"{args.participants} participants, {args.bootstrap} bootstrap "
          f"replicates: wall {seconds:.1f} s (target {TARGET_SECONDS:.0f} s, "
          f"{seconds / TARGET_SECONDS:.2f}× of it), peak memory {peak / 2**20:.0f} MiB "
          f"(target {TARGET_BYTES / 2**20:.0f} MiB, {peak / TARGET_BYTES:.2f}× of it)")
    return 0 if seconds <= TARGET_SECONDS and peak <= TARGET_BYTES else 1


if __name__ == "__main__":
    raise SystemExit(main())
