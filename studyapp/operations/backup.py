"""Backup and restore of everything a study needs, for SQLite and PostgreSQL alike (and across them).

A backup is one tar file: ``backup.json`` (format, time, row counts, SHA-256 and size of every member),
``backup.sig`` (an HMAC-SHA256 tag over backup.json under ``STUDY_BACKUP_KEY``, or a key derived from
``SECRET_KEY``), ``data.json`` (studies, bundles, participants, sequences, answers — a usefulness
study's trials, panels, trial sequences and trial answers too — and researcher accounts, read in one
consistent snapshot, times to the microsecond) and ``media/…`` (the stored stimulus and trial images
the data refers to). Restoring checks the tag, then streams each listed member
(size-checked before a byte is read; unlisted members are never read) into a temporary folder while
hashing it, checks the row counts of every table, then writes the images and loads the rows in one
transaction; a failure anywhere leaves the target as it was.
"""
from __future__ import annotations

import datetime as dt
import filecmp
import hashlib
import hmac
import io
import json
import re
import shutil
import tarfile
import tempfile
from collections import Counter
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

from contracts.files import atomic_binary
from studyapp.conf import study_settings
from studyapp.models import (
    Answer,
    Bundle,
    Dataset,
    Pair,
    Participant,
    SequenceItem,
    Stimulus,
    Study,
    Trial,
    TrialAnswer,
    TrialItem,
    TrialPanel,
)
from studyapp.operations.export import consistent_read, iso_utc

FORMAT = "bla-study-backup"
VERSION = 2  # 2: sizes in the header and an authentication tag; 1 (unsigned) restores only with trust_unsigned
HEADER_MEMBER, TAG_MEMBER, DATA_MEMBER = "backup.json", "backup.sig", "data.json"
HEADER_MAX_BYTES = 16 * 1024 * 1024
IMAGE_MAX_BYTES = 64 * 1024 * 1024
DATA_MAX_BYTES = 2 * 1024**3  # loaddata holds data.json in memory
CHUNK = 1024 * 1024
ATTENTION_CHECKS_MIGRATION = "0003_attention_checks"
# Parents before children, so that the rows load in this order.
MODELS: tuple[type[models.Model], ...] = (
    Group, User, Study, Bundle, Dataset, Pair, Stimulus, Trial, TrialPanel, Participant, SequenceItem, Answer,
    TrialItem, TrialAnswer,
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
    """Stored image names the database refers to (preference pairs and usefulness trials alike)."""
    names = {name for model in (Stimulus, Pair, Trial, TrialPanel) for name in model.objects.values_list("image", flat=True)}
    return sorted(name for name in names if name)


def _add(archive: tarfile.TarFile, name: str, data: bytes, listing: dict[str, dict[str, Any]]) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(timezone.now().timestamp()), 0o600
    archive.addfile(info, io.BytesIO(data))
    listing["sha256"][name] = hashlib.sha256(data).hexdigest()
    listing["bytes"][name] = len(data)


def backup_tag(header: bytes) -> str:
    """The authentication tag of a backup's header: HMAC-SHA256 under the operator's backup key."""
    # The old module path stays in the key: every backup made so far is signed with it.
    key = study_settings().study_backup_key or f"studyapp.backup:{settings.SECRET_KEY}"
    return hmac.new(hashlib.sha256(key.encode()).digest(), header, hashlib.sha256).hexdigest()


def write_backup(out: str | Path, progress: Callable[[int], None] | None = None) -> BackupSummary:
    """Write a backup of all study data and stimulus images to ``out`` (a temporary file, then renamed);
    its folder is created if missing."""
    target = Path(out)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(f"--out {str(target)!r}: cannot create folder {str(target.parent)!r} ({exc.strerror}).") from None
    with consistent_read():
        rows = {_label(m): m.objects.count() for m in MODELS}
        data = serializers.serialize(
            "json", (obj for m in MODELS for obj in m.objects.order_by("pk").iterator(chunk_size=2000)),
            cls=ExactJSONEncoder, use_natural_foreign_keys=True, use_natural_primary_keys=True, indent=None,
        ).encode("utf-8")  # fmt: skip
        media = _media_names()
        migrations = sorted(MigrationRecorder.Migration.objects.filter(app="studyapp").values_list("name", flat=True))
    listing: dict[str, dict[str, Any]] = {"sha256": {}, "bytes": {}}
    with atomic_binary(target) as handle, tarfile.open(fileobj=handle, mode="w") as archive:
        _add(archive, DATA_MEMBER, data, listing)
        for name in media:
            path = Path(settings.MEDIA_ROOT) / name
            try:
                _add(archive, f"media/{name}", path.read_bytes(), listing)
            except FileNotFoundError:
                raise BackupError(f"{path}: a stored image the database refers to is missing.") from None
            if progress:
                progress(1)
        header = {
            "format": FORMAT, "version": VERSION, "created_at": iso_utc(timezone.now()),
            "source_database": connection.vendor, "studyapp_migrations": migrations,
            "rows": rows, **listing,
        }  # fmt: skip
        header_bytes = json.dumps(header, indent=2).encode("utf-8")
        unlisted: dict[str, dict[str, Any]] = {"sha256": {}, "bytes": {}}
        _add(archive, HEADER_MEMBER, header_bytes, unlisted)
        _add(archive, TAG_MEMBER, backup_tag(header_bytes).encode("ascii"), unlisted)
    return BackupSummary(target, rows, len(media))


def trial_answers(rows: dict[str, int]) -> str:
    """The commands' note of a backup's usefulness trials (", 40 trial answers"); empty without any."""
    count = rows.get(_label(TrialAnswer), 0)
    return f", {count} trial answers" if count else ""


def _member_bytes(archive: tarfile.TarFile, member: tarfile.TarInfo | None, limit: int, path: Path, name: str) -> bytes:
    """A small member's content, refused before reading when it is missing, not a plain file or too large."""
    if member is None:
        raise BackupError(f"{path}: not a {FORMAT} file ({name} is missing).")
    _check_member(member, limit, path)
    return archive.extractfile(member).read()


def _check_member(member: tarfile.TarInfo, limit: int, path: Path) -> None:
    if not member.isreg() or member.issparse():
        raise BackupError(f"{path}: member {member.name!r} is not a plain file.")
    if member.size > limit:
        raise BackupError(f"{path}: member {member.name!r} is {member.size:,} bytes; at most {limit:,} are allowed.")


def _authentic_header(archive: tarfile.TarFile, members: dict[str, tarfile.TarInfo], path: Path,
                      trust_unsigned: bool) -> dict[str, Any]:
    """The header, once its tag proved it was written with this server's backup key."""
    raw = _member_bytes(archive, members.get(HEADER_MEMBER), HEADER_MAX_BYTES, path, HEADER_MEMBER)
    if not trust_unsigned:
        if TAG_MEMBER not in members:
            raise BackupError(f"{path}: the backup is not signed (no {TAG_MEMBER}); restore it only if you trust "
                              "its origin, with --trust-unsigned.")  # fmt: skip
        tag = _member_bytes(archive, members[TAG_MEMBER], 256, path, TAG_MEMBER).decode("ascii", "replace")
        if not hmac.compare_digest(tag.strip(), backup_tag(raw)):
            raise BackupError(f"{path}: the backup's authentication tag does not match: it was altered, or written "
                              "under another STUDY_BACKUP_KEY / SECRET_KEY.")  # fmt: skip
    try:
        header = json.loads(raw)
        ok = header.get("format") == FORMAT and isinstance(header.get("sha256"), dict)
    except (ValueError, AttributeError):
        ok = False
    if not ok:
        raise BackupError(f"{path}: not a {FORMAT} file ({HEADER_MEMBER} is unreadable).")
    if header.get("version") not in (1, VERSION) or (header["version"] == 1 and not trust_unsigned):
        raise BackupError(f"{path}: backup format version {header.get('version')!r}; this app reads {VERSION}.")
    return header


def _extract_listed(archive: tarfile.TarFile, members: dict[str, tarfile.TarInfo], header: dict[str, Any],
                    path: Path, folder: Path) -> dict[str, Path]:
    """Stream every member the header lists into ``folder``, hashing as it goes; nothing else is read."""
    files: dict[str, Path] = {}
    sizes = header.get("bytes", {})
    for number, (name, digest) in enumerate(header["sha256"].items()):
        if name != DATA_MEMBER and not MEDIA_MEMBER.fullmatch(name):
            raise BackupError(f"{path}: member {name!r} is not a data or stimulus image file.")
        member = members.get(name)
        if member is None:
            raise BackupError(f"{path}: member {name!r} is missing (the file is truncated).")
        _check_member(member, DATA_MAX_BYTES if name == DATA_MEMBER else IMAGE_MAX_BYTES, path)
        if name in sizes and member.size != sizes[name]:
            raise BackupError(f"{path}: member {name!r} is {member.size} bytes, the header says {sizes[name]}.")
        files[name] = folder / str(number)
        hasher = hashlib.sha256()
        with archive.extractfile(member) as source, files[name].open("wb") as target:
            while chunk := source.read(CHUNK):
                hasher.update(chunk)
                target.write(chunk)
        if hasher.hexdigest() != digest:
            raise BackupError(f"{path}: member {name!r} does not match its SHA-256 (the file is damaged).")
    return files


def _read_backup(path: Path, folder: Path, trust_unsigned: bool) -> tuple[dict[str, Any], dict[str, Path]]:
    """The authenticated header and the listed members (as files in ``folder``), each checked against its SHA-256."""
    if not path.is_file():
        raise BackupError(f"{path}: backup file does not exist.")
    try:
        with tarfile.open(path, mode="r:") as archive:
            members: dict[str, tarfile.TarInfo] = {}
            for member in archive.getmembers():
                if member.name in members:
                    raise BackupError(f"{path}: member {member.name!r} appears twice.")
                members[member.name] = member
            header = _authentic_header(archive, members, path, trust_unsigned)
            return header, _extract_listed(archive, members, header, path, folder)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BackupError(f"{path}: not a readable backup file ({exc}).") from None


def _check_rows(path: Path, header: dict[str, Any], fixture: Path) -> None:
    """The rows data.json holds, per table (researcher accounts and groups too), must be the header's counts."""
    try:
        objects = json.loads(fixture.read_bytes())
        found = Counter(obj["model"] for obj in objects)
    except (ValueError, TypeError, KeyError):
        raise BackupError(f"{path}: {DATA_MEMBER} is not a list of rows.") from None
    expected = {k: v for k, v in header.get("rows", {}).items() if v}
    if dict(found) != expected or set(found) - {_label(m) for m in MODELS}:
        raise BackupError(f"{path}: {DATA_MEMBER} holds rows {dict(found)}, the header lists {expected}.")


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


def _write_media(files: dict[str, Path]) -> list[Path]:
    """Put the backup's images into media storage; return the files this call created."""
    root = Path(settings.MEDIA_ROOT)
    wanted = {root / MEDIA_MEMBER.fullmatch(n).group(1): source for n, source in files.items() if n != DATA_MEMBER}
    for path, source in wanted.items():
        if path.exists() and not filecmp.cmp(path, source, shallow=False):
            raise BackupError(f"{path}: already exists with different content; restore into an empty media folder.")
    created: list[Path] = []
    try:
        for path, source in wanted.items():
            if path.exists():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_binary(path) as handle, source.open("rb") as data:
                shutil.copyfileobj(data, handle, CHUNK)
            created.append(path)
    except BaseException:
        for path in created:
            path.unlink(missing_ok=True)
        raise
    return created


def restore_backup(source: str | Path, *, replace: bool = False, trust_unsigned: bool = False) -> BackupSummary:
    """Restore an authenticated backup into the (migrated) database and media folder, all or nothing.

    ``trust_unsigned`` skips the authentication tag (a backup from before tags, or from a server whose key
    is lost); the checksums and row counts are still checked.
    """
    path = Path(source)
    with tempfile.TemporaryDirectory() as folder:
        header, files = _read_backup(path, Path(folder), trust_unsigned)
        _check_rows(path, header, files[DATA_MEMBER])
        _check_target(path, header, replace)
        created = _write_media(files)
        try:
            with transaction.atomic():
                if replace:
                    Participant.objects.all().delete()
                    Study.objects.all().delete()
                fixture = files[DATA_MEMBER].rename(Path(folder) / DATA_MEMBER)
                call_command("loaddata", str(fixture), verbosity=0)
                if ATTENTION_CHECKS_MIGRATION not in header.get("studyapp_migrations", []):
                    Study.objects.update(attention_checks=0)  # studies from before checks keep their behaviour
                rows = {_label(m): m.objects.count() for m in MODELS if m not in (Group, User)}
                expected = {k: header["rows"].get(k, 0) for k in rows}  # tables newer than the backup: none
                if rows != expected:
                    raise BackupError(f"{path}: loaded rows {rows} differ from the backup's {expected}.")
        except BaseException:
            for created_path in created:
                created_path.unlink(missing_ok=True)
            raise
    return BackupSummary(path, header["rows"], len(files) - 1)
