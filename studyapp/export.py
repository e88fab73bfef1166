"""The study export of DESIGN.md: ``answers.csv`` and ``participants.csv``, for the command and the dashboard."""
from __future__ import annotations

import csv
import io
import os
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from .models import Answer, Participant, Study

ANSWER_COLUMNS = (
    "study", "participant", "position", "pair_id", "question_type", "dataset", "image_id",
    "method_a", "method_b", "choice", "chosen_method", "response_ms", "answered_at",
)  # fmt: skip
PARTICIPANT_COLUMNS = (
    "study", "participant", "status", "started_at", "completed_at", "gender", "age",
    "ml_experience", "xai_experience", "simulated",
)  # fmt: skip
EXPORT_FILES = ("answers.csv", "participants.csv")


def iso_utc(moment: datetime | None) -> str:
    """ISO-8601 in UTC with a ``Z`` suffix, or an empty string for no time."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def answer_rows(study: Study) -> Iterator[tuple[object, ...]]:
    """One row per stored answer of the study, ordered by participant start and position."""
    answers = (
        Answer.objects.filter(item__participant__study=study)
        .select_related("item__participant", "item__pair__dataset", "item__stimulus_a", "item__stimulus_b")
        .order_by("item__participant__started_at", "item__participant_id", "item__position")
    )
    for answer in answers.iterator(chunk_size=2000):
        item = answer.item
        yield (
            study.slug, item.participant.public_id, item.position, item.pair.pair_id, item.pair.question_type,
            item.pair.dataset.key, item.pair.image_id, item.stimulus_a.method, item.stimulus_b.method,
            answer.choice, answer.chosen_method, answer.response_ms, iso_utc(answer.answered_at),
        )  # fmt: skip


def participant_rows(study: Study) -> Iterator[tuple[object, ...]]:
    """One row per participant of the study, in order of starting."""
    for p in Participant.objects.filter(study=study).order_by("started_at", "id").iterator(chunk_size=2000):
        yield (
            study.slug, p.public_id, p.status, iso_utc(p.started_at), iso_utc(p.completed_at), p.gender,
            "" if p.age is None else p.age, p.ml_experience, p.xai_experience, "true" if p.simulated else "false",
        )  # fmt: skip


def _csv_text(columns: Iterable[str], rows: Iterable[tuple[object, ...]]) -> tuple[str, int]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
    return buffer.getvalue(), count


def export_texts(study: Study) -> dict[str, tuple[str, int]]:
    """The two CSV files of the study as text, with their row counts."""
    return {
        "answers.csv": _csv_text(ANSWER_COLUMNS, answer_rows(study)),
        "participants.csv": _csv_text(PARTICIPANT_COLUMNS, participant_rows(study)),
    }


def write_export(study: Study, out_dir: str | Path) -> dict[str, int]:
    """Write both CSVs into ``out_dir`` atomically (temporary file, then rename); return row counts."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts = export_texts(study)
    for name, (text, _) in texts.items():
        fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
            os.replace(tmp, out / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return {name: count for name, (_, count) in texts.items()}


def export_zip(study: Study) -> bytes:
    """Both CSVs in one zip archive, for the dashboard download."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, (text, _) in export_texts(study).items():
            archive.writestr(name, text.encode("utf-8"))
    return buffer.getvalue()
