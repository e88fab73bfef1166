"""The torch device a command runs on (``--device``)."""
from __future__ import annotations

import torch

from .errors import BLAError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; ``cpu``/``cuda[:i]`` force one."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BLAError(f"device {name!r} was requested but no CUDA device is available")
    try:
        return torch.device(name)
    except RuntimeError as error:
        raise BLAError(f"unknown device {name!r}; use auto, cpu or cuda") from error
