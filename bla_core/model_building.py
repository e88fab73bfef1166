"""A fresh explained classifier for a method: its backbone, the feature map's size, the pooling
configured for that size, and the paper's initialisation."""
from __future__ import annotations

import torch
from torch import nn

from .backbones import Backbone, build_backbone, feature_map_shape
from .classifier import ExplainedClassifier, PoolingConfig
from .config import TrainConfig, resolved_gamma
from .image_sets import DatasetSplits, FileImageSet, ImageSet
from .methods import build_pooling, check_pooling


def for_backbone(dataset: ImageSet, backbone: Backbone) -> ImageSet:
    """``dataset`` delivering images at the backbone's input size (file datasets resize on load)."""
    if backbone.preprocessing is None or not isinstance(dataset, FileImageSet):
        return dataset
    return dataset.resized(backbone.preprocessing.size, backbone.preprocessing.interpolation)


def feature_geometry(backbone: Backbone, splits: DatasetSplits) -> tuple[int, int, int]:
    """(h, w, C) of F's feature map for the dataset's images, learnt on the device F is on."""
    return feature_map_shape(backbone, for_backbone(splits.train, backbone)[0][0])


def pooling_config(config: TrainConfig, splits: DatasetSplits, method: str, positions: int) -> PoolingConfig:
    """The pooling hyper-parameters of ``method`` for a feature map of ``positions`` cells."""
    return PoolingConfig(method, config.theta, resolved_gamma(config, splits, positions), config.k, config.tau,
                         config.l2x_pooling)


def check_config(config: TrainConfig, splits: DatasetSplits, backbone: Backbone) -> None:
    """Raise a clear error when ``config.method`` cannot be built on ``backbone``'s feature map, so bad
    settings fail before anything is written (no model is built)."""
    height, width, _ = feature_geometry(backbone, splits)
    check_pooling(pooling_config(config, splits, config.method, height * width), height * width)


def glorot_init(module: nn.Module) -> None:
    """Glorot-uniform weights and zero biases for the trainable layers (paper §4.2, Keras defaults)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def trains_end_to_end(model: ExplainedClassifier) -> bool:
    """A backbone without pretrained weights (MNIST CNN) trains with its head from scratch (§4.1)."""
    return bool(model.backbone.trainable)


def build_model(config: TrainConfig, splits: DatasetSplits, method: str, device: torch.device) -> ExplainedClassifier:
    """A fresh model for ``method`` with the configured backbone (seeded initialisation)."""
    torch.manual_seed(config.seed)
    backbone = build_backbone(config.backbone or splits.default_backbone, config.weights)
    height, width, channels = feature_geometry(backbone, splits)
    pooling = build_pooling(pooling_config(config, splits, method, height * width), channels, height * width)
    model = ExplainedClassifier(backbone, pooling, len(splits.class_names), config.dropout)
    glorot_init(model.head)
    glorot_init(model.pooling)
    return model.to(device)
