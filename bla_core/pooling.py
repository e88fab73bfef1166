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

    One batched matrix product over contiguous memory: (B, h·w, C) rows for a channels-last map (the
    cache's layout), (B, C, h·w) for a backbone's contiguous output, 1.5–2× faster on the CPU than a
    broadcast product and sum (which stays for other strides). The result is the same.
    """
    batch = weights.shape[0]
    flat = weights.reshape(batch, -1)
    rows = positions_last(features)
    if rows is not None:
        return torch.bmm(flat.unsqueeze(1).to(rows.dtype), rows).squeeze(1)
    if features.is_contiguous():
        columns = features.view(batch, features.shape[1], -1)
        return torch.bmm(columns, flat.unsqueeze(2).to(columns.dtype)).squeeze(2)
    return (features * weights.unsqueeze(1).to(features.dtype)).sum(dim=(2, 3))


def position_scores(features: torch.Tensor, score: nn.Conv2d) -> torch.Tensor:
    """The 1×1 convolution ``score`` (one filter) at every position: (B, C, H, W) → (B, H, W).

    A one-filter convolution is a weighted channel sum: as one matrix product over contiguous memory
    it costs a third to a fifth of ``Conv2d`` on the CPU (small 1-output convolutions are slow in oneDNN).
    """
    batch, channels, height, width = features.shape
    weight = score.weight.view(1, channels).to(features.dtype)
    bias = score.bias.to(features.dtype)
    rows = positions_last(features)
    if rows is not None:
        return nn.functional.linear(rows, weight, bias).view(batch, height, width)
    if features.is_contiguous():
        # bmm with the filter expanded (stride 0) avoids the copy matmul makes to fold the batch in.
        values = torch.bmm(weight.expand(batch, 1, channels), features.view(batch, channels, height * width))
        return (values + bias).view(batch, height, width)
    return (features * weight.view(1, channels, 1, 1)).sum(dim=1) + bias


class AveragePooling(nn.Module):
    """Global average pooling, the pooling of the baseline model h = F ∘ L."""

    def forward(self, features: torch.Tensor, hard: bool | None = None) -> PoolingOutput:
        check_feature_map(features)
        return PoolingOutput(pooled=features.mean(dim=(2, 3)))
