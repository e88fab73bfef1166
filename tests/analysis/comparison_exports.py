"""Exports of any comparisons of methods for the tests: exact hand-made answers and seeded
simulations from a Bradley–Terry model with ties (Davidson), written as the study app would."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from contracts.vocabulary import RANDOM_METHOD, question_type
from analysis_exports import STUDY, participant_row, write_export

RESULTS = ("1", "2", "equal")  # method 1 chosen, method 2 chosen, 'equally reasonable'


def comparison_answer(participant: str, position: int, method_1: str, method_2: str,
                      result: str, dataset: str = "A", method_1_side: str = "A") -> dict:
    """One answer of comparison method_1_vs_method_2 (``method_2`` may be 'random')."""
    method_a, method_b = ((method_1, method_2) if method_1_side == "A"
                          else (method_2, method_1))
    if result == "equal":
        choice, chosen = "equal", "equal"
    else:
        chosen = method_1 if result == "1" else method_2
        choice = "A" if chosen == method_a else "B"
    key = question_type(method_1, method_2)
    return {"study": STUDY, "participant": participant, "position": str(position),
            "pair_id": f"{key}-{dataset}-{participant}-{position}", "question_type": key,
            "dataset": dataset, "image_id": f"img{position}", "method_a": method_a,
            "method_b": method_b, "choice": choice, "chosen_method": chosen,
            "response_ms": "1500", "answered_at": "2026-11-26T10:05:00Z"}


def davidson_probabilities(theta_1: float, theta_2: float, tie: float) -> tuple[float, ...]:
    """P(method 1 chosen), P(method 2 chosen), P(equal) in Davidson's model."""
    pi_1, pi_2 = math.exp(theta_1), math.exp(theta_2)
    mid = tie * math.sqrt(pi_1 * pi_2)
    total = pi_1 + pi_2 + mid
    return pi_1 / total, pi_2 / total, mid / total


def contender(method_1: str, method_2: str) -> str:
    """The ranked name of a comparison's second side: random(m) for a random control."""
    return f"{RANDOM_METHOD}({method_1})" if method_2 == RANDOM_METHOD else method_2


def simulated_answers(strengths: dict[str, float], tie: float,
                      comparisons: list[tuple[str, str]], n_participants: int, per_pair: int,
                      seed: int, datasets: tuple[str, ...] = ("A", "B")) -> list[dict]:
    """Every participant answers ``per_pair`` questions of every comparison (datasets taken in
    turn, sides alternating), each drawn from the model; ``strengths`` holds the true θ of
    every contender (random controls as 'random(m)')."""
    rng = np.random.default_rng(seed)
    rows = []
    for person in range(n_participants):
        name, position = f"p{person:04d}", 0
        for method_1, method_2 in comparisons:
            p = davidson_probabilities(strengths[method_1],
                                       strengths[contender(method_1, method_2)], tie)
            for k, result in enumerate(rng.choice(RESULTS, size=per_pair, p=p)):
                position += 1
                rows.append(comparison_answer(name, position, method_1, method_2, str(result),
                                              datasets[k % len(datasets)],
                                              "A" if (person + k) % 2 else "B"))
    return rows


def write_comparison_export(folder: Path, answers: list[dict]) -> tuple[Path, Path]:
    """answers.csv and participants.csv (every answering participant completed, real)."""
    people = sorted({row["participant"] for row in answers})
    return write_export(folder, answers, [participant_row(name) for name in people])
