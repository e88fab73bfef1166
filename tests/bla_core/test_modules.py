"""Explanation modules checked against values computed by hand on tiny feature maps."""
import math

import pytest
import torch
from torch import nn

from bla_core import BoundedLogitAttention, L2XSelector
from bla_core.attention import bounded, hard_mask
from bla_core.errors import BLAError
from bla_core.l2x import concrete_mask, top_k_mask
from bla_core.liveness import centre_bounded_logits
from bla_core.pooling import position_scores, weighted_sum


def bla_with_logits(raw: list[float], theta: float = 0.1, gamma: float | None = None) -> BoundedLogitAttention:
    """A BLA module whose 1×1 conv reads channel 0, so its raw scores g are the given values."""
    module = BoundedLogitAttention(channels=2, theta=theta, gamma=gamma)
    with torch.no_grad():
        module.score.weight.zero_()
        module.score.weight[0, 0, 0, 0] = 1.0
        module.score.bias.zero_()
    return module


def features_from(scores: list[float], second: list[float]) -> torch.Tensor:
    """A 1×2×2×2 feature map: channel 0 carries the scores, channel 1 the values to pool."""
    return torch.tensor([scores, second], dtype=torch.float32).view(1, 2, 2, 2)


def test_beta_is_min_of_x_and_zero():
    x = torch.tensor([-3.0, -0.5, 0.0, 0.7, 12.0])
    assert torch.equal(bounded(x), torch.tensor([-3.0, -0.5, 0.0, 0.0, 0.0]))


def test_soft_weights_are_softmax_of_theta_times_bounded_logits():
    scores = [2.0, -10.0, 0.0, -20.0]
    module = bla_with_logits(scores, theta=0.1)
    out = module(features_from(scores, [1.0, 2.0, 3.0, 4.0]), hard=False)
    logits = [0.0, -10.0, 0.0, -20.0]
    z = sum(math.exp(0.1 * l) for l in logits)
    expected = [math.exp(0.1 * l) / z for l in logits]
    assert out.logits.flatten().tolist() == logits
    assert out.weights.flatten().tolist() == pytest.approx(expected, rel=1e-6)
    # BLA soft pooling Σ q_i f_i on channel 1.
    assert out.pooled[0, 1].item() == pytest.approx(sum(q * f for q, f in zip(expected, [1, 2, 3, 4])), rel=1e-6)


def test_hard_mask_selects_positions_at_the_bound_and_pools_their_mean():
    scores = [2.0, -10.0, 0.5, -20.0]  # positions 0 and 2 sit at the bound ℓ = 0
    module = bla_with_logits(scores)
    out = module(features_from(scores, [1.0, 2.0, 3.0, 4.0]), hard=True)
    assert out.mask.flatten().tolist() == [True, False, True, False]
    assert out.pooled[0, 1].item() == pytest.approx((1.0 + 3.0) / 2)


def test_hard_mask_falls_back_to_the_largest_logit_when_none_is_at_zero():
    logits = torch.tensor([[[-3.0, -1.0], [-2.0, -1.0]], [[-5.0, -4.0], [-0.5, -9.0]]])
    mask = hard_mask(logits)
    assert mask[0].flatten().tolist() == [False, True, False, True]  # tie at the max: both kept
    assert mask[1].flatten().tolist() == [False, False, True, False]
    assert mask.flatten(1).sum(1).min() >= 1


def test_bla_t_pools_relu_of_q_minus_gamma_summed():
    scores = [0.0, -10.0, 0.0, -40.0]
    gamma = 0.25
    module = bla_with_logits(scores, gamma=gamma)
    out = module(features_from(scores, [1.0, 2.0, 3.0, 4.0]), hard=False)
    q = out.weights.flatten().tolist()
    weights = [max(w - gamma, 0.0) for w in q]
    assert weights[3] == 0.0 and weights[0] > 0.0  # below γ contributes nothing
    assert out.pooled[0, 1].item() == pytest.approx(sum(w * f for w, f in zip(weights, [1, 2, 3, 4])), rel=1e-6)


def test_default_mode_follows_train_and_eval():
    scores = [1.0, -10.0, -10.0, -10.0]
    module = bla_with_logits(scores)
    x = features_from(scores, [8.0, 0.0, 0.0, 0.0])
    module.eval()
    assert module(x).pooled[0, 1].item() == pytest.approx(8.0)  # hard: only position 0
    module.train()
    assert module(x).pooled[0, 1].item() < 8.0  # soft: weighted by q < 1


def test_gradients_reach_the_one_by_one_convolution():
    module = BoundedLogitAttention(channels=3, gamma=None)
    with torch.no_grad():
        module.score.bias.fill_(-1.0)  # keep logits below the bound, where β passes gradients
    features = torch.rand(2, 3, 4, 4)
    module(features, hard=False).pooled.sum().backward()
    assert module.score.weight.grad is not None
    assert module.score.weight.grad.abs().sum() > 0
    assert module.score.bias.grad is not None


def test_top_k_gives_exactly_k_positions_with_ties_broken_by_position():
    logits = torch.tensor([[[1.0, 1.0, 1.0], [1.0, 0.0, 1.0], [2.0, 1.0, 1.0]]])  # seven tied at 1.0
    mask = top_k_mask(logits, 3)
    assert mask.sum().item() == 3
    assert mask.flatten().tolist() == [True, True, False, False, False, False, True, False, False]


def test_l2x_eval_mean_pools_exactly_k_even_with_all_logits_tied():
    module = L2XSelector(channels=2, k=3).eval()
    with torch.no_grad():
        module.score.weight.zero_()
        module.score.bias.zero_()
    features = torch.arange(2 * 2 * 3, dtype=torch.float32).view(1, 2, 2, 3)
    out = module(features)
    assert out.mask.sum().item() == 3
    assert out.pooled[0, 0].item() == pytest.approx((0.0 + 1.0 + 2.0) / 3)


def test_l2x_training_draws_fresh_noise_and_weights_lie_in_zero_one():
    torch.manual_seed(0)
    module = L2XSelector(channels=4, k=2).train()
    features = torch.rand(1, 4, 3, 3)
    first, second = module(features), module(features)
    assert not torch.equal(first.weights, second.weights)
    assert (first.weights > 0).all() and (first.weights <= 1).all()
    first.pooled.sum().backward()
    assert module.score.weight.grad.abs().sum() > 0


def test_l2x_refuses_k_larger_than_the_feature_map():
    with pytest.raises(BLAError, match="k=10.*3×3"):
        L2XSelector(channels=2, k=10)(torch.rand(1, 2, 3, 3))


@pytest.mark.parametrize("module", [BoundedLogitAttention(2), L2XSelector(2, k=1)])
def test_wrong_tensor_rank_gives_a_clear_error(module):
    with pytest.raises(ValueError, match=r"batch, channels, height, width.*\(2, 3\)"):
        module(torch.rand(2, 3))


def test_concrete_mask_is_the_max_of_k_softmaxes_of_tau_times_noisy_logits():
    logits = torch.tensor([[1.0, -1.0]])
    uniform = torch.tensor([[[0.5, 0.25], [0.9, 0.1]]])  # k = 2 samples over n = 2 positions
    gumbel = [[-math.log(-math.log(u)) for u in row] for row in uniform[0].tolist()]
    tau = 0.1
    samples = []
    for noise in gumbel:
        z = [math.exp((l + g) * tau) for l, g in zip([1.0, -1.0], noise)]  # τ multiplies (authors' code)
        samples.append([v / sum(z) for v in z])
    expected = [max(s[0] for s in samples), max(s[1] for s in samples)]
    assert concrete_mask(logits, uniform, tau)[0].tolist() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("pooling", ["sum", "mean"])
def test_l2x_training_pools_the_relaxed_mask_summed_by_default_or_normalised(pooling):
    torch.manual_seed(0)
    module = L2XSelector(channels=2, k=3, pooling=pooling).train()
    features = torch.tensor([[[[0.0, 5.0], [2.0, 1.0]], [[1.0, 1.0], [1.0, 1.0]]]])  # channel 1: all ones
    out = module(features)
    g = out.weights.flatten().tolist()
    assert sum(g) > 1.0  # the max of 3 concrete samples sums to more than one sample's 1
    weights = g if pooling == "sum" else [w / sum(g) for w in g]
    assert out.pooled[0, 0].item() == pytest.approx(sum(w * f for w, f in zip(weights, [0.0, 5.0, 2.0, 1.0])), rel=1e-6)
    assert out.pooled[0, 1].item() == pytest.approx(sum(weights), rel=1e-6)  # Σ g for sum, 1 for mean


def test_l2x_refuses_an_unknown_training_pooling():
    with pytest.raises(BLAError, match="unknown L2X-F training pooling 'max'"):
        L2XSelector(channels=2, pooling="max")


def test_channel_first_scores_and_pooling_equal_the_convolution_and_einsum():
    torch.manual_seed(0)
    features = torch.rand(3, 5, 4, 4)
    score = nn.Conv2d(5, 1, kernel_size=1)
    weights = torch.rand(3, 4, 4)
    assert torch.allclose(position_scores(features, score), score(features).squeeze(1), atol=1e-6)
    assert torch.allclose(weighted_sum(features, weights), torch.einsum("bchw,bhw->bc", features, weights), atol=1e-5)
    channels_last = features.contiguous(memory_format=torch.channels_last)
    assert torch.allclose(position_scores(channels_last, score), score(features).squeeze(1), atol=1e-6)
    assert torch.allclose(weighted_sum(channels_last, weights), weighted_sum(features, weights), atol=1e-5)


def test_centring_puts_the_logits_on_both_sides_of_the_bound_at_unit_scale():
    module = bla_with_logits([0.0] * 4, theta=0.5)
    with torch.no_grad():
        module.score.bias.fill_(3.0)  # raw scores 3 + channel 0: all above the bound, a dead start
    features = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]]]])
    assert (module(features, hard=False).logits == 0).all()
    centre_bounded_logits(module, features)
    # scores 4, 5, 6, 7: SD √(5/3); scaled by 1/(θ·SD) = 2/√(5/3), then shifted by the (lower) median
    factor = 2 / math.sqrt(5 / 3)
    scores = [factor * s for s in (4.0, 5.0, 6.0, 7.0)]
    assert module.score.weight[0, 0, 0, 0].item() == pytest.approx(factor)
    assert module.score.bias.item() == pytest.approx(3.0 * factor - scores[1])
    assert module(features, hard=False).logits.flatten().tolist() == pytest.approx([-factor, 0.0, 0.0, 0.0])
    module(features, hard=False).pooled.sum().backward()
    assert module.score.weight.grad.abs().sum() > 0


def test_centring_leaves_other_poolings_alone():
    module = L2XSelector(channels=2, k=1)
    before = module.score.bias.clone()
    centre_bounded_logits(module, torch.rand(1, 2, 3, 3))
    assert torch.equal(module.score.bias, before)
