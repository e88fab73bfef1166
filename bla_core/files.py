"""Output files of bla_core: folders checked before any work, files written atomically."""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from contracts.files import atomic_path

from .errors import BLAError


def prepare_output_dir(path: Path) -> Path:
    """Create ``path`` (and parents) or fail with a clear error before any work is done."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BLAError(f"cannot create output folder {path}: {error.strerror}") from error
    if not os.access(path, os.W_OK):
        raise BLAError(f"output folder {path} is not writable")
    return path


def write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path``, so a crash never leaves half a file."""
    with atomic_path(path) as tmp:
        write(tmp)


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as indented JSON atomically."""
    write_atomic(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n"))
