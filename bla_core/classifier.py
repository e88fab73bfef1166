"""The explained classifier h = F → pooling (average, BLA, BLA-T, L2X-F) → L (dropout, linear)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .dropout import Dropout
from .pooling import PoolingOutput


@dataclass(frozen=True)
class PoolingConfig:
    """Hyper-parameters of the pooling layer of ``method`` (a key of bla_core.methods.METHODS);
    ``gamma`` is the absolute BLA-T threshold."""

    method: str = "baseline"
    theta: float = 0.1
    gamma: float | None = None
    k: int = 8
    tau: float = 0.1
    l2x_pooling: str = "sum"  # L2X-F training pooling, see L2XSelector


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
