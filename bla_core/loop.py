"""The optimisation loop (Adam on cross-entropy) of a head or a whole model, and the validation metrics."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as nnf
from torch import nn
from tqdm.auto import tqdm

from . import distributed
from .attention import BoundedLogitAttention
from .classifier import ExplainedClassifier
from .config import TrainConfig
from .feature_split import FeatureSplit, batches
from .features import stack_images, stack_labels
from .image_sets import DatasetSplits
from .liveness import gradient_size, is_dead, regime_start, start_bla
from .model_building import for_backbone
from .pooling import AveragePooling
from .selectivity import assess

Gather = Callable[[torch.Tensor], torch.Tensor]
INITIALISATION_BATCH = 256  # training images whose logits start the BLA module (liveness.start_bla)
EVALUATION_BATCH = 128  # rows per evaluation batch: 32 MB of float32 maps stay in the CPU's cache (1.7× 1,024)


@dataclass
class Metrics:
    """Validation metrics: accuracy and loss of the hard explanation (reported) and of the soft one,
    the hard explanation's size over the images (in cells and as a share of the grid), whether the
    explanation module is dead, and whether the explanation is selective (bla_core.selectivity;
    None for a baseline, which has no module to judge)."""

    accuracy: float
    loss: float
    soft_accuracy: float
    soft_loss: float
    mean_explanation_size: float
    sd_explanation_size: float
    min_explanation_size: int
    max_explanation_size: int
    median_explanation_size: float
    grid_cells: int
    mean_explanation_share: float  # mean size / grid_cells
    median_explanation_share: float
    large_mask_images: float  # share of images selecting more than selectivity.LARGE_MASK_SHARE of the grid
    n_val: int
    dead_explainer: bool = False
    module_gradient: float | None = None  # summed |gradient| of the explanation module at the first step
    selective: bool | None = None
    unselective_reasons: tuple[str, ...] = ()  # keys of selectivity.REASONS


def fit(
    forward, parameters: list[torch.nn.Parameter], gather: Gather, labels: torch.Tensor,
    config: TrainConfig, epochs: int, device: torch.device, desc: str, watch: list[nn.Parameter] = (),
) -> float | None:
    """Minimise cross-entropy of ``forward(gather(batch))`` with Adam over shuffled mini-batches;
    returns the summed |gradient| of ``watch`` at the first step (None without ``watch``).

    ``gather`` receives index batches on ``device``: the labels move there once and each epoch's
    shuffled order once, so a CUDA step never waits for a host-to-device copy. Rows are gathered one
    mini-batch at a time: a 32-row float32 batch of 7×7×1280 maps (8 MB) stays in the CPU's cache
    while the pooling's forward and backward passes read it four times; gathering many batches at
    once wrote them to main memory and read them back (25–35 % slower).
    """
    optimizer = torch.optim.Adam(parameters, lr=config.lr, fused=True)
    generator = torch.Generator().manual_seed(config.seed)
    labels = labels.to(device)
    first_gradient = None
    for _ in tqdm(range(epochs), desc=desc, leave=False, unit="epoch", disable=distributed.progress_disabled()):
        for batch in torch.randperm(len(labels), generator=generator).to(device).split(config.batch_size):
            loss = nnf.cross_entropy(forward(gather(batch)).logits, labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if watch and first_gradient is None:
                first_gradient = gradient_size(watch)
            optimizer.step()
    return first_gradient


def uses_pooled(model: ExplainedClassifier) -> bool:
    """An average-pooled head only needs the pooled features, so it trains from those."""
    return isinstance(model.pooling, AveragePooling)


def explanation_parameters(model: ExplainedClassifier) -> list[nn.Parameter]:
    """The explanation module's own parameters (none for average pooling)."""
    return list(model.pooling.parameters())


def fit_head(model: ExplainedClassifier, parameters: list[nn.Parameter], split: FeatureSplit,
             config: TrainConfig, epochs: int, device: torch.device, desc: str) -> float | None:
    """Train ``parameters`` of the head and pooling on cached features of ``split``; returns the
    explanation module's first-step gradient size (see :func:`fit`)."""
    pooled = uses_pooled(model)
    return fit(model.forward_features, parameters, lambda index: split.gather(index, device, pooled), split.labels,
               config, epochs, device, desc, watch=explanation_parameters(model))


def fit_end_to_end(model: ExplainedClassifier, splits: DatasetSplits, config: TrainConfig, epochs: int,
                   device: torch.device, desc: str) -> float | None:
    """Train F, the pooling and L together on the training images (paper §4.1); returns the
    explanation module's first-step gradient size (see :func:`fit`)."""
    model.backbone.requires_grad_(True)
    model.train()
    images = stack_images(for_backbone(splits.train, model.backbone)).to(device)
    with torch.no_grad():
        start_bla(model.pooling, model.backbone(images[:INITIALISATION_BATCH]), regime_start(config.bla_start, True))
    return fit(model, list(model.parameters()), images.__getitem__, stack_labels(splits.train),
               config, epochs, device, desc, watch=explanation_parameters(model))


@torch.no_grad()
def evaluate(model: ExplainedClassifier, split: FeatureSplit, device: torch.device,
             module_gradient: float | None = None) -> Metrics:
    """Hard and soft accuracy and loss, explanation sizes, liveness and selectivity on precomputed features.

    ``module_gradient`` is the explanation module's first-step gradient size from training.
    """
    model.eval()
    labels, pooled = split.labels, uses_pooled(model)
    positions = split.maps.shape[1] * split.maps.shape[2]
    hard_logits, soft_logits, sizes = [], [], []
    for index in batches(len(labels), EVALUATION_BATCH, None):
        batch = split.gather(index, device, pooled)
        hard = model.forward_features(batch, hard=True)
        hard_logits.append(hard.logits.float().cpu())
        soft_logits.append(model.forward_features(batch, hard=False).logits.float().cpu())
        mask = hard.explanation.mask
        sizes.append(mask.flatten(1).sum(1).cpu() if mask is not None else torch.full((len(index),), positions))
    hard_all, soft_all, size_all = torch.cat(hard_logits), torch.cat(soft_logits), torch.cat(sizes).float()
    variable_size = isinstance(model.pooling, BoundedLogitAttention)
    accuracy = (hard_all.argmax(1) == labels).float().mean().item()
    soft_accuracy = (soft_all.argmax(1) == labels).float().mean().item()
    dead = not uses_pooled(model) and is_dead(size_all, positions, variable_size, module_gradient)
    verdict = assess(size_all.numpy(), positions, accuracy, soft_accuracy, dead, has_module=not uses_pooled(model))
    return Metrics(
        accuracy=accuracy,
        loss=nnf.cross_entropy(hard_all, labels).item(),
        soft_accuracy=soft_accuracy,
        soft_loss=nnf.cross_entropy(soft_all, labels).item(),
        mean_explanation_size=size_all.mean().item(),
        sd_explanation_size=size_all.std(correction=0).item(),
        min_explanation_size=int(size_all.min().item()),
        max_explanation_size=int(size_all.max().item()),
        median_explanation_size=verdict.median_explanation_size,
        grid_cells=positions,
        mean_explanation_share=verdict.mean_explanation_share,
        median_explanation_share=verdict.median_explanation_share,
        large_mask_images=verdict.large_mask_images,
        n_val=len(labels),
        dead_explainer=dead,
        module_gradient=module_gradient,
        selective=verdict.selective,
        unselective_reasons=verdict.unselective_reasons,
    )
