"""CAM, Grad-CAM and the random-swap control against hand-computed values."""
import pytest
import torch

from bla_core import cam, grad_cam
from bla_core.errors import BLAError

FEATURES = torch.tensor(
    [[[[1.0, 0.0], [2.0, 4.0]], [[0.0, 1.0], [1.0, -1.0]]]]
)  # (1, 2 channels, 2, 2)


def test_cam_is_the_class_weighted_sum_of_feature_maps(linear_baseline):
    # class 1 weights (0.5, 3.0): 0.5*ch0 + 3*ch1
    expected = torch.tensor([[[0.5, 3.0], [4.0, -1.0]]])
    assert torch.allclose(cam(linear_baseline, FEATURES, torch.tensor([1])), expected)


def test_cam_decomposes_the_logit(linear_baseline):
    logits = linear_baseline(FEATURES).logits
    predicted = logits.argmax(1)
    maps = cam(linear_baseline, FEATURES)  # defaults to the predicted class
    bias = linear_baseline.classifier.bias[predicted]
    assert torch.allclose(maps.mean(dim=(1, 2)) + bias, logits.gather(1, predicted[:, None]).squeeze(1))


def test_grad_cam_equals_relu_cam_over_n_for_an_average_pooled_linear_head(linear_baseline):
    target = torch.tensor([1])
    n = FEATURES.shape[2] * FEATURES.shape[3]
    expected = torch.relu(cam(linear_baseline, FEATURES, target)) / n
    assert torch.allclose(grad_cam(linear_baseline, FEATURES, target), expected)
    assert not linear_baseline.training  # mode left as it was


def test_cam_refuses_an_explanation_head(linear_baseline):
    from bla_core import BoundedLogitAttention

    linear_baseline.pooling = BoundedLogitAttention(2)
    with pytest.raises(BLAError, match="average-pooled"):
        cam(linear_baseline, FEATURES)
    assert grad_cam(linear_baseline, FEATURES).shape == (1, 2, 2)

