"""The ``train`` command: the baseline h = F ∘ L, and the explanation models that start from its head.

Every model of a run is built once (:func:`model_building.build_model`); the settings of the
explanation method are checked against the baseline's feature map before anything is written.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from . import distributed
from .checkpoints import load_run, save_run
from .classifier import ExplainedClassifier
from .config import TrainConfig, resolve_config
from .datasets import load_dataset
from .errors import BLAError
from .feature_split import FeatureSets, extract
from .files import prepare_output_dir
from .image_sets import DatasetSplits
from .liveness import regime_start, start_bla
from .loop import INITIALISATION_BATCH, Metrics, evaluate, fit_end_to_end, fit_head
from .methods import BASELINE, lookup
from .model_building import build_model, check_config, trains_end_to_end
from .selectivity import from_metrics, unselective_warning, warn


def train_baseline(config: TrainConfig, splits: DatasetSplits, device: torch.device,
                   features: FeatureSets | None = None,
                   model: ExplainedClassifier | None = None) -> tuple[ExplainedClassifier, FeatureSets]:
    """Train h = F ∘ L: end to end when F has no pretrained weights (MNIST CNN), else L alone
    (from ``features`` when given: the same frozen F's features of an earlier run).

    ``model`` is the freshly built baseline to train (built here when None).
    """
    model = model or build_model(config, splits, BASELINE, device)
    epochs = config.baseline_epochs or config.epochs
    if trains_end_to_end(model):
        fit_end_to_end(model, splits, config, epochs, device, BASELINE)
        features = extract(model, splits, device, config.cache_dtype)
    else:
        model.freeze_backbone()
        features = features or extract(model, splits, device, config.cache_dtype)
        model.train()
        fit_head(model, list(model.head.parameters()), features.train, config, epochs, device, "baseline head")
    model.eval()
    return model, features


@dataclass
class TrainedExplainer:
    """An explanation model, the features it is evaluated on, and its first-step module gradient."""

    model: ExplainedClassifier
    features: FeatureSets
    module_gradient: float | None


def train_explainer(
    config: TrainConfig, splits: DatasetSplits, baseline: ExplainedClassifier, features: FeatureSets,
    device: torch.device,
) -> TrainedExplainer:
    """Train ``config.method`` as its registry entry says (bla_core.methods): an end-to-end method
    trains from scratch when F has no pretrained weights (§4.1, the same seed as the baseline, so
    both start from the same F), else from the baseline's frozen F and a copy of its head L (§4.2)
    on ``features``.

    A head-trained method (BLA-PH) always starts from the trained baseline; with a frozen head only
    the explanation module learns.
    """
    entry = lookup(config.method)
    if not entry.needs_baseline:
        raise BLAError(f"{config.method!r} is not an explanation method")
    model = build_model(config, splits, config.method, device)
    if trains_end_to_end(model) and not entry.trains_head:
        gradient = fit_end_to_end(model, splits, config, config.epochs, device, config.method)
        model.eval()
        return TrainedExplainer(model, extract(model, splits, device, config.cache_dtype), gradient)
    model.backbone = baseline.backbone
    model.head.load_state_dict(baseline.head.state_dict())
    model.freeze_backbone()
    trainable = list(model.pooling.parameters())
    if entry.frozen_head:
        model.head.requires_grad_(False)
    else:
        trainable += list(model.head.parameters())
    model.train()
    first_rows = torch.arange(min(INITIALISATION_BATCH, len(features.train)), device=device)
    start_bla(model.pooling, features.train.gather(first_rows, device, pooled=False),
              regime_start(config.bla_start, end_to_end=False))
    gradient = fit_head(model, trainable, features.train, config, config.epochs, device, config.method)
    model.eval()
    return TrainedExplainer(model, features, gradient)


def trained_baseline(baseline_dir: Path, config: TrainConfig, device: torch.device) -> ExplainedClassifier:
    """The baseline model of ``--baseline``, which must be a baseline run on ``config.dataset``."""
    loaded = load_run(baseline_dir, device)
    if loaded.config.method != BASELINE or not lookup(config.method).needs_baseline:
        raise BLAError(f"--baseline must name a baseline run and --method an explanation method "
                       f"({baseline_dir} holds {loaded.config.method!r})")
    if loaded.config.dataset != config.dataset:
        raise BLAError(f"the baseline in {baseline_dir} was trained on {loaded.config.dataset!r}, "
                       f"not {config.dataset!r}")
    return loaded.model


def train_run(config: TrainConfig, out_dir: Path, device: torch.device,
              baseline_dir: Path | None = None) -> Metrics | None:
    """The ``train`` command: the baseline, or an explanation model started from a baseline.

    Without ``baseline_dir`` an explanation method first trains its own baseline (same seed) into
    ``out_dir/baseline``. Under torchrun the processes share the feature extraction and only the
    first one trains (None elsewhere).
    """
    splits = load_dataset(config.dataset, config.data_seed, config.val_fraction)
    config = resolve_config(config, splits)
    baseline_config = replace(config, method=BASELINE)
    if baseline_dir is not None:
        baseline = trained_baseline(Path(baseline_dir), config, device)
    else:
        baseline = build_model(baseline_config, splits, BASELINE, device)
    check_config(config, splits, baseline.backbone)
    features = None
    if distributed.world_size() > 1:
        if not baseline.backbone.trainable:
            features = extract(baseline, splits, device, config.cache_dtype)
        if not distributed.is_main():
            return None
    out_dir = prepare_output_dir(Path(out_dir))
    if baseline_dir is not None:
        features = features or extract(baseline, splits, device, config.cache_dtype)
    else:
        baseline, features = train_baseline(baseline_config, splits, device, features, model=baseline)
        metrics = evaluate(baseline, features.val, device)
        if not lookup(config.method).needs_baseline:
            save_run(out_dir, baseline, config, splits, metrics)
            return metrics
        save_run(prepare_output_dir(out_dir / BASELINE), baseline, baseline_config, splits, metrics)
    trained = train_explainer(config, splits, baseline, features, device)
    metrics = evaluate(trained.model, trained.features.val, device, trained.module_gradient)
    save_run(out_dir, trained.model, config, splits, metrics)
    if metrics.selective is False:
        warn(unselective_warning(config.method, config.seed, str(out_dir), from_metrics(asdict(metrics))))
    return metrics
