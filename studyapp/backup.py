"""Backup and restore of everything a study needs, for SQLite and PostgreSQL alike (and across them).

A backup is one tar file: ``backup.json`` (format, time, row counts, SHA-256 of every member),
``data.json`` (studies, bundles, participants, sequences, answers and researcher accounts, read in one
consistent snapshot, times to the microsecond) and ``media/…`` (the stored stimulus images the data
refers to). Restoring checks every checksum first, then writes the images and loads the rows in one
transaction; a failure anywhere leaves the target as it was.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core import serializers
from django.core.management import call_command
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

from .export import consistent_read, iso_utc
from .files import atomic_file
from .models import Answer, Bundle, Dataset, Pair, Participant, SequenceItem, Stimulus, Study

FORMAT = "bla-study-backup"
VERSION = 1
# Parents before children, so that the rows load in this order.
MODELS: tuple[type[models.Model], ...] = (
    Group, User, Study, Bundle, Dataset, Pair, Stimulus, Participant, SequenceItem, Answer,
)  # fmt: skip
MEDIA_MEMBER = re.compile(r"media/(stimuli/[A-Za-z0-9_-]{16,64}\.(?:png|jpg))")


class BackupError(Exception):
    """A backup cannot be written or restored; the message is one sentence naming the file and problem."""


class ExactJSONEncoder(DjangoJSONEncoder):
    """Django's encoder, but times keep their microseconds (Django's cuts them to milliseconds)."""

    def default(self, o: Any) -> Any:
        if isinstance(o, dt.datetime | dt.time):
            return o.isoformat()
        return super().default(o)


@dataclass(frozen=True)
class BackupSummary:
    """What a backup holds or a restore loaded."""

    path: Path
    rows: dict[str, int]
    media_files: int


def _label(model: type[models.Model]) -> str:
    return model._meta.label_lower


def _media_names() -> list[str]:
    """Stored image names the database refers to."""
    names = set(Stimulus.objects.values_list("image", flat=True)) | set(Pair.objects.values_list("image", flat=True))
    return sorted(name for name in names if name)


def _add(archive: tarfile.TarFile, name: str, data: bytes, checksums: dict[str, str]) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(timezone.now().timestamp()), 0o600
    archive.addfile(info, io.BytesIO(data))
    checksums[name] = hashlib.sha256(data).hexdigest()


def write_backup(out: str | Path, progress: Callable[[int], None] | None = None) -> BackupSummary:
    """Write a backup of all study data and stimulus images to ``out`` (a temporary file, then renamed)."""
    target = Path(out)
    if not target.parent.is_dir():
        raise BackupError(f"--out {str(target)!r}: folder {str(target.parent)!r} does not exist.")
    with consistent_read():
        rows = {_label(m): m.objects.count() for m in MODELS}
        data = serializers.serialize(
            "json", (obj for m in MODELS for obj in m.objects.order_by("pk").iterator(chunk_size=2000)),
            cls=ExactJSONEncoder, use_natural_foreign_keys=True, use_natural_primary_keys=True, indent=None,
        ).encode("utf-8")  # fmt: skip
        media = _media_names()
        migrations = sorted(MigrationRecorder.Migration.objects.filter(app="studyapp").values_list("name", flat=True))
    checksums: dict[str, str] = {}
    with atomic_file(target) as handle, tarfile.open(fileobj=handle, mode="w") as archive:
        _add(archive, "data.json", data, checksums)
        for name in media:
            path = Path(settings.MEDIA_ROOT) / name
            try:
                _add(archive, f"media/{name}", path.read_bytes(), checksums)
            except FileNotFoundError:
                raise BackupError(f"{path}: a stored image the database refers to is missing.") from None
            if progress:
                progress(1)
        header = {
            "format": FORMAT, "version": VERSION, "created_at": iso_utc(timezone.now()),
            "source_database": connection.vendor, "studyapp_migrations": migrations,
            "rows": rows, "sha256": checksums,
        }  # fmt: skip
        _add(archive, "backup.json", json.dumps(header, indent=2).encode("utf-8"), {})
    return BackupSummary(target, rows, len(media))


def _read_backup(path: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The header and members of a backup file, every member checked against its SHA-256."""
    if not path.is_file():
        raise BackupError(f"{path}: backup file does not exist.")
    try:
        with tarfile.open(path, mode="r") as archive:
            members = {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BackupError(f"{path}: not a readable backup file ({exc}).") from None
    try:
        header = json.loads(members["backup.json"])
        ok = header.get("format") == FORMAT and isinstance(header.get("sha256"), dict)
    except (KeyError, ValueError, AttributeError):
        ok = False
    if not ok:
        raise BackupError(f"{path}: not a {FORMAT} file (backup.json is missing or unreadable).")
    if header.get("version") != VERSION:
        raise BackupError(f"{path}: backup format version {header.get('version')!r}; this app reads {VERSION}.")
    for name, digest in header["sha256"].items():
        if name not in members:
            raise BackupError(f"{path}: member {name!r} is missing (the file is truncated).")
        if hashlib.sha256(members[name]).hexdigest() != digest:
            raise BackupError(f"{path}: member {name!r} does not match its SHA-256 (the file is damaged).")
        if name != "data.json" and not MEDIA_MEMBER.fullmatch(name):
            raise BackupError(f"{path}: member {name!r} is not a data or stimulus image file.")
    return header, {name: members[name] for name in header["sha256"]}


def _check_target(path: Path, header: dict[str, Any], replace: bool) -> None:
    applied = set(MigrationRecorder.Migration.objects.filter(app="studyapp").values_list("name", flat=True))
    missing = sorted(set(header.get("studyapp_migrations", [])) - applied)
    if missing:
        raise BackupError(f"{path}: the database lacks migrations {missing}; run `manage.py migrate` first.")
    studies = list(Study.objects.values_list("slug", flat=True))
    if studies and not replace:
        raise BackupError(
            f"the database already holds studies {studies}; restore into an empty database, "
            "or pass --replace to delete them first."
        )


def _write_media(members: dict[str, bytes]) -> list[Path]:
    """Put the backup's images into media storage; return the files this call created."""
    root = Path(settings.MEDIA_ROOT)
    wanted = {root / MEDIA_MEMBER.fullmatch(n).group(1): data for n, data in members.items() if n != "data.json"}
    for path, data in wanted.items():
        if path.exists() and path.read_bytes() != data:
            raise BackupError(f"{path}: already exists with different content; restore into an empty media folder.")
    created: list[Path] = []
    try:
        for path, data in wanted.items():
            if path.exists():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_file(path) as handle:
                handle.write(data)
            created.append(path)
    except BaseException:
        for path in created:
            path.unlink(missing_ok=True)
        raise
    return created


def restore_backup(source: str | Path, *, replace: bool = False) -> BackupSummary:
    """Restore a backup into the (migrated) database and media folder, all or nothing."""
    path = Path(source)
    header, members = _read_backup(path)
    _check_target(path, header, replace)
    created = _write_media(members)
    try:
        with transaction.atomic(), tempfile.TemporaryDirectory() as folder:
            if replace:
                Participant.objects.all().delete()
                Study.objects.all().delete()
            fixture = Path(folder) / "data.json"
            fixture.write_bytes(members["data.json"])
            call_command("loaddata", str(fixture), verbosity=0)
            rows = {_label(m): m.objects.count() for m in MODELS if m not in (Group, User)}
            expected = {k: v for k, v in header["rows"].items() if k in rows}
            if rows != expected:
                raise BackupError(f"{path}: loaded rows {rows} differ from the backup's {expected}.")
    except BaseException:
        for created_path in created:
            created_path.unlink(missing_ok=True)
        raise
    return BackupSummary(path, header["rows"], len(members) - 1)
