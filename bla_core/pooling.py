"""Pooling layers that sit between the frozen backbone F and the head L.

Every pooling layer maps a feature map ``f`` of shape (B, C, H, W) to a :class:`PoolingOutput`.
Explanation modules additionally return their per-position weights, logits and hard mask so the
explanation is a by-product of the forward pass, not a second computation.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .errors import BLAError


@dataclass
class PoolingOutput:
    """Result of pooling a (B, C, H, W) feature map.

    ``pooled`` is (B, C). ``weights``, ``logits`` and ``mask`` are (B, H, W) or ``None`` for
    pooling without an explanation: ``weights`` are the soft weights actually used (q for BLA),
    ``logits`` the explanation module's logits and ``mask`` the hard explanation δ (bool).
    """

    pooled: torch.Tensor
    weights: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    mask: torch.Tensor | None = None


def check_feature_map(features: torch.Tensor) -> None:
    """Raise a clear ``ValueError`` unless ``features`` is a (B, C, H, W) tensor."""
    if not isinstance(features, torch.Tensor) or features.dim() != 4:
        shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
        raise BLAError(f"expected a feature map of shape (batch, channels, height, width), got {shape}")


def masked_mean(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the feature vectors at the positions where ``mask`` (B, H, W) is true: (B, C)."""
    weights = mask.to(features.dtype)
    weights = weights / weights.sum(dim=(1, 2), keepdim=True)
    return weighted_sum(features, weights)


def positions_last(features: torch.Tensor) -> torch.Tensor | None:
    """A (B, h·w, C) view of a channels-last feature map (the cache's layout), or None for other layouts."""
    batch, channels, height, width = features.shape
    nhwc = features.permute(0, 2, 3, 1)
    return nhwc.reshape(batch, height * width, channels) if nhwc.is_contiguous() else None


def weighted_sum(features: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Σ_i w_i f_i over the spatial positions: (B, C, H, W) × (B, H, W) → (B, C).

    Channels-last maps (the cache's layout) take one batched matrix product over contiguous rows;
    a backbone's (B, C, H, W) output takes a broadcast product and sum, 2–3× faster on the CPU than
    the batched matrix product or einsum over its strided positions. The result is the same.
    """
    rows = positions_last(features)
    if rows is None:
        return (features * weights.unsqueeze(1).to(features.dtype)).sum(dim=(2, 3))
    return torch.bmm(weights.reshape(weights.shape[0], 1, -1).to(rows.dtype), rows).squeeze(1)


def position_scores(features: torch.Tensor, score: nn.Conv2d) -> torch.Tensor:
    """The 1×1 convolution ``score`` (one filter) at every position: (B, C, H, W) → (B, H, W).

    A one-filter convolution is a weighted channel sum: as a broadcast product and sum it costs a
    third of ``Conv2d`` on the CPU (small 1-output convolutions are slow in oneDNN).
    """
    rows = positions_last(features)
    if rows is None:
        weight = score.weight.view(1, -1, 1, 1).to(features.dtype)
        return (features * weight).sum(dim=1) + score.bias.to(features.dtype)
    batch, _, height, width = features.shape
    values = nn.functional.linear(rows, score.weight.view(1, -1), score.bias)
    return values.view(batch, height, width)


class AveragePooling(nn.Module):
    """Global average pooling, the pooling of the baseline model h = F ∘ L."""

    def forward(self, features: torch.Tensor, hard: bool | None = None) -> PoolingOutput:
        check_feature_map(features)
        return PoolingOutput(pooled=features.mean(dim=(2, 3)))
