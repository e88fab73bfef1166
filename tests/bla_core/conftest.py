"""Tiny hand-built models for the bla_core tests."""
import pytest
import torch
from torch import nn

from bla_core.classifier import ExplainedClassifier
from bla_core.pooling import AveragePooling


class IdentityBackbone(nn.Module):
    """A backbone whose 'images' already are feature maps, so tests control F(x) exactly."""

    trainable = False

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@pytest.fixture
def linear_baseline() -> ExplainedClassifier:
    """Average pooling and a hand-set linear head over 2 channels and 2 classes."""
    model = ExplainedClassifier(IdentityBackbone(2), AveragePooling(), num_classes=2).eval()
    with torch.no_grad():
        model.classifier.weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 3.0]]))
        model.classifier.bias.copy_(torch.tensor([0.25, -0.75]))
    return model
