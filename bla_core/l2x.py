"""L2X-F: L2X (Chen et al. 2018) applied to the feature map, the paper's fixed-size baseline (§3.3)."""
from __future__ import annotations

import torch
from torch import nn

from .errors import BLAError
from .pooling import PoolingOutput, check_feature_map, masked_mean, position_scores, weighted_sum

TRAINING_POOLINGS = ("sum", "mean")  # sum: the authors' Σ g_i f_i; mean: Σ g_i f_i / Σ g_i


def concrete_mask(logits: torch.Tensor, uniform: torch.Tensor, tau: float) -> torch.Tensor:
    """Element-wise max over k concrete samples softmax((ℓ + G)·τ), G = −log(−log u).

    ``logits`` (B, n), ``uniform`` (B, k, n) noise in (0, 1) → (B, n). τ multiplies, as in the
    authors' code (Chen et al.'s L2X divides by its temperature).
    """
    gumbel = -torch.log(-torch.log(uniform))
    return torch.softmax((logits.unsqueeze(1) + gumbel) * tau, dim=2).max(dim=1).values


def top_k_mask(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Exactly the k largest positions per image, (B, H, W) → bool (B, H, W).

    Ties are broken by position (the lower flat index wins) so the mask always has exactly k
    cells and is the same on every run, unlike a ``>=`` threshold that admits tied logits.
    """
    batch, height, width = logits.shape
    flat = logits.flatten(1)
    # A stable descending sort keeps tied logits in index order.
    order = torch.sort(flat, dim=1, descending=True, stable=True).indices[:, :k]
    mask = torch.zeros_like(flat, dtype=torch.bool)
    mask.scatter_(1, order, True)
    return mask.view(batch, height, width)


class L2XSelector(nn.Module):
    """Selects k of the h·w feature positions with unbounded 1×1-conv logits.

    Args:
        channels: number of feature channels C.
        k: number of positions selected (paper: 8).
        tau: factor τ applied to the noisy logits of each concrete sample, softmax((ℓ + G)·τ),
            multiplying as in the authors' code (Chen et al., 2018; 0.1).
        pooling: how training pools with the relaxed mask g (the element-wise max of k concrete
            samples, fresh Gumbel noise on every forward): ``sum`` Σ g_i f_i as the authors did
            (Σ g is about 1 at initialisation and up to k later), ``mean`` Σ g_i f_i / Σ g_i.

    Evaluation (hard mode) pools the plain mean over exactly the top-k positions, so with ``sum``
    the model is trained and evaluated with different poolings, as the authors' Table 1 numbers
    were. The noise-free soft evaluation pools Σ softmax(ℓ·τ)_i f_i (weights summing to 1).
    """

    def __init__(self, channels: int, k: int = 8, tau: float = 0.1, pooling: str = "sum") -> None:
        super().__init__()
        if channels < 1:
            raise BLAError(f"channels must be positive, got {channels}")
        if k < 1:
            raise BLAError(f"k must be at least 1, got {k}")
        if tau <= 0:
            raise BLAError(f"tau must be positive, got {tau}")
        if pooling not in TRAINING_POOLINGS:
            raise BLAError(f"unknown L2X-F training pooling {pooling!r}; use {' or '.join(TRAINING_POOLINGS)}")
        self.k = k
        self.tau = tau
        self.pooling = pooling
        self.score = nn.Conv2d(channels, 1, kernel_size=1)

    def forward(self, features: torch.Tensor, hard: bool | None = None) -> PoolingOutput:
        check_feature_map(features)
        batch, _, height, width = features.shape
        if self.k > height * width:
            raise BLAError(
                f"L2X-F cannot select k={self.k} positions from a {height}×{width} feature map "
                f"({height * width} positions)"
            )
        hard = (not self.training) if hard is None else hard
        logits = position_scores(features, self.score)
        mask = top_k_mask(logits, self.k)
        if hard:
            return PoolingOutput(pooled=masked_mean(features, mask), weights=None, logits=logits, mask=mask)
        if not self.training:
            weights = self.expected_weights(logits)
            return PoolingOutput(pooled=weighted_sum(features, weights), weights=weights, logits=logits, mask=mask)
        weights = self.relaxed_mask(logits)
        pooling = weights if self.pooling == "sum" else weights / weights.sum(dim=(1, 2), keepdim=True)
        return PoolingOutput(pooled=weighted_sum(features, pooling), weights=weights, logits=logits, mask=mask)

    def relaxed_mask(self, logits: torch.Tensor) -> torch.Tensor:
        """The relaxed mask g of :func:`concrete_mask` with fresh uniform noise; (B, H, W)."""
        batch, height, width = logits.shape
        uniform = torch.rand(batch, self.k, height * width, dtype=logits.dtype, device=logits.device)
        uniform.clamp_(min=torch.finfo(logits.dtype).tiny)
        return concrete_mask(logits.flatten(1), uniform, self.tau).view(batch, height, width)

    def expected_weights(self, logits: torch.Tensor) -> torch.Tensor:
        """Noise-free soft weights softmax(ℓ·τ) used for the deterministic soft evaluation."""
        batch, height, width = logits.shape
        return torch.softmax(logits.flatten(1) * self.tau, dim=1).view(batch, height, width)

    def extra_repr(self) -> str:
        return f"k={self.k}, tau={self.tau}, pooling={self.pooling}"
