"""The starts of a BLA module (bla_core.liveness) on hand-made feature maps with hand-computed values."""
import math

import pytest
import torch

from bla_core.attention import BoundedLogitAttention
from bla_core.config import TrainConfig
from bla_core.errors import BLAError
from bla_core.l2x import L2XSelector
from bla_core.liveness import SMALL_SPREAD, regime_start, start_bla


def module_reading_channel_0(theta: float = 0.1) -> BoundedLogitAttention:
    """A BLA-T module whose raw score g is 2·(channel 0) + 1 (hand-set, so the start's effect is computable)."""
    module = BoundedLogitAttention(channels=2, theta=theta, gamma=0.98 / 4)
    with torch.no_grad():
        module.score.weight.zero_()
        module.score.weight[0, 0, 0, 0] = 2.0
        module.score.bias.fill_(1.0)
    return module


# Channel 0 over the 2×2 positions: 0, 1, 2, 3 → raw scores 1, 3, 5, 7 (SD √(20/3)); channel 1 is noise.
FEATURES = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]], [[5.0, -1.0], [0.5, 2.0]]]])
SCORE_SD = math.sqrt(20 / 3)


def bounded_logits(module: BoundedLogitAttention) -> list[float]:
    return module(FEATURES, hard=False).logits.flatten().tolist()


@pytest.mark.parametrize("start, spread", [("centred", 1.0), ("small", SMALL_SPREAD)])
def test_centring_starts_put_half_the_logits_at_the_bound_at_their_scale(start, spread):
    module = module_reading_channel_0(theta=0.5)
    start_bla(module, FEATURES, start)
    factor = spread / (0.5 * SCORE_SD)  # θ·g gets SD `spread`
    assert module.score.weight[0, 0, 0, 0].item() == pytest.approx(2.0 * factor)
    # scaled scores 1f, 3f, 5f, 7f minus their (lower) median 3f: −2f, 0, 2f, 4f, bounded at 0
    assert module.score.bias.item() == pytest.approx(1.0 * factor - 3.0 * factor)
    assert bounded_logits(module) == pytest.approx([-2 * factor, 0.0, 0.0, 0.0], abs=1e-6 * factor)
    theta_g = 0.5 * (torch.tensor([0.0, 1.0, 2.0, 3.0]) * module.score.weight[0, 0, 0, 0] + module.score.bias)
    assert theta_g.std().item() == pytest.approx(spread)
    assert sum(v < -1e-6 * factor for v in bounded_logits(module)) == 1  # below the median: β passes gradient
    module(FEATURES, hard=False).pooled.sum().backward()
    assert module.score.weight.grad.abs().sum() > 0


def test_the_paper_start_leaves_the_glorot_weights_and_zero_bias_as_they_are():
    module = module_reading_channel_0()
    start_bla(module, FEATURES, "paper")
    assert module.score.weight[0, 0, 0, 0].item() == 2.0 and module.score.bias.item() == 1.0
    assert bounded_logits(module) == [0.0, 0.0, 0.0, 0.0]  # every raw score positive: the dead start it can give


def test_a_small_start_selects_the_higher_half_with_q_near_uniform():
    module = module_reading_channel_0()
    start_bla(module, FEATURES, "small")
    out = module(FEATURES, hard=False)
    assert out.mask.flatten().tolist()[0] is False and out.mask.flatten().tolist()[2:] == [True, True]
    # θ·ℓ of the lowest cell: θ·(−2·factor) with factor = SMALL_SPREAD/(θ·SD) → −2·SMALL_SPREAD/SD
    low = math.exp(-2 * SMALL_SPREAD / SCORE_SD)
    assert out.weights.flatten().tolist() == pytest.approx([low / (low + 3)] + [1 / (low + 3)] * 3, abs=1e-6)


def test_starts_leave_other_poolings_alone():
    module = L2XSelector(channels=2, k=1)
    before = module.score.weight.clone(), module.score.bias.clone()
    for start in ("centred", "small", "paper"):
        start_bla(module, FEATURES, start)
    assert torch.equal(module.score.weight, before[0]) and torch.equal(module.score.bias, before[1])


def test_each_regime_has_its_own_default_and_a_named_start_wins():
    assert regime_start(None, end_to_end=True) == "centred"
    assert regime_start(None, end_to_end=False) == "small"
    assert regime_start("paper", end_to_end=True) == "paper"
    assert TrainConfig(bla_start="small").bla_start == "small"


def test_an_unknown_start_is_one_clear_error():
    with pytest.raises(BLAError, match="unknown BLA start 'glorot'; choose one of centred, small, paper"):
        TrainConfig(bla_start="glorot")
    with pytest.raises(BLAError, match="unknown BLA start"):
        start_bla(module_reading_channel_0(), FEATURES, "glorot")
