"""Run folders on disk: ``checkpoint.pt`` (weights, config, class names, versions) and ``metrics.json``,
written by :func:`save_run` and read back by :func:`load_run`."""
from __future__ import annotations

import platform
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy
import torch

from . import __version__
from .backbones import file_sha256
from .classifier import ExplainedClassifier
from .config import TrainConfig, resolve_config
from .datasets import load_dataset
from .errors import BLAError
from .files import write_atomic, write_json
from .image_sets import DatasetSplits
from .loop import Metrics
from .model_building import build_model


def versions() -> dict[str, str]:
    """Software versions recorded in every checkpoint and explanations file."""
    return {"bla_core": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "python": platform.python_version()}


def save_run(run_dir: Path, model: ExplainedClassifier, config: TrainConfig, splits: DatasetSplits, metrics: Metrics) -> None:
    """Write ``checkpoint.pt`` (weights, config, class names, versions) and ``metrics.json``."""
    state = model.state_dict()
    if not model.backbone.trainable:
        # Pretrained frozen F is rebuilt from (backbone, weights); only what we learnt is stored.
        state = {key: value for key, value in state.items() if not key.startswith("backbone.")}
    checkpoint = {
        "state_dict": state,
        "config": asdict(config),
        "class_names": splits.class_names,
        "dataset": {"key": splits.key, "title": splits.title, "task": splits.task},
        "versions": versions(),
    }
    write_atomic(run_dir / "checkpoint.pt", lambda tmp: torch.save(checkpoint, tmp))
    write_json(run_dir / "metrics.json", {"method": config.method, "seed": config.seed, **asdict(metrics)})


@dataclass
class LoadedRun:
    """A trained run read back from disk."""

    model: ExplainedClassifier
    config: TrainConfig
    splits: DatasetSplits
    checkpoint_sha256: str


def load_run(run_dir: Path, device: torch.device) -> LoadedRun:
    """Rebuild the model of a run folder written by :func:`save_run`."""
    path = Path(run_dir) / "checkpoint.pt"
    if not path.is_file():
        raise BLAError(f"{run_dir} is not a training run: it has no checkpoint.pt")
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    config = TrainConfig.from_dict(checkpoint["config"])
    splits = load_dataset(config.dataset, config.data_seed, config.val_fraction)
    config = resolve_config(config, splits)
    model = build_model(config, splits, config.method, device)
    model.load_state_dict(checkpoint["state_dict"], strict=model.backbone.trainable)
    model.freeze_backbone()
    model.eval()
    return LoadedRun(model, config, splits, file_sha256(path))
