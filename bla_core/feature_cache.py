"""Frozen-feature cache: F(x) is computed once per image and memory-mapped by every head of every run.

F is frozen and there is no augmentation, so the feature maps of a dataset split depend only on
the backbone, its weights, the preprocessing and the files. Those four make the cache key; change
any of them (another model, a different weights file, a new input size, one image added, removed
or touched) and the key changes, so a stale cache can never be read.

Layout of one entry, ``<root>/features/<key>/``:

* ``features.npy`` — (N, h, w, C) in ``float16`` (default; halves disk and memory traffic, relative
  rounding ≤ 2⁻¹¹) or ``float32``, positions-major so a head reads each position's C values
  contiguously. Opened with ``numpy.load(mmap_mode=…)``: nothing is read until used.
* ``pooled.npy`` — (N, C) float32, the average-pooled features (of the stored values) that the
  baseline head trains from.
* ``key.json`` — what the key was computed from.

The root is ``$BLA_CORE_CACHE`` or ``~/.cache/bla_core``. Entries are written to ``<key>.partial``
and renamed when complete, so a killed extraction leaves nothing that could be read as a hit.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset
from tqdm.auto import tqdm

from . import distributed
from .backbones import Backbone, feature_map_shape
from .errors import BLAError
from .image_sets import FileImageSet, ImageSet, TensorImageSet, file_list_fingerprint

FORMAT_VERSION = 1
STORAGE_DTYPES = {"float16": np.float16, "float32": np.float32}


def cache_root() -> Path:
    """Where cached features live: ``$BLA_CORE_CACHE`` or ``~/.cache/bla_core``."""
    return Path(os.environ.get("BLA_CORE_CACHE") or Path.home() / ".cache" / "bla_core").expanduser()


def dataset_fingerprint(dataset: ImageSet) -> dict:
    """What identifies a split's inputs: its file list (path, size, mtime) or its in-memory pixels."""
    if isinstance(dataset, FileImageSet):
        paths = list(dataset.paths)
        return {"files": file_list_fingerprint(paths), "count": len(paths),
                "size": list(dataset.size), "interpolation": dataset.interpolation}
    if not isinstance(dataset, TensorImageSet):
        raise BLAError("the feature cache needs a dataset of files or of in-memory images")
    pixels = dataset.images.detach().cpu().contiguous().numpy()
    return {"pixels": hashlib.sha256(pixels.tobytes()).hexdigest(), "shape": list(pixels.shape)}


def cache_key(backbone: Backbone, dataset: ImageSet, dtype: str) -> tuple[str, dict]:
    """The entry name (hex) and the description it was hashed from."""
    preprocessing = backbone.preprocessing
    description = {
        "format": FORMAT_VERSION,
        "backbone": backbone.name,
        "weights": backbone.weights_id,
        "preprocessing": asdict(preprocessing) if preprocessing is not None else None,
        "dataset": dataset_fingerprint(dataset),
        "dtype": dtype,
    }
    text = json.dumps(description, sort_keys=True, default=list)
    return hashlib.sha256(text.encode()).hexdigest()[:32], description


class CachedFeatures:
    """A split's cached feature maps, memory-mapped: ``maps`` (N, h, w, C) and ``pooled`` (N, C)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        # copy-on-write maps are writable views for torch without ever touching the file
        self.maps = torch.from_numpy(np.load(folder / "features.npy", mmap_mode="c"))
        self.pooled = torch.from_numpy(np.load(folder / "pooled.npy", mmap_mode="c"))


@torch.no_grad()
def extract_into(backbone: Backbone, dataset: ImageSet, target: np.ndarray, pooled: np.ndarray,
                 device: torch.device, batch_size: int, desc: str) -> None:
    """Write F(x) of this process's share of the batches into ``target`` / ``pooled`` (rows in order).

    Under torchrun every process takes every world-th batch; batch boundaries are those of a single
    process, so the numbers written are the same whatever the number of processes.
    """
    starts = list(range(0, len(dataset), batch_size))[distributed.rank()::distributed.world_size()]
    indices = [i for s in starts for i in range(s, min(s + batch_size, len(dataset)))]
    workers = min(8, os.cpu_count() or 1) if dataset.paths is not None else 0
    loader = DataLoader(Subset(dataset, indices), batch_size=batch_size, shuffle=False, num_workers=workers,
                        pin_memory=device.type == "cuda")
    autocast = (torch.autocast("cuda", dtype=torch.float16) if device.type == "cuda" else contextlib.nullcontext())
    backbone.eval()
    for start, (images, _) in zip(starts, tqdm(loader, desc=desc, leave=False, unit="batch",
                                               disable=distributed.progress_disabled())):
        images = images.to(device, non_blocking=True)
        if device.type == "cuda":
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast:
            maps = backbone(images)
        stored = maps.float().permute(0, 2, 3, 1).to(dtype=torch.from_numpy(target[:0]).dtype)
        rows = slice(start, start + len(images))
        target[rows] = stored.cpu().numpy()
        pooled[rows] = stored.float().mean(dim=(1, 2)).cpu().numpy()


def cached_features(backbone: Backbone, dataset: ImageSet, device: torch.device, dtype: str = "float16",
                    batch_size: int = 64, desc: str = "features") -> CachedFeatures:
    """The cache entry of (backbone, dataset): read when present (a hit), else computed and written.

    Under torchrun the processes share the extraction and all return the same entry.
    """
    if dtype not in STORAGE_DTYPES:
        raise BLAError(f"unknown feature storage dtype {dtype!r}; use float16 or float32")
    key, description = cache_key(backbone, dataset, dtype)
    folder = cache_root() / "features" / key
    if (folder / "key.json").is_file():
        return CachedFeatures(folder)
    partial = folder.with_name(f"{key}.partial")
    if distributed.is_main():
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        height, width, channels = feature_map_shape(backbone, dataset[0][0])
        np.lib.format.open_memmap(partial / "features.npy", mode="w+", dtype=STORAGE_DTYPES[dtype],
                                  shape=(len(dataset), height, width, channels)).flush()
        np.lib.format.open_memmap(partial / "pooled.npy", mode="w+", dtype=np.float32,
                                  shape=(len(dataset), channels)).flush()
    distributed.barrier()
    target = np.load(partial / "features.npy", mmap_mode="r+")
    pooled = np.load(partial / "pooled.npy", mmap_mode="r+")
    extract_into(backbone, dataset, target, pooled, device, batch_size, desc)
    target.flush()
    pooled.flush()
    del target, pooled
    distributed.barrier()
    if distributed.is_main():
        (partial / "key.json").write_text(json.dumps(description, indent=2, sort_keys=True, default=list) + "\n")
        os.replace(partial, folder)
    distributed.barrier()
    return CachedFeatures(folder)
