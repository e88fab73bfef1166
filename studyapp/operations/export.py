"""The study export (docs/formats.md): ``answers.csv`` and ``participants.csv`` (and a usefulness study's
``trials.csv``), for the command and the dashboard.

Beside them ``export_manifest.json`` records each file's SHA-256, size and row count and the row counts
the database held at the same moment; ``verify_export`` checks a folder against it.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from contracts.adaptive import design_weight
from contracts.columns import (
    ANSWER_COLUMNS,
    EXPORT_COLUMNS,
    EXPORT_MANIFEST_NAME,
    PARTICIPANT_COLUMNS,
    USEFULNESS_EXPORT_COLUMNS,
)
from contracts.comparisons import oriented_answer
from contracts.files import atomic_binary
from contracts.usefulness import ARM, EXPECTED_ANSWER, LEARN, TRIAL_COLUMNS, matches_model, panel_classes_value
from studyapp.models import ATTENTION_CHECK, Answer, Participant, Study, TrialAnswer, TrialPanel

EXPORT_FILES = tuple(EXPORT_COLUMNS)
# A text cell starting with one of these is a formula to a spreadsheet (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
MANIFEST_NAME = EXPORT_MANIFEST_NAME


def iso_utc(moment: datetime | None) -> str:
    """ISO-8601 in UTC with a ``Z`` suffix, or an empty string for no time."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def answer_rows(study: Study) -> Iterator[tuple[object, ...]]:
    """One row per stored answer of the study, ordered by participant start and position.

    An attention check's row has question type ``attention_check`` and its instructed ``expected_choice``;
    every other row has its comparison's ``method_1``, ``method_2`` and ``result`` (contracts.comparisons).
    Every row ends with its ``design_weight``: 1/(K·p) of the probability p its question stored in an adaptive
    study, 1 otherwise (balanced studies, attention checks).
    """
    comparisons = len(study.comparisons())
    answers = (
        Answer.objects.filter(item__participant__study=study)
        .select_related("item__participant", "item__pair__dataset", "item__stimulus_a", "item__stimulus_b")
        .order_by("item__participant__started_at", "item__participant_id", "item__position")
    )
    for answer in answers.iterator(chunk_size=2000):
        item = answer.item
        shown = (item.question_type, item.stimulus_a.method, item.stimulus_b.method)
        model = ("", "", "") if item.question_type == ATTENTION_CHECK else oriented_answer(*shown, answer.choice)
        yield (
            study.slug, item.participant.public_id, item.position, item.pair.pair_id, item.question_type,
            item.pair.dataset.key, item.pair.image_id, item.stimulus_a.method, item.stimulus_b.method,
            answer.choice, answer.chosen_method, answer.response_ms, iso_utc(answer.answered_at),
            item.expected_choice, *model, weight_text(item.design_probability, comparisons),
        )  # fmt: skip


def weight_text(probability: float | None, comparisons: int) -> str:
    """The design_weight cell of a question whose comparison had ``probability`` (None: 1) among ``comparisons``."""
    return "1" if probability is None else format(design_weight(probability, comparisons), ".15g")


def design_settings(study: Study) -> dict[str, object]:
    """The manifest's record of the study's design and attention-check rule (what the analysis defaults to)."""
    return {"design": study.design, "adaptive_objective": study.adaptive_objective,
            "adaptive_min_share": study.adaptive_min_share, "max_failed_checks": study.max_failed_checks}  # fmt: skip


def participant_columns(study: Study) -> tuple[str, ...]:
    """participants.csv's columns: with ``arm`` for a usefulness study, ending with ``language`` otherwise."""
    return PARTICIPANT_COLUMNS if study.is_usefulness else tuple(c for c in PARTICIPANT_COLUMNS if c != ARM)


def participant_rows(study: Study) -> Iterator[tuple[object, ...]]:
    """One row per participant of the study, in order of starting (the columns of ``participant_columns``)."""
    for p in Participant.objects.filter(study=study).order_by("started_at", "id").iterator(chunk_size=2000):
        yield (
            study.slug, p.public_id, p.status, iso_utc(p.started_at), iso_utc(p.completed_at), p.gender,
            "" if p.age is None else p.age, p.ml_experience, p.xai_experience, "true" if p.simulated else "false",
            p.language, *((p.arm,) if study.is_usefulness else ()), p.outcome,
        )  # fmt: skip


def _flag(value: bool) -> str:
    return "true" if value else "false"


def trial_rows(study: Study) -> Iterator[tuple[object, ...]]:
    """One row per stored trial answer of a usefulness study, attention checks included, ordered by
    participant start and position, in the columns of ``contracts.usefulness.TRIAL_COLUMNS``.

    A check's row is the trial it showed with the answer as given, scored against the model like any
    trial's (``matches_model``), and its instructed answer in ``expected_answer`` (empty for every
    trial of the design).
    """
    classes = dict(TrialPanel.objects.filter(trial__bundle__study=study).values_list("pk", "class_name"))
    answers = (
        TrialAnswer.objects.filter(item__participant__study=study)
        .select_related("item__participant", "item__trial__dataset")
        .order_by("item__participant__started_at", "item__participant_id", "item__position")
    )
    for answer in answers.iterator(chunk_size=2000):
        item, trial = answer.item, answer.item.trial
        scored = trial.phase != LEARN
        matches = scored and matches_model(study.task, answer.answer, predicted_class=trial.predicted_class,
                                           model_correct=trial.model_correct, prediction_panel=item.prediction_panel)  # fmt: skip
        yield (
            study.slug, item.participant.public_id, item.position, trial.trial_id, study.task, trial.phase,
            item.participant.arm, trial.method, trial.dataset.key, trial.image_id, trial.true_class,
            trial.predicted_class, _flag(trial.model_correct), panel_classes_value([classes[pk] for pk in item.panel_order]),
            "" if item.prediction_panel is None else item.prediction_panel, answer.answer if scored else "",
            _flag(matches) if scored else "", "" if answer.confidence is None else answer.confidence,
            answer.response_ms, iso_utc(answer.answered_at), item.expected_answer,
        )  # fmt: skip


def spreadsheet_safe(value: object) -> object:
    """A text cell that would start a spreadsheet formula gets a leading apostrophe; other cells stay as they are.

    Ids from a bundle (``pair_id``, ``image_id``) come from outside; ``=HYPERLINK(…)`` must reach a
    spreadsheet as text. The apostrophe is part of the id then, the same in every row, so the ids
    still tell pairs and images apart.
    """
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def _csv_text(columns: Iterable[str], rows: Iterable[tuple[object, ...]]) -> tuple[str, int]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow([spreadsheet_safe(value) for value in row])
        count += 1
    return buffer.getvalue(), count


def export_columns(study: Study) -> dict[str, tuple[str, ...]]:
    """The columns of each CSV file the study's export writes (a usefulness study adds trials.csv)."""
    columns = {**EXPORT_COLUMNS, "participants.csv": participant_columns(study)}
    return {**columns, **USEFULNESS_EXPORT_COLUMNS} if study.is_usefulness else columns


def export_texts(study: Study) -> dict[str, tuple[str, int]]:
    """The CSV files of the study as text, with their row counts."""
    texts = {
        "answers.csv": _csv_text(ANSWER_COLUMNS, answer_rows(study)),
        "participants.csv": _csv_text(participant_columns(study), participant_rows(study)),
    }
    if study.is_usefulness:
        texts["trials.csv"] = _csv_text(TRIAL_COLUMNS, trial_rows(study))
    return texts


@contextmanager
def consistent_read() -> Iterator[None]:
    """A transaction in which every query sees the same moment, so files written from it agree.

    PostgreSQL needs REPEATABLE READ for that (its default gives each query its own snapshot);
    SQLite's transactions already read one snapshot.
    """
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


def export_files(study: Study) -> dict[str, bytes]:
    """The export's files by name: the two CSVs and a manifest with their SHA-256, sizes, row counts and columns.

    The manifest also holds the study's answer (and attention-check answer) and participant counts as
    the database reported them at the same moment, so a reader can check that nothing was left out, and
    the study's design and attention-check rule (``design_settings``).
    """
    columns = export_columns(study)
    with consistent_read():
        texts = export_texts(study)
        answers = Answer.objects.filter(item__participant__study=study)
        database_rows = {
            "answers": answers.count(),
            "attention_checks": answers.exclude(item__expected_choice="").count(),
            "participants": Participant.objects.filter(study=study).count(),
        }
        if study.is_usefulness:
            trials = TrialAnswer.objects.filter(item__participant__study=study)
            checks = trials.exclude(item__expected_answer="")
            database_rows |= {
                "trials": trials.filter(item__expected_answer="").count(),
                "attention_checks": checks.count(),
                "attention_checks_passed": checks.filter(answer=F("item__expected_answer")).count(),
            }
    files = {name: text.encode("utf-8") for name, (text, _) in texts.items()}
    manifest = {
        "study": study.slug,
        "exported_at": iso_utc(timezone.now()),
        "files": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "rows": texts[name][1],
                   "columns": list(columns[name])}
            for name, data in files.items()
        },
        "database_rows": database_rows,
        **design_settings(study),
    }
    files[MANIFEST_NAME] = (json.dumps(manifest, indent=2) + "\n").encode("utf-8")
    return files


def write_export(study: Study, out_dir: str | Path) -> dict[str, int]:
    """Write the CSVs and their manifest into ``out_dir`` (each file atomically, the manifest last); return row counts."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = export_files(study)
    for name, data in files.items():
        with atomic_binary(out / name) as handle:
            handle.write(data)
    return {name: entry["rows"] for name, entry in json.loads(files[MANIFEST_NAME])["files"].items()}


def export_zip(study: Study) -> bytes:
    """The export's files (CSVs and manifest) in one zip archive, for the dashboard download."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in export_files(study).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _is_check(header: list[str]) -> Callable[[list[str]], bool]:
    """Whether a row of a file with ``header`` is an attention check: answers.csv's question type
    ``attention_check``, trials.csv's non-empty ``expected_answer`` (never, for files with neither)."""
    if "question_type" in header:
        kind = header.index("question_type")
        return lambda row: len(row) > kind and row[kind] == ATTENTION_CHECK
    if EXPECTED_ANSWER in header:
        instructed = header.index(EXPECTED_ANSWER)
        return lambda row: len(row) > instructed and row[instructed] != ""
    return lambda row: False


def _csv_shape(path: Path) -> tuple[list[str], int, int]:
    """A CSV file's header, its number of data rows and how many of them are attention checks."""
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        is_check = _is_check(header)
        rows = checks = 0
        for row in reader:
            rows += 1
            checks += is_check(row)
    return header, rows, checks


def verify_export(folder: str | Path) -> list[str]:
    """Problems of an export folder: files missing or changed since export, row counts or columns off (empty: intact).

    Manifests from before attention checks list no columns and no check count; those checks are skipped for them.
    """
    root = Path(folder)
    try:
        manifest = json.loads((root / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [f"{root / MANIFEST_NAME}: cannot be read ({exc})."]
    problems = []
    for name, entry in manifest["files"].items():
        path = root / name
        if not path.is_file():
            problems.append(f"{path}: missing.")
            continue
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            problems.append(f"{path}: SHA-256 differs from the manifest (the file changed after export).")
        header, rows, checks = _csv_shape(path)
        if rows != entry["rows"]:
            problems.append(f"{path}: {rows} rows, the manifest says {entry['rows']}.")
        if "columns" in entry and header != entry["columns"]:
            problems.append(f"{path}: columns {header} differ from the manifest's {entry['columns']}.")
        expected_checks = manifest["database_rows"].get("attention_checks")
        if name == _checks_file(manifest) and expected_checks is not None and checks != expected_checks:
            problems.append(f"{path}: {checks} attention-check rows, but the database held {expected_checks}.")
    rows = manifest["database_rows"]
    tables = [("answers.csv", "answers", rows.get("answers")), ("participants.csv", "participants", rows.get("participants"))]
    if "trials.csv" in manifest["files"]:
        checks = rows.get("attention_checks", 0) if _checks_file(manifest) == "trials.csv" else 0
        tables.append(("trials.csv", "trials and attention checks" if checks else "trials",
                       None if rows.get("trials") is None else rows["trials"] + checks))
    for name, table, counted in tables:
        listed = manifest["files"].get(name, {}).get("rows")
        if listed != counted:
            problems.append(f"{root / MANIFEST_NAME}: {name} has {listed} rows but the database held {counted} {table}.")
    return problems


def _checks_file(manifest: dict) -> str | None:
    """The file whose rows include the attention checks: answers.csv of a preference study, trials.csv of
    a usefulness study with ``expected_answer`` (older usefulness exports and manifests have none)."""
    if "trials" not in manifest["database_rows"]:
        return "answers.csv"
    columns = manifest["files"].get("trials.csv", {}).get("columns", [])
    return "trials.csv" if EXPECTED_ANSWER in columns else None
