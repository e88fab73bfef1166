"""Bounded logit attention (BLA, BLA-T): the paper's explanation module Q and its discretisation E."""
from __future__ import annotations

import torch
from torch import nn

from .errors import BLAError
from .pooling import PoolingOutput, check_feature_map, masked_mean, position_scores, weighted_sum


def bounded(x: torch.Tensor) -> torch.Tensor:
    """The β activation min(x, 0): logits bounded from above by 0 (paper §3.1)."""
    return torch.clamp(x, max=0.0)


def hard_mask(logits: torch.Tensor) -> torch.Tensor:
    """δ_i = 1 iff ℓ_i = max_j ℓ_j per image; (B, H, W) → bool (B, H, W), never empty.

    Whenever any logit sits at the bound this is exactly the paper's δ_i = 1 iff ℓ_i = 0; when none
    does, the positions of the largest logit are selected instead of an empty explanation.
    """
    peak = logits.flatten(1).max(dim=1).values
    return logits == peak[:, None, None]


class BoundedLogitAttention(nn.Module):
    """BLA pooling: 1×1 conv → β → softmax(θ·ℓ) over the h·w positions → Σ q_i f_i.

    Args:
        channels: number of feature channels C of the backbone's feature map.
        theta: temperature θ multiplying the logits before the softmax (paper: 0.1).
        gamma: threshold γ for BLA-T. ``None`` gives plain BLA (v = Σ q_i f_i); a float gives the
            differentiable thresholding of the authors' code, v = Σ ReLU(q_i − γ) f_i.

    In hard mode (default in ``eval()``) the pooled feature is the mean of the f_i with δ_i = 1,
    which is the model whose accuracy is reported.
    """

    def __init__(self, channels: int, theta: float = 0.1, gamma: float | None = None) -> None:
        super().__init__()
        if channels < 1:
            raise BLAError(f"channels must be positive, got {channels}")
        if theta <= 0:
            raise BLAError(f"theta must be positive, got {theta}")
        if gamma is not None and not 0.0 <= gamma < 1.0:
            raise BLAError(f"gamma must lie in [0, 1), got {gamma}")
        self.theta = theta
        self.gamma = gamma
        self.score = nn.Conv2d(channels, 1, kernel_size=1)

    def forward(self, features: torch.Tensor, hard: bool | None = None) -> PoolingOutput:
        check_feature_map(features)
        hard = (not self.training) if hard is None else hard
        logits = bounded(position_scores(features, self.score))
        batch, height, width = logits.shape
        q = torch.softmax(self.theta * logits.flatten(1), dim=1).view(batch, height, width)
        mask = hard_mask(logits)
        if hard:
            pooled = masked_mean(features, mask)
        elif self.gamma is None:
            pooled = weighted_sum(features, q)
        else:
            pooled = weighted_sum(features, torch.relu(q - self.gamma))
        return PoolingOutput(pooled=pooled, weights=q, logits=logits, mask=mask)

    def extra_repr(self) -> str:
        return f"theta={self.theta}, gamma={self.gamma}"
