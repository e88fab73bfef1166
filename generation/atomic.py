"""Write folders and files so that a failure leaves nothing half-written behind."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from generation.errors import GenerationError


def check_writable(target: Path, overwrite: bool, what: str) -> None:
    """Fail early, with one sentence, if `target` cannot be (re)written."""
    parent = target.parent
    if target.exists() and not overwrite:
        raise GenerationError(f"{target}: {what} already exists; choose another path or pass --overwrite")
    if not parent.is_dir():
        state = "is not a folder" if parent.exists() else "does not exist"
        raise GenerationError(f"{target}: cannot write the {what} because {parent} {state}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise GenerationError(f"{target}: cannot write the {what} because folder {parent} is not writable")


@contextmanager
def atomic_directory(target: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling folder that replaces `target` only if the block succeeds."""
    check_writable(target, overwrite, "bundle")
    try:
        temporary = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    except OSError as exc:
        raise GenerationError(f"{target}: cannot create a folder beside it ({exc.strerror})") from None
    try:
        yield temporary
        os.chmod(temporary, 0o755)
        _replace_directory(temporary, target)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def _replace_directory(source: Path, target: Path) -> None:
    if not target.exists():
        os.rename(source, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    os.rename(target, old / target.name)
    os.rename(source, target)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def atomic_file(target: Path, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary sibling path that is renamed onto `target` only if the block succeeds."""
    check_writable(target, overwrite, "file")
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix, dir=target.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
