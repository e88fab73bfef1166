"""Datasets by spec string (``mnist38``, ``imagefolder:PATH`` …): the loaders by name and the ``datasets check`` report."""
from __future__ import annotations

from collections.abc import Callable

import torch

from .errors import BLAError
from .features import stack_labels
from .image_datasets import IMAGE_LOADERS
from .image_sets import DatasetSplits
from .mnist38 import load_mnist38

DATASET_LOADERS: dict[str, Callable[[str | None, int, float], DatasetSplits]] = {"mnist38": load_mnist38,
                                                                                **IMAGE_LOADERS}


def load_dataset(spec: str, seed: int = 0, val_fraction: float = 0.2) -> DatasetSplits:
    """Load the dataset named by ``spec`` (``NAME`` or ``NAME:PATH``) split by ``seed``."""
    name, _, argument = spec.partition(":")
    if name not in DATASET_LOADERS:
        raise BLAError(f"unknown dataset {spec!r}; known: {', '.join(sorted(DATASET_LOADERS))}")
    return DATASET_LOADERS[name](argument or None, seed, val_fraction)


def describe(splits: DatasetSplits, spec: str) -> str:
    """The ``datasets check`` report: classes, images per class and split, files that were skipped."""
    counts = {name: torch.bincount(stack_labels(splits.split(name)), minlength=len(splits.class_names))
              for name in ("train", "val")}
    how = "the dataset's own split" if splits.fixed_split else "a stratified split by --data-seed and --val-fraction"
    lines = [f"{spec}: {splits.title} — {len(splits.class_names)} classes, "
             f"{len(splits.train)} train / {len(splits.val)} val images ({how})",
             f"{'class':<40} {'train':>7} {'val':>7}"]
    lines += [f"{name[:40]:<40} {int(counts['train'][i]):>7} {int(counts['val'][i]):>7}"
              for i, name in enumerate(splits.class_names)]
    lines.append(f"{len(splits.skipped)} unreadable files skipped" + (":" if splits.skipped else ""))
    lines += [f"  {path}: {reason}" for path, reason in splits.skipped]
    return "\n".join(lines)

