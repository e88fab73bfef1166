"""The explained classifier h = F → pooling (average, BLA, BLA-T, L2X-F) → L (dropout, linear)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .attention import BoundedLogitAttention
from .dropout import Dropout
from .errors import BLAError
from .l2x import L2XSelector
from .pooling import AveragePooling, PoolingOutput

METHODS = ("baseline", "bla", "bla_t", "bla_ph", "l2x_f")
EXPLANATION_METHODS = METHODS[1:]


@dataclass(frozen=True)
class PoolingConfig:
    """Hyper-parameters of the pooling layer; ``gamma`` is the absolute BLA-T threshold."""

    method: str = "baseline"
    theta: float = 0.1
    gamma: float | None = None
    k: int = 8
    tau: float = 0.1
    l2x_pooling: str = "sum"  # L2X-F training pooling, see L2XSelector


def check_method(method: str) -> None:
    """Raise a clear error for a method name that is not one of :data:`METHODS`."""
    if method not in METHODS:
        raise BLAError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")


def check_pooling(config: PoolingConfig, positions: int) -> None:
    """Raise a clear error when ``config`` cannot pool a feature map of ``positions`` = h·w cells."""
    check_method(config.method)
    if config.method == "l2x_f" and config.k > positions:
        raise BLAError(f"L2X-F k={config.k} is larger than the {positions} positions of the feature map")
    if config.method in ("bla_t", "bla_ph") and config.gamma is None:
        raise BLAError(f"method {config.method!r} needs a threshold gamma")


def build_pooling(config: PoolingConfig, channels: int, positions: int) -> nn.Module:
    """The pooling layer of ``config.method`` for a feature map with ``positions`` = h·w cells."""
    check_pooling(config, positions)
    if config.method == "baseline":
        return AveragePooling()
    if config.method == "l2x_f":
        return L2XSelector(channels, k=config.k, tau=config.tau, pooling=config.l2x_pooling)
    gamma = None if config.method == "bla" else config.gamma
    return BoundedLogitAttention(channels, theta=config.theta, gamma=gamma)


@dataclass
class ClassifierOutput:
    """Class logits (B, K) and the pooling's explanation (see :class:`PoolingOutput`)."""

    logits: torch.Tensor
    explanation: PoolingOutput


class ExplainedClassifier(nn.Module):
    """A classifier whose pooling layer may be an explanation module.

    Args:
        backbone: the feature extractor F (frozen for every method that explains).
        pooling: :class:`AveragePooling`, :class:`BoundedLogitAttention` or :class:`L2XSelector`.
        num_classes: number of output classes of the head L.
        dropout: dropout probability before the linear layer (paper: 0.2).

    ``forward(x)`` runs F then :meth:`forward_features`; training from cached features calls
    :meth:`forward_features` directly, since F is frozen.
    """

    def __init__(self, backbone: nn.Module, pooling: nn.Module, num_classes: int, dropout: float = 0.2) -> None:
        super().__init__()
        self.backbone = backbone
        self.pooling = pooling
        self.head = nn.Sequential(Dropout(dropout), nn.Linear(backbone.out_channels, num_classes))

    @property
    def classifier(self) -> nn.Linear:
        """The linear layer of the head L (its weights give CAM)."""
        return self.head[1]

    def forward(self, x: torch.Tensor, hard: bool | None = None) -> ClassifierOutput:
        return self.forward_features(self.backbone(x), hard=hard)

    def forward_features(self, features: torch.Tensor, hard: bool | None = None) -> ClassifierOutput:
        """Pool a (B, C, h, w) feature map and classify it; ``hard`` defaults to ``not training``."""
        explanation = self.pooling(features, hard=hard)
        return ClassifierOutput(logits=self.head(explanation.pooled), explanation=explanation)

    def freeze_backbone(self) -> None:
        """Hold F fixed: no gradients and eval-mode layers (no batch-norm or dropout updates)."""
        self.backbone.requires_grad_(False)
        self.backbone.eval()

    def train(self, mode: bool = True) -> "ExplainedClassifier":
        super().train(mode)
        if not any(p.requires_grad for p in self.backbone.parameters()):
            self.backbone.eval()
        return self
