"""Generation's checks before an atomic write (one sentence on failure); the writes are ``contracts.files``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from contracts import files
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
    stack = ExitStack()
    try:
        temporary = stack.enter_context(files.atomic_directory(target))
    except OSError as exc:
        raise GenerationError(f"{target}: cannot create a folder beside it ({exc.strerror})") from None
    with stack:
        yield temporary


@contextmanager
def atomic_file(target: Path, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary sibling path that is renamed onto `target` only if the block succeeds."""
    check_writable(target, overwrite, "file")
    with files.atomic_path(target) as temporary:
        yield temporary
