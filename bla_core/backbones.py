"""Feature extractors F: a module mapping images (B, 3|1, H, W) to a feature map (B, C, h, w).

Architectures are built here; pretrained weights are loaded separately so that an architecture
never downloads anything by itself.
"""
from __future__ import annotations

from collections.abc import Callable

from torch import nn

from .errors import BLAError


class MnistCNN(nn.Module):
    """The paper's MNIST feature extractor (§4.1): three 5×5 convolutions with 8, 16 and 16 filters,
    ReLU, 2×2 max-pooling after the first two — a 16×7×7 feature map for a 28×28 digit."""

    out_channels = 16
    trainable = True  # no pretrained weights exist: the baseline trains F end to end

    def __init__(self, in_channels: int = 1) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(in_channels, 8, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 16, kernel_size=5, padding=2),
            nn.ReLU(),
        )

    def forward(self, x):
        return self.layers(x)


BACKBONES: dict[str, Callable[..., nn.Module]] = {"mnist_cnn": MnistCNN}


def build_backbone(name: str, weights: str | None = None) -> nn.Module:
    """Build the feature extractor ``name``; it exposes ``out_channels`` and ``trainable``."""
    if name not in BACKBONES:
        raise BLAError(f"unknown backbone {name!r}; known: {', '.join(sorted(BACKBONES))}")
    if weights is not None:
        raise BLAError(f"backbone {name!r} has no pretrained weights; leave --weights out")
    return BACKBONES[name]()
