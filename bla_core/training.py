"""Training of the baseline h = F ∘ L and of the explanation models that start from its head."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch
import torch.nn.functional as nnf
from tqdm.auto import tqdm

from . import __version__
from .backbones import build_backbone
from .classifier import EXPLANATION_METHODS, ExplainedClassifier, PoolingConfig, build_pooling, check_method
from .datasets import DatasetSplits, load_dataset
from .errors import BLAError
from .features import compute_features, stack_images, stack_labels


@dataclass
class TrainConfig:
    """Everything that determines a training run (defaults: paper §4.1)."""

    dataset: str = "mnist38"
    method: str = "baseline"
    seed: int = 0
    data_seed: int = 0
    val_fraction: float = 0.2
    backbone: str | None = None  # None: the dataset's default backbone
    weights: str | None = None
    epochs: int = 3
    baseline_epochs: int | None = None  # None: same as epochs
    batch_size: int = 32
    lr: float = 1e-3
    theta: float = 0.1
    gamma_factor: float | None = None  # γ = gamma_factor / (h·w); None: the dataset's default
    k: int = 8
    tau: float = 0.1
    dropout: float = 0.2

    def __post_init__(self) -> None:
        check_method(self.method)
        for name in ("epochs", "batch_size", "k"):
            if getattr(self, name) < 1:
                raise BLAError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise BLAError(f"the learning rate must be positive, got {self.lr}")

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})


@dataclass
class Metrics:
    """Validation metrics: accuracy and loss of the hard explanation (reported) and of the soft one."""

    accuracy: float
    loss: float
    soft_accuracy: float
    soft_loss: float
    mean_explanation_size: float
    min_explanation_size: int
    max_explanation_size: int
    n_val: int
    extra: dict = field(default_factory=dict)


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; ``cpu``/``cuda[:i]`` force one."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BLAError(f"device {name!r} was requested but no CUDA device is available")
    try:
        return torch.device(name)
    except RuntimeError as error:
        raise BLAError(f"unknown device {name!r}; use auto, cpu or cuda") from error


def batches(n: int, batch_size: int, generator: torch.Generator | None) -> list[torch.Tensor]:
    """Index batches over n samples, shuffled with ``generator`` (or in order when it is None)."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    return list(order.split(batch_size))


def fit(
    forward, parameters: list[torch.nn.Parameter], inputs: torch.Tensor, labels: torch.Tensor,
    config: TrainConfig, epochs: int, device: torch.device, desc: str,
) -> None:
    """Minimise cross-entropy of ``forward(inputs)`` with Adam over shuffled mini-batches."""
    optimizer = torch.optim.Adam(parameters, lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    for _ in tqdm(range(epochs), desc=desc, leave=False, unit="epoch"):
        for index in batches(len(labels), config.batch_size, generator):
            logits = forward(inputs[index].to(device)).logits
            loss = nnf.cross_entropy(logits, labels[index].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()


def resolved_gamma(config: TrainConfig, splits: DatasetSplits, positions: int) -> float:
    """The absolute BLA-T threshold γ = factor / n for a feature map of n positions."""
    factor = splits.gamma_factor if config.gamma_factor is None else config.gamma_factor
    return factor / positions


def build_model(config: TrainConfig, splits: DatasetSplits, method: str, device: torch.device) -> ExplainedClassifier:
    """A fresh model for ``method`` with the configured backbone (seeded initialisation)."""
    torch.manual_seed(config.seed)
    backbone = build_backbone(config.backbone or splits.default_backbone, config.weights)
    sample = splits.train[0][0].unsqueeze(0)
    with torch.no_grad():
        _, channels, height, width = backbone.eval()(sample).shape
    pooling = build_pooling(
        PoolingConfig(method, config.theta, resolved_gamma(config, splits, height * width), config.k, config.tau),
        channels, height * width,
    )
    return ExplainedClassifier(backbone, pooling, len(splits.class_names), config.dropout).to(device)


def validate_config(config: TrainConfig, splits: DatasetSplits) -> None:
    """Build the configured model once on the CPU so bad settings fail before anything is written."""
    build_model(config, splits, config.method, torch.device("cpu"))


@dataclass
class FeatureSets:
    """Frozen-backbone features and labels of both splits."""

    train: torch.Tensor
    train_labels: torch.Tensor
    val: torch.Tensor
    val_labels: torch.Tensor


def extract(model: ExplainedClassifier, splits: DatasetSplits, device: torch.device) -> FeatureSets:
    """F(x) once for both splits; every head of the run trains and evaluates from these."""
    model.freeze_backbone()
    return FeatureSets(
        train=compute_features(model.backbone, splits.train, device, desc="train features"),
        train_labels=stack_labels(splits.train),
        val=compute_features(model.backbone, splits.val, device, desc="val features"),
        val_labels=stack_labels(splits.val),
    )


def train_baseline(config: TrainConfig, splits: DatasetSplits, device: torch.device) -> tuple[ExplainedClassifier, FeatureSets]:
    """Train h = F ∘ L: end to end when F has no pretrained weights (MNIST CNN), else L alone."""
    model = build_model(config, splits, "baseline", device)
    epochs = config.baseline_epochs or config.epochs
    if getattr(model.backbone, "trainable", False):
        model.train()
        fit(model, list(model.parameters()), stack_images(splits.train), stack_labels(splits.train),
            config, epochs, device, "baseline")
        features = extract(model, splits, device)
    else:
        features = extract(model, splits, device)
        model.train()
        fit(model.forward_features, list(model.head.parameters()), features.train, features.train_labels,
            config, epochs, device, "baseline head")
    model.eval()
    return model, features


def train_explainer(
    config: TrainConfig, splits: DatasetSplits, baseline: ExplainedClassifier, features: FeatureSets,
    device: torch.device,
) -> ExplainedClassifier:
    """Train ``config.method`` from the baseline's frozen F and a copy of its head L.

    BLA-PH also keeps L frozen, so only the explanation module learns.
    """
    if config.method not in EXPLANATION_METHODS:
        raise BLAError(f"{config.method!r} is not an explanation method")
    model = build_model(config, splits, config.method, device)
    model.backbone = baseline.backbone
    model.head.load_state_dict(baseline.head.state_dict())
    model.freeze_backbone()
    trainable = list(model.pooling.parameters())
    if config.method == "bla_ph":
        model.head.requires_grad_(False)
    else:
        trainable += list(model.head.parameters())
    model.train()
    fit(model.forward_features, trainable, features.train, features.train_labels, config, config.epochs,
        device, config.method)
    model.eval()
    return model


@torch.no_grad()
def evaluate(model: ExplainedClassifier, features: torch.Tensor, labels: torch.Tensor, device: torch.device) -> Metrics:
    """Hard and soft accuracy and loss and explanation sizes on precomputed features."""
    model.eval()
    hard_logits, soft_logits, sizes = [], [], []
    for index in batches(len(labels), 256, None):
        batch = features[index].to(device)
        hard = model.forward_features(batch, hard=True)
        hard_logits.append(hard.logits.float().cpu())
        soft_logits.append(model.forward_features(batch, hard=False).logits.float().cpu())
        mask = hard.explanation.mask
        positions = batch.shape[2] * batch.shape[3]
        sizes.append(mask.flatten(1).sum(1).cpu() if mask is not None else torch.full((len(index),), positions))
    hard_all, soft_all, size_all = torch.cat(hard_logits), torch.cat(soft_logits), torch.cat(sizes).float()
    return Metrics(
        accuracy=(hard_all.argmax(1) == labels).float().mean().item(),
        loss=nnf.cross_entropy(hard_all, labels).item(),
        soft_accuracy=(soft_all.argmax(1) == labels).float().mean().item(),
        soft_loss=nnf.cross_entropy(soft_all, labels).item(),
        mean_explanation_size=size_all.mean().item(),
        min_explanation_size=int(size_all.min().item()),
        max_explanation_size=int(size_all.max().item()),
        n_val=len(labels),
    )


def versions() -> dict[str, str]:
    """Software versions recorded in every checkpoint and explanations file."""
    import numpy

    return {"bla_core": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "python": platform.python_version()}


def prepare_output_dir(path: Path) -> Path:
    """Create ``path`` (and parents) or fail with a clear error before any work is done."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BLAError(f"cannot create output folder {path}: {error.strerror}") from error
    if not os.access(path, os.W_OK):
        raise BLAError(f"output folder {path} is not writable")
    return path


def write_atomic(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path``, so a crash never leaves half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as indented JSON atomically."""
    write_atomic(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n"))


def save_run(run_dir: Path, model: ExplainedClassifier, config: TrainConfig, splits: DatasetSplits, metrics: Metrics) -> None:
    """Write ``checkpoint.pt`` (weights, config, class names, versions) and ``metrics.json``."""
    state = model.state_dict()
    if not getattr(model.backbone, "trainable", False):
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


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
    model = build_model(config, splits, config.method, device)
    strict = getattr(model.backbone, "trainable", False)
    model.load_state_dict(checkpoint["state_dict"], strict=strict)
    model.freeze_backbone()
    model.eval()
    return LoadedRun(model, config, splits, file_sha256(path))


def train_run(config: TrainConfig, out_dir: Path, device: torch.device, baseline_dir: Path | None = None) -> Metrics:
    """The ``train`` command: the baseline, or an explanation model started from a baseline.

    Without ``baseline_dir`` an explanation method first trains its own baseline (same seed) into
    ``out_dir/baseline``.
    """
    splits = load_dataset(config.dataset, config.data_seed, config.val_fraction)
    validate_config(config, splits)
    out_dir = prepare_output_dir(Path(out_dir))
    if baseline_dir is not None:
        loaded = load_run(baseline_dir, device)
        if loaded.config.method != "baseline" or config.method == "baseline":
            raise BLAError(f"--baseline must name a baseline run and --method an explanation method "
                           f"({baseline_dir} holds {loaded.config.method!r})")
        if loaded.config.dataset != config.dataset:
            raise BLAError(f"the baseline in {baseline_dir} was trained on {loaded.config.dataset!r}, "
                           f"not {config.dataset!r}")
        baseline, features = loaded.model, extract(loaded.model, splits, device)
    else:
        baseline_config = replace(config, method="baseline")
        baseline, features = train_baseline(baseline_config, splits, device)
        if config.method == "baseline":
            metrics = evaluate(baseline, features.val, features.val_labels, device)
            save_run(out_dir, baseline, config, splits, metrics)
            return metrics
        save_run(prepare_output_dir(out_dir / "baseline"), baseline, baseline_config, splits,
                 evaluate(baseline, features.val, features.val_labels, device))
    model = train_explainer(config, splits, baseline, features, device)
    metrics = evaluate(model, features.val, features.val_labels, device)
    save_run(out_dir, model, config, splits, metrics)
    return metrics
