"""Build small export CSVs (docs/formats.md columns) with exactly chosen counts, for the tests."""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from analysis.report import ReportOptions, ReportResult, build_report
from contracts.columns import (
    EXPECTED_CHOICE, OPTIONAL_ANSWER_COLUMNS, PARTICIPANT_COLUMNS, REQUIRED_ANSWER_COLUMNS,
)
from contracts.vocabulary import ATTENTION_CHECK, QUESTION_TYPES

OTHER = {question_type: others[0] for question_type, others in QUESTION_TYPES.items()}
STUDY = "s1"


def participant_row(name: str, **fields: str) -> dict:
    """A completed, real participant unless ``fields`` say otherwise."""
    row = {"study": STUDY, "participant": name, "status": "completed",
           "started_at": "2026-11-26T10:00:00Z", "completed_at": "2026-11-26T10:20:00Z",
           "gender": "female", "age": "30", "ml_experience": "agree",
           "xai_experience": "undecided", "simulated": "false"}
    row.update(fields)
    return row


def answer_row(participant: str, position: int, question_type: str, dataset: str,
               outcome: str, bla_t_side: str = "A") -> dict:
    """One answer; ``outcome`` is 'bla_t', 'other' or 'equal'; BLA-T shown on ``bla_t_side``."""
    other = OTHER[question_type]
    method_a, method_b = ("bla_t", other) if bla_t_side == "A" else (other, "bla_t")
    if outcome == "equal":
        choice, chosen = "equal", "equal"
    else:
        chosen = "bla_t" if outcome == "bla_t" else other
        choice = "A" if chosen == method_a else "B"
    return {"study": STUDY, "participant": participant, "position": str(position),
            "pair_id": f"{question_type}-{dataset}-{position}", "question_type": question_type,
            "dataset": dataset, "image_id": f"img{position}", "method_a": method_a,
            "method_b": method_b, "choice": choice, "chosen_method": chosen,
            "response_ms": "1500", "answered_at": "2026-11-26T10:05:00Z"}


def check_row(participant: str, position: int, choice: str, expected: str = "equal",
              response_ms: str = "1500") -> dict:
    """An attention check showing a BLA-T vs CAM pair; passed iff ``choice == expected``."""
    chosen = {"A": "bla_t", "B": "cam"}.get(choice, "equal")
    return {"study": STUDY, "participant": participant, "position": str(position),
            "pair_id": f"check-{position}", "question_type": ATTENTION_CHECK,
            "dataset": "A", "image_id": f"img{position}", "method_a": "bla_t",
            "method_b": "cam", "choice": choice, "chosen_method": chosen,
            "response_ms": response_ms, "answered_at": "2026-11-26T10:05:00Z",
            EXPECTED_CHOICE: expected}


def design_answers(cells: dict[tuple[str, str], tuple[int, int, int]], n_participants: int,
                   per_cell: int) -> list[dict]:
    """Spread each cell's (bla_t, other, equal) counts over participants, ``per_cell`` each.

    Outcomes are dealt in a fixed interleaved order so that participants differ; every cell's
    counts must sum to n_participants · per_cell.
    """
    positions = {f"p{i:03d}": 0 for i in range(n_participants)}
    rows = []
    for (question_type, dataset), (bla, other, equal) in cells.items():
        assert bla + other + equal == n_participants * per_cell
        outcomes = ["bla_t"] * bla + ["other"] * other + ["equal"] * equal
        dealt = outcomes[0::2] + outcomes[1::2]
        for k, outcome in enumerate(dealt):
            name = f"p{k % n_participants:03d}"
            positions[name] += 1
            rows.append(answer_row(name, positions[name], question_type, dataset, outcome,
                                   "A" if k % 3 else "B"))
    return rows


def write_csv(path: Path, columns: tuple[str, ...], rows: list[dict]) -> Path:
    """Write rows under the given header (extra keys ignored)."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_export(folder: Path, answers: list[dict], participants: list[dict]) -> tuple[Path, Path]:
    """Write answers.csv and participants.csv into ``folder``.

    An optional column (``expected_choice``, the comparison model's ``method_1``, ``method_2``,
    ``result``) is written only when some row has it (else: an older export).
    """
    folder.mkdir(parents=True, exist_ok=True)
    columns = REQUIRED_ANSWER_COLUMNS + tuple(
        column for column in OPTIONAL_ANSWER_COLUMNS if any(column in row for row in answers))
    return (write_csv(folder / "answers.csv", columns, answers),
            write_csv(folder / "participants.csv", PARTICIPANT_COLUMNS, participants))


def two_sided_sign_p(wins: int, losses: int) -> float:
    """Exact two-sided binomial p at 1/2, summed by hand with integer binomials."""
    n, low = wins + losses, min(wins, losses)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(low + 1)) / 2 ** n)


def sign_flip_p(differences: list[int]) -> float:
    """Two-sided sign-flip p by dynamic programming over participants (one sign each)."""
    null = Counter({0: 1.0})
    for d in differences:
        step = Counter()
        for total, weight in null.items():
            step[total + d] += weight / 2
            step[total - d] += weight / 2
        null = step
    observed = abs(sum(differences))
    return sum(weight for total, weight in null.items() if abs(total) >= observed)


def report_on_export(folder: Path, write: Callable[[Path], tuple[Path, Path]], **options: Any) -> ReportResult:
    """The report of the export that ``write`` makes in ``folder/export``, written to ``folder/out``
    (200 bootstrap draws: enough for the tests' checks; ``options`` go to ReportOptions)."""
    answers_csv, participants_csv = write(folder / "export")
    return build_report(answers_csv, participants_csv, folder / "out", ReportOptions(n_boot=200, **options))
