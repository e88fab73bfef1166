"""Dead explanation modules: how a BLA module starts alive, and how a run whose module died is found.

A BLA module is *dead* when every logit of its 1×1 convolution sits at or above the bound: β passes
no gradient, q stays uniform, and the hard explanation selects all n positions, so "BLA-T" silently
becomes average pooling. Features after a ReLU are non-negative, so with zero bias this happens
whenever the convolution's weights favour the channels' common component (measured in README).
"""
from __future__ import annotations

import torch
from torch import nn

from .attention import BoundedLogitAttention
from .pooling import position_scores


@torch.no_grad()
def centre_bounded_logits(pooling: nn.Module, features: torch.Tensor) -> None:
    """Start a BLA module alive: scale its 1×1 convolution so that θ·g has unit SD over the
    positions of ``features``, and shift its bias so that half of the logits lie below the bound.

    With logits on both sides of 0, β passes gradient from the first step; at the scale where θ·ℓ
    matters, q is not uniform from the start and the hard explanation follows the soft one (see
    README for what each part changed on mnist38). Other pooling layers are left as they are.
    """
    if not isinstance(pooling, BoundedLogitAttention):
        return
    features = features.to(pooling.score.weight.dtype)
    spread = position_scores(features, pooling.score).std()
    if spread > 0:
        factor = 1.0 / (pooling.theta * spread)
        pooling.score.weight *= factor
        pooling.score.bias *= factor
    pooling.score.bias -= position_scores(features, pooling.score).median()


def gradient_size(parameters: list[nn.Parameter]) -> float:
    """Σ |gradient| over ``parameters`` (0 where no gradient reached them)."""
    return float(sum(p.grad.abs().sum().item() for p in parameters if p.grad is not None))


def is_dead(sizes: torch.Tensor, positions: int, variable_size: bool, first_gradient: float | None) -> bool:
    """A module is dead when it got no gradient at the first step, or (variable-size modules only)
    when its hard explanation selects all ``positions`` cells of every validation image."""
    uniform = variable_size and bool((sizes == positions).all())
    return uniform or first_gradient == 0.0


def dead_warning(method: str, seed: int, mean_size: float) -> str:
    """The warning line printed for a dead run."""
    return (f"warning: the {method} explanation module of seed {seed} is dead (mean hard explanation size "
            f"{mean_size:.1f} cells: every cell of every image, or no gradient at the first step); its numbers "
            "are those of average pooling, not of an explanation")
