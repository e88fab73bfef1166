"""The head's dropout: torch's semantics (rate, scaling, eval identity, seeding) with a cheaper CPU mask."""
import pytest
import torch

from bla_core.dropout import Dropout, keep_mask


def test_keep_mask_rate_matches_probability():
    torch.manual_seed(0)
    mask = keep_mask(torch.Size((1000, 1000)), 0.8)
    assert mask.dtype == torch.bool and mask.shape == (1000, 1000)
    assert mask.float().mean().item() == pytest.approx(0.8, abs=0.002)


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_keep_mask_rate_for_other_probabilities(keep):
    torch.manual_seed(1)
    assert keep_mask(torch.Size((500_000,)), keep).float().mean().item() == pytest.approx(keep, abs=0.003)


def test_keep_mask_odd_sizes_and_independent_positions():
    torch.manual_seed(2)
    mask = keep_mask(torch.Size((20_001, 3)), 0.8).float()
    # the four 16-bit lanes of one draw must not be correlated: neighbours agree as often as chance says
    agree = (mask[:-1] == mask[1:]).float().mean().item()
    assert agree == pytest.approx(0.8 ** 2 + 0.2 ** 2, abs=0.01)


def test_training_output_is_zero_or_scaled_input():
    torch.manual_seed(3)
    x = torch.rand(64, 1280) + 0.5
    y = Dropout(0.2).train()(x)
    kept = y != 0
    assert torch.allclose(y[kept], x[kept] / 0.8)
    assert kept.float().mean().item() == pytest.approx(0.8, abs=0.01)


def test_eval_and_zero_rate_are_identity_and_one_drops_everything():
    x = torch.rand(4, 8)
    assert torch.equal(Dropout(0.2).eval()(x), x)
    assert torch.equal(Dropout(0.0).train()(x), x)
    assert torch.equal(Dropout(1.0).train()(x), torch.zeros_like(x))


def test_seeded_like_torch_and_gradient_is_the_mask():
    x = torch.rand(16, 32, requires_grad=True)
    torch.manual_seed(4)
    first = Dropout(0.2).train()(x)
    torch.manual_seed(4)
    second = Dropout(0.2).train()(x)
    assert torch.equal(first, second)
    first.sum().backward()
    assert torch.equal(x.grad, (first != 0).float() / 0.8)
