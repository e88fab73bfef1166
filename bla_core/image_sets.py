"""What a dataset split is to the rest of bla_core: the :class:`ImageSet` interface, in-memory image
sets, the train/validation pair :class:`DatasetSplits` and the seeded stratified split."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .errors import BLAError


@runtime_checkable
class ImageSet(Protocol):
    """A split's images: items are (float tensor (C, H, W) in [0, 1], label).

    ``paths`` holds each image's file, or is ``None`` for images without one (``explain`` then
    writes them as PNG).
    """

    image_ids: list[str]
    labels: torch.Tensor
    paths: list[str] | None

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]: ...

    def pil_image(self, index: int) -> Image.Image:
        """The image as Pillow sees it (8-bit), for writing stimuli."""


@runtime_checkable
class FileImageSet(ImageSet, Protocol):
    """Images read from files and resized on load to ``size`` (height, width) with ``interpolation``."""

    paths: list[str]
    size: tuple[int, int]
    interpolation: str

    def resized(self, size: tuple[int, int], interpolation: str) -> "FileImageSet":
        """The same files delivered at another input size (a backbone's data config)."""


class TensorImageSet(Dataset):
    """Images held in memory as a float tensor (N, C, H, W) in [0, 1], with ids and labels.

    ``paths`` is ``None``: these images have no file, so ``explain`` writes them as PNG.
    """

    paths: list[str] | None = None

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, image_ids: list[str]) -> None:
        self.images = images
        self.labels = labels
        self.image_ids = image_ids

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])

    def pil_image(self, index: int) -> Image.Image:
        """The image as Pillow sees it (8-bit), for writing stimuli."""
        array = (self.images[index].clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        if array.shape[0] == 1:
            return Image.fromarray(array[0], mode="L")
        return Image.fromarray(np.moveaxis(array, 0, -1), mode="RGB")


@dataclass
class DatasetSplits:
    """A dataset ready for training: its key, study wording, class names and the two splits."""

    key: str
    title: str
    task: str
    class_names: list[str]
    train: ImageSet
    val: ImageSet
    default_backbone: str = "efficientnet_b0"
    gamma_factor: float = 0.98  # γ = gamma_factor / n, the authors' code (the paper's text: 1/n)
    default_epochs: int = 5  # paper: 3 for MNIST (§4.1), 2 for cats vs dogs and 5 for the others (§4.2)
    default_steps: int | None = None  # the paper's optimisation steps, for a subsample of its dataset
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why it could not be read)
    fixed_split: bool = False  # True: the dataset defines its split; seed and fraction do not apply

    def split(self, name: str) -> ImageSet:
        """The split called ``name`` (``train`` or ``val``)."""
        if name not in ("train", "val"):
            raise BLAError(f"unknown split {name!r}; use 'train' or 'val'")
        return getattr(self, name)


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) with ``val_fraction`` of every class in val, shuffled by ``seed``."""
    if not 0.0 < val_fraction < 1.0:
        raise BLAError(f"the validation fraction must lie strictly between 0 and 1, got {val_fraction}")
    rng = np.random.default_rng(seed)
    train, val = [], []
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        n_val = int(round(len(members) * val_fraction))
        val.append(members[:n_val])
        train.append(members[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def file_list_fingerprint(paths: list[str]) -> str:
    """SHA-256 over every file's path, size and modification time: any change to the list changes it."""
    digest = hashlib.sha256()
    for path in paths:
        stat = os.stat(path)
        digest.update(f"{path}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()
