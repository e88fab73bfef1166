"""A stimulus bundle uploaded as a .zip: bounded receipt, safe unpacking, the import's own checks, all-or-nothing.

The site refuses file uploads everywhere (``security.NoFileUploads``); the bundle upload view swaps
in ``BoundedUpload`` for its one request. The zip is unpacked into a fresh temporary folder only
after every member passed the checks here (no absolute or ``..`` paths, no links or special files,
no encryption, at most ``STUDY_UPLOAD_MAX_MEMBERS`` members and ``STUDY_UPLOAD_MAX_UNPACKED_BYTES``
in all, counted while writing, whatever the zip's headers claim). The bundle is then checked by
``bundle.validate_bundle`` and ``contracts.bundle.check_manifest``, the checks of ``import_stimuli``.
"""
from __future__ import annotations

import stat
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from django.contrib.auth.models import AbstractBaseUser
from django.core.files.uploadhandler import SkipFile, TemporaryFileUploadHandler
from django.db import IntegrityError, transaction

from contracts.bundle import MANIFEST_NAME, BundleFileError, check_manifest, read_manifest
from studyapp.conf import study_settings
from studyapp.models import Study, attention_check_problem
from studyapp.operations.bundle import BundleError, ValidatedBundle, import_bundle, validate_bundle

COPY_CHUNK = 1024 * 1024
IGNORED_TOP_LEVEL = {"__MACOSX"}


class UploadRefused(Exception):
    """The upload cannot be imported; ``problems`` lists every reason found, one sentence each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class BoundedUpload(TemporaryFileUploadHandler):
    """Spools one uploaded file to a temporary file and drops it once it passes ``STUDY_UPLOAD_MAX_BYTES``."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.limit = study_settings().study_upload_max_bytes
        self.received = 0
        self.too_large = False

    def handle_raw_input(self, input_data: IO[bytes], META: dict, content_length: int, boundary: bytes,
                         encoding: str | None = None) -> None:  # fmt: skip
        # The body holds the file and a few small fields: far past the limit, its file is skipped (never stored).
        self.too_large = content_length > self.limit + 64 * 1024
        return None

    def new_file(self, *args: object, **kwargs: object) -> None:
        if self.too_large:
            raise SkipFile()
        super().new_file(*args, **kwargs)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        if self.received > self.limit:
            self.too_large = True
            self.file.close()
            raise SkipFile()
        return super().receive_data_chunk(raw_data, start)


def size_problem() -> str:
    """The sentence for a zip larger than the upload limit."""
    return f"The file is larger than {study_settings().study_upload_max_bytes:,} bytes (STUDY_UPLOAD_MAX_BYTES)."


def member_problems(archive: zipfile.ZipFile) -> list[str]:
    """Every reason to refuse the zip's members before any of them is unpacked."""
    members = archive.infolist()
    limits = study_settings()
    max_members, max_bytes = limits.study_upload_max_members, limits.study_upload_max_unpacked_bytes
    problems = []
    if len(members) > max_members:
        problems.append(f"The zip holds {len(members):,} entries; at most {max_members:,} are allowed "
                        "(STUDY_UPLOAD_MAX_MEMBERS).")  # fmt: skip
    declared = sum(member.file_size for member in members)
    if declared > max_bytes:
        problems.append(f"The zip unpacks to {declared:,} bytes; at most {max_bytes:,} are allowed "
                        "(STUDY_UPLOAD_MAX_UNPACKED_BYTES).")  # fmt: skip
    for member in members:
        problem = _member_problem(member)
        if problem:
            problems.append(f"{member.filename!r}: {problem}")
    return problems


def _member_problem(member: zipfile.ZipInfo) -> str | None:
    path = PurePosixPath(member.filename.replace("\\", "/"))
    mode = member.external_attr >> 16
    if path.is_absolute() or (path.parts and ":" in path.parts[0]):
        return "an absolute path; every entry must lie inside the bundle."
    if ".." in path.parts:
        return "a path that leaves the bundle ('..')."
    if stat.S_ISLNK(mode):
        return "a symbolic link; the zip must hold plain files only."
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):  # 0: no Unix type recorded (e.g. Windows)
        return "not a plain file or folder."
    if member.flag_bits & 0x1:
        return "encrypted; upload an unencrypted zip."
    return None


def unpack(archive: zipfile.ZipFile, folder: Path) -> None:
    """Write the checked members under ``folder``, stopping the moment the real total passes the limit."""
    budget = limit = study_settings().study_upload_max_unpacked_bytes
    for member in archive.infolist():
        target = folder / PurePosixPath(member.filename.replace("\\", "/"))
        if member.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(member) as source, target.open("wb") as out:
            while chunk := source.read(COPY_CHUNK):
                budget -= len(chunk)
                if budget < 0:
                    raise UploadRefused([
                        f"The zip unpacks to more than {limit:,} bytes "
                        "(STUDY_UPLOAD_MAX_UNPACKED_BYTES)."
                    ])  # fmt: skip
                out.write(chunk)


def bundle_root(folder: Path) -> Path:
    """The folder holding manifest.json: the zip's top level, or its one top-level folder."""
    if (folder / MANIFEST_NAME).is_file():
        return folder
    tops = [p for p in folder.iterdir() if p.name not in IGNORED_TOP_LEVEL]
    if len(tops) == 1 and tops[0].is_dir() and (tops[0] / MANIFEST_NAME).is_file():
        return tops[0]
    raise UploadRefused([f"The zip holds no {MANIFEST_NAME} at its top level or in its one top-level folder."])


def bundle_problems(root: Path, error: BundleError) -> list[str]:
    """The import's error and, when the manifest reads as JSON, every problem the bundle contract finds."""
    problems = [str(error)]
    try:
        manifest, _ = read_manifest(root, study_settings().study_import_max_manifest_bytes)
    except BundleFileError:
        return problems
    problems += [p for p in check_manifest(manifest) if not any(p in known for known in problems)]
    return problems


def _relative(problems: list[str], root: Path) -> list[str]:
    """The messages with the temporary folder taken out: paths are shown as they are inside the zip."""
    return [p.replace(f"{root}/", "").replace(str(root), "the bundle") for p in problems]


@contextmanager
def unpacked_bundle(upload: IO[bytes]) -> Iterator[ValidatedBundle]:
    """The uploaded zip unpacked into a temporary folder and validated; the folder is removed afterwards."""
    try:
        archive = zipfile.ZipFile(upload)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UploadRefused([f"The file is not a readable zip archive ({exc})."]) from None
    with archive, tempfile.TemporaryDirectory(prefix="bla-upload-") as temporary:
        problems = member_problems(archive)
        if problems:
            raise UploadRefused(problems)
        folder = Path(temporary)
        try:
            unpack(archive, folder)
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError) as exc:
            raise UploadRefused([f"The zip cannot be unpacked ({exc})."]) from None
        root = bundle_root(folder)
        try:
            bundle = validate_bundle(root)
        except BundleError as exc:
            raise UploadRefused(_relative(bundle_problems(root, exc), root)) from None
        yield bundle


@dataclass(frozen=True)
class NewStudy:
    """What the researcher chose for the study the bundle goes into."""

    slug: str
    title: str
    attention_checks: int


def create_study(upload: IO[bytes], choice: NewStudy, owner: AbstractBaseUser) -> Study:
    """Create the draft study ``choice`` from the uploaded bundle, owned by ``owner``; nothing on any problem."""
    with unpacked_bundle(upload) as bundle:
        problem = attention_check_problem(choice.attention_checks,
                                          bundle.questions_per_participant(Study().questions_per_cell))
        if problem:
            raise UploadRefused([problem])
        try:
            with transaction.atomic():
                study = Study.objects.create(
                    slug=choice.slug, title=choice.title, attention_checks=choice.attention_checks
                )
                import_bundle(bundle, study.slug, title=choice.title)
                study.researchers.add(owner)
        except IntegrityError:
            raise UploadRefused([f"A study with the address {choice.slug!r} exists already; choose another."]) from None
        except BundleError as exc:
            raise UploadRefused(_relative([str(exc)], bundle.root)) from None
    return study
