"""The settings of a training run (:class:`TrainConfig`), their checks and the dataset's defaults."""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, fields, replace

from . import distributed
from .backbones import LITE0, hub_offline, hub_weights_cached
from .methods import check_method
from .errors import BLAError
from .feature_cache import STORAGE_DTYPES
from .image_sets import DatasetSplits
from .l2x import TRAINING_POOLINGS
from .liveness import check_start


@dataclass
class TrainConfig:
    """Everything that determines a training run (defaults: paper §4.1)."""

    dataset: str = "mnist38"
    method: str = "baseline"
    seed: int = 0
    data_seed: int = 0
    val_fraction: float = 0.2
    backbone: str | None = None  # None: the dataset's default backbone (see resolve_config)
    weights: str | None = None  # none, hub, bundled or a file; None: hub for timm backbones
    epochs: int | None = None  # None: the dataset's default (paper: 3 MNIST, 2 cats vs dogs, 5 others;
    # mnist38 takes the paper's number of steps instead, see mnist38.PAPER_MNIST38_STEPS)
    baseline_epochs: int | None = None  # None: same as epochs
    batch_size: int = 32
    lr: float = 1e-3
    theta: float = 0.1
    gamma_factor: float | None = None  # γ = gamma_factor / (h·w); None: the dataset's default
    k: int = 8
    tau: float = 0.1
    l2x_pooling: str = "sum"  # L2X-F training pooling: sum (the authors') or mean
    bla_start: str | None = None  # start of a BLA module (liveness.BLA_STARTS); None: its regime's default
    dropout: float = 0.2
    cache_dtype: str = "float16"  # storage of cached frozen features

    def __post_init__(self) -> None:
        check_method(self.method)
        for name in ("epochs", "baseline_epochs", "batch_size", "k"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise BLAError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise BLAError(f"the learning rate must be positive, got {self.lr}")
        if self.l2x_pooling not in TRAINING_POOLINGS:
            raise BLAError(f"unknown L2X-F pooling {self.l2x_pooling!r}; use {' or '.join(TRAINING_POOLINGS)}")
        check_start(self.bla_start)
        if self.cache_dtype not in STORAGE_DTYPES:
            raise BLAError(f"unknown feature cache dtype {self.cache_dtype!r}; use float16 or float32")

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """A config from a stored dict; keys this version does not know are left out."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})


def resolved_gamma(config: TrainConfig, splits: DatasetSplits, positions: int) -> float:
    """The absolute BLA-T threshold γ = factor / n for a feature map of n positions."""
    factor = splits.gamma_factor if config.gamma_factor is None else config.gamma_factor
    return factor / positions


def resolve_config(config: TrainConfig, splits: DatasetSplits) -> TrainConfig:
    """Fill in the dataset's defaults, so the stored config says exactly what was trained.

    Backbone and weights: given ones are kept (a timm backbone without --weights takes ``hub``).
    Without --backbone a dataset's default is used; for photo datasets that is the paper's
    efficientnet_b0 with model-hub weights — when those are reachable (HF_HUB_OFFLINE=0) or already
    in the local hub cache — and otherwise the bundled ImageNet EfficientNet-Lite0
    (tf_efficientnet_lite0, --weights bundled), the default that works offline.
    """
    backbone, weights = config.backbone, config.weights
    if backbone is None:
        backbone = splits.default_backbone
        if backbone == "efficientnet_b0" and weights is None and hub_offline() and not hub_weights_cached(backbone):
            backbone, weights = LITE0, "bundled"
            if distributed.is_main():
                print(f"note: efficientnet_b0 hub weights are not available offline; using {LITE0} "
                      "--weights bundled (pass --backbone/--weights to choose)", file=sys.stderr)
    if backbone != "mnist_cnn" and weights is None:
        weights = "hub"
    return replace(config, backbone=backbone, weights=weights,
                   epochs=config.epochs or default_epochs(splits, config.batch_size))


def default_epochs(splits: DatasetSplits, batch_size: int) -> int:
    """The dataset's epochs, or as many as its default number of optimisation steps takes."""
    if splits.default_steps is None:
        return splits.default_epochs
    return math.ceil(splits.default_steps / math.ceil(len(splits.train) / batch_size))
