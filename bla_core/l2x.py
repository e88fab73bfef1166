"""L2X-F: L2X (Chen et al. 2018) applied to the feature map, the paper's fixed-size baseline (§3.3)."""
from __future__ import annotations

import torch
from torch import nn

from .errors import BLAError
from .pooling import PoolingOutput, check_feature_map, masked_mean, position_scores, weighted_sum


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
            as specified in DESIGN.md (0.1).

    Training pools with the continuous relaxation: the element-wise max of k concrete samples with
    fresh Gumbel noise on every forward, used as weights of a weighted mean. Evaluation (hard mode)
    pools the plain mean over exactly the top-k positions.
    """

    def __init__(self, channels: int, k: int = 8, tau: float = 0.1) -> None:
        super().__init__()
        if channels < 1:
            raise BLAError(f"channels must be positive, got {channels}")
        if k < 1:
            raise BLAError(f"k must be at least 1, got {k}")
        if tau <= 0:
            raise BLAError(f"tau must be positive, got {tau}")
        self.k = k
        self.tau = tau
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
        weights = self.relaxed_mask(logits) if self.training else self.expected_weights(logits)
        normalised = weights / weights.sum(dim=(1, 2), keepdim=True)
        return PoolingOutput(pooled=weighted_sum(features, normalised), weights=weights, logits=logits, mask=mask)

    def relaxed_mask(self, logits: torch.Tensor) -> torch.Tensor:
        """Element-wise max of k concrete samples softmax((ℓ + Gumbel)·τ); (B, H, W)."""
        batch, height, width = logits.shape
        flat = logits.flatten(1).unsqueeze(1).expand(batch, self.k, height * width)
        uniform = torch.rand_like(flat).clamp_(min=torch.finfo(flat.dtype).tiny)
        gumbel = -torch.log(-torch.log(uniform))
        samples = torch.softmax((flat + gumbel) * self.tau, dim=2)
        return samples.max(dim=1).values.view(batch, height, width)

    def expected_weights(self, logits: torch.Tensor) -> torch.Tensor:
        """Noise-free soft weights softmax(ℓ·τ) used for the deterministic soft evaluation."""
        batch, height, width = logits.shape
        return torch.softmax(logits.flatten(1) * self.tau, dim=1).view(batch, height, width)

    def extra_repr(self) -> str:
        return f"k={self.k}, tau={self.tau}"
