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
from .errors import BLAError
from .pooling import position_scores


BLA_STARTS = ("centred", "small", "paper")
END_TO_END_START = "centred"  # default when F trains with the module (mnist38, §4.1): keeps modules alive
FROZEN_FEATURE_START = "small"  # default when only the head and module train on frozen features (photos, §4.2)
CENTRED_SPREAD = 1.0  # "centred": SD of θ·g over the start batch's positions
SMALL_SPREAD = 0.1  # "small": the same centring at the scale of the paper's Glorot start on Lite0 features (0.09)


def check_start(start: str | None) -> None:
    """Raise a clear error for a start name that is not one of :data:`BLA_STARTS` (None: per regime)."""
    if start is not None and start not in BLA_STARTS:
        raise BLAError(f"unknown BLA start {start!r}; choose one of {', '.join(BLA_STARTS)}")


def regime_start(start: str | None, end_to_end: bool) -> str:
    """The start a run uses: the configured one, else the default of its training regime."""
    check_start(start)
    if start is not None:
        return start
    return END_TO_END_START if end_to_end else FROZEN_FEATURE_START


@torch.no_grad()
def centre_bounded_logits(pooling: nn.Module, features: torch.Tensor, spread: float = CENTRED_SPREAD) -> None:
    """Start a BLA module alive: scale its 1×1 convolution so that θ·g has SD ``spread`` over the
    positions of ``features``, and shift its bias so that half of the logits lie below the bound.

    With logits on both sides of 0, β passes gradient from the first step; at the scale where θ·ℓ
    matters (``spread`` 1), q is not uniform from the start and the hard explanation follows the soft
    one (see README for what each part changed on mnist38). Other pooling layers are left as they are.
    """
    if not isinstance(pooling, BoundedLogitAttention):
        return
    features = features.to(pooling.score.weight.dtype)
    sd = position_scores(features, pooling.score).std()
    if sd > 0:
        factor = spread / (pooling.theta * sd)
        pooling.score.weight *= factor
        pooling.score.bias *= factor
    pooling.score.bias -= position_scores(features, pooling.score).median()


@torch.no_grad()
def start_bla(pooling: nn.Module, features: torch.Tensor, start: str) -> None:
    """Start a BLA module as ``start`` says, from the feature maps ``features`` of the first training images.

    * ``centred``: :func:`centre_bounded_logits` at θ·g SD 1 — the end-to-end default, which keeps
      mnist38's modules alive;
    * ``small``: the same centring at θ·g SD :data:`SMALL_SPREAD` — the frozen-feature default. Adam
      moves every weight by about the learning rate per step whatever its size, so a module scaled up
      to unit spread (×11 on Lite0's features) learns eleven times slower relative to its logits, and
      a head training of a few hundred steps keeps the random half of the cells it started with (mostly
      background). At the paper's own scale the cells that carry the class rise to the bound as from
      the paper's start, and the centring keeps the module alive (smaller spreads, 0.01–0.03, let whole
      runs drift above the bound: dead); measured in docs/benchmarks.md, "Localisation";
    * ``paper``: the Keras default of the paper and the authors' code (Glorot weights, zero bias).

    Other pooling layers are left as they are.
    """
    check_start(start)
    if start == "centred":
        centre_bounded_logits(pooling, features)
    elif start == "small":
        centre_bounded_logits(pooling, features, SMALL_SPREAD)


def gradient_size(parameters: list[nn.Parameter]) -> float:
    """Σ |gradient| over ``parameters`` (0 where no gradient reached them)."""
    return float(sum(p.grad.abs().sum().item() for p in parameters if p.grad is not None))


def is_dead(sizes: torch.Tensor, positions: int, variable_size: bool, first_gradient: float | None) -> bool:
    """A module is dead when it got no gradient at the first step, or (variable-size modules only)
    when its hard explanation selects all ``positions`` cells of every validation image."""
    uniform = variable_size and bool((sizes == positions).all())
    return uniform or first_gradient == 0.0
