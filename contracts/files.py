"""Atomic writes: a file or folder appears whole or not at all, whichever stage writes it."""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_path(target: Path, mode: int = 0o644) -> Iterator[Path]:
    """A temporary path beside ``target``, renamed onto it only if the block succeeds.

    An exception (or a crash) leaves ``target`` as it was and removes the temporary file.
    """
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=target.suffix or ".tmp")
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_binary(target: Path) -> Iterator[BinaryIO]:
    """A binary handle on a temporary file that replaces ``target`` when the block ends without error."""
    with atomic_path(target) as temporary, temporary.open("wb") as handle:
        yield handle


@contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """A temporary sibling folder that replaces ``target`` (if any) only if the block succeeds."""
    temporary = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
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
