"""Training of the baseline h = F ∘ L and of the explanation models that start from its head."""
from __future__ import annotations

import math
import platform
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch
import torch.nn.functional as nnf
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from . import __version__, distributed
from .backbones import LITE0, build_backbone, file_sha256, hub_weights_cached, hub_offline
from .classifier import EXPLANATION_METHODS, ExplainedClassifier, PoolingConfig, build_pooling, check_method
from .datasets import DatasetSplits, load_dataset
from .errors import BLAError
from .feature_cache import STORAGE_DTYPES, cached_features
from .features import compute_features, stack_images, stack_labels
from .files import prepare_output_dir, write_atomic, write_json
from .l2x import TRAINING_POOLINGS
from .liveness import centre_bounded_logits, gradient_size, is_dead
from .attention import BoundedLogitAttention
from .pooling import AveragePooling


@dataclass
class TrainConfig:
    """Everything that determines a training run (defaults: paper §4.1)."""

    dataset: str = "mnist38"
    method: str = "baseline"
    seed: int = 0
    data_seed: int = 0
    val_fraction: float = 0.2
    backbone: str | None = None  # None: the dataset's default backbone (see resolve_config)
    weights: str | None = None  # none, hub, bundled or a file; None: hub for timm backbones
    epochs: int | None = None  # None: the dataset's default (paper: 3 MNIST, 2 cats vs dogs, 5 others;
    # mnist38 takes the paper's number of steps instead, see datasets.PAPER_MNIST38_STEPS)
    baseline_epochs: int | None = None  # None: same as epochs
    batch_size: int = 32
    lr: float = 1e-3
    theta: float = 0.1
    gamma_factor: float | None = None  # γ = gamma_factor / (h·w); None: the dataset's default
    k: int = 8
    tau: float = 0.1
    l2x_pooling: str = "sum"  # L2X-F training pooling: sum (the authors') or mean
    dropout: float = 0.2
    cache_dtype: str = "float16"  # storage of cached frozen features

    def __post_init__(self) -> None:
        check_method(self.method)
        for name in ("epochs", "baseline_epochs", "batch_size", "k"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise BLAError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise BLAError(f"the learning rate must be positive, got {self.lr}")
        if self.l2x_pooling not in TRAINING_POOLINGS:
            raise BLAError(f"unknown L2X-F pooling {self.l2x_pooling!r}; use {' or '.join(TRAINING_POOLINGS)}")
        if self.cache_dtype not in STORAGE_DTYPES:
            raise BLAError(f"unknown feature cache dtype {self.cache_dtype!r}; use float16 or float32")

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})


@dataclass
class Metrics:
    """Validation metrics: accuracy and loss of the hard explanation (reported) and of the soft one,
    the hard explanation's size over the images, and whether the explanation module is dead."""

    accuracy: float
    loss: float
    soft_accuracy: float
    soft_loss: float
    mean_explanation_size: float
    sd_explanation_size: float
    min_explanation_size: int
    max_explanation_size: int
    n_val: int
    dead_explainer: bool = False
    module_gradient: float | None = None  # summed |gradient| of the explanation module at the first step
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


@dataclass
class FeatureSplit:
    """Frozen features of one split: ``maps`` (N, h, w, C; memory-mapped cache or in memory),
    ``pooled`` (N, C) average-pooled, and ``labels`` (N,)."""

    maps: torch.Tensor
    pooled: torch.Tensor
    labels: torch.Tensor
    resident: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.labels)

    def on(self, device: torch.device, pooled: bool) -> torch.Tensor:
        """The stored tensor to gather from: kept on a CUDA device once it has been moved there."""
        source = self.pooled if pooled else self.maps
        if device.type != "cuda":
            return source
        key = (str(device), pooled)
        if key not in self.resident:
            self.resident[key] = source.to(device)
        return self.resident[key]

    def gather(self, index: torch.Tensor, device: torch.device, pooled: bool) -> torch.Tensor:
        """Rows ``index`` as float32 model input: (B, C, h, w), or (B, C, 1, 1) pooled for the baseline.

        The rows land in buffers reused from call to call, so every batch is written to the same
        memory, already in the CPU's cache (≈ 5 % faster head training than fresh tensors in seven
        alternating runs of bench/head_training.py); the result is valid until the next call.
        """
        source = self.on(device, pooled)
        raw, full = self.buffers(source, len(index), device)
        if source.dtype == torch.float32 and source.device == device:
            raw = full
        torch.index_select(source, 0, index.to(source.device), out=raw)
        if raw is not full:
            full.copy_(raw, non_blocking=True)
        return full[:, :, None, None] if pooled else full.permute(0, 3, 1, 2)

    def buffers(self, source: torch.Tensor, rows: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(raw rows in the source's dtype and place, float32 rows on ``device``) for ``rows`` rows."""
        key = ("buffers", source.data_ptr(), str(device))
        raw, full = self.resident.get(key, (None, None))
        if raw is None or raw.shape[0] < rows:
            raw = torch.empty((rows, *source.shape[1:]), dtype=source.dtype, device=source.device)
            full = torch.empty((rows, *source.shape[1:]), dtype=torch.float32, device=device)
            self.resident[key] = (raw, full)
        return raw[:rows], full[:rows]


def in_memory_split(features: torch.Tensor, labels: torch.Tensor) -> FeatureSplit:
    """A :class:`FeatureSplit` of a float (N, C, h, w) tensor computed in memory."""
    return FeatureSplit(features.permute(0, 2, 3, 1).contiguous(), features.mean(dim=(2, 3)), labels)


Gather = Callable[[torch.Tensor], torch.Tensor]


def batches(n: int, batch_size: int, generator: torch.Generator | None) -> list[torch.Tensor]:
    """Index batches over n samples, shuffled with ``generator`` (or in order when it is None)."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    return list(order.split(batch_size))


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


def fit_head(model: ExplainedClassifier, parameters: list[nn.Parameter], split: FeatureSplit,
             config: TrainConfig, epochs: int, device: torch.device, desc: str) -> float | None:
    """Train ``parameters`` of the head and pooling on cached features of ``split``; returns the
    explanation module's first-step gradient size (see :func:`fit`)."""
    pooled = uses_pooled(model)
    return fit(model.forward_features, parameters, lambda index: split.gather(index, device, pooled), split.labels,
               config, epochs, device, desc, watch=explanation_parameters(model))


INITIALISATION_BATCH = 256  # training images whose logits centre the BLA bias (liveness.centre_bounded_logits)


def fit_end_to_end(model: ExplainedClassifier, splits: DatasetSplits, config: TrainConfig, epochs: int,
                   device: torch.device, desc: str) -> float | None:
    """Train F, the pooling and L together on the training images (paper §4.1); returns the
    explanation module's first-step gradient size (see :func:`fit`)."""
    model.backbone.requires_grad_(True)
    model.train()
    images = stack_images(for_backbone(splits.train, model.backbone)).to(device)
    with torch.no_grad():
        centre_bounded_logits(model.pooling, model.backbone(images[:INITIALISATION_BATCH]))
    return fit(model, list(model.parameters()), images.__getitem__, stack_labels(splits.train),
               config, epochs, device, desc, watch=explanation_parameters(model))


def explanation_parameters(model: ExplainedClassifier) -> list[nn.Parameter]:
    """The explanation module's own parameters (none for average pooling)."""
    return list(model.pooling.parameters())


def trains_end_to_end(model: ExplainedClassifier) -> bool:
    """A backbone without pretrained weights (MNIST CNN) trains with its head from scratch (§4.1)."""
    return bool(getattr(model.backbone, "trainable", False))


def resolved_gamma(config: TrainConfig, splits: DatasetSplits, positions: int) -> float:
    """The absolute BLA-T threshold γ = factor / n for a feature map of n positions."""
    factor = splits.gamma_factor if config.gamma_factor is None else config.gamma_factor
    return factor / positions


def resolve_config(config: TrainConfig, splits: DatasetSplits) -> TrainConfig:
    """Fill in the dataset's defaults, so the stored config says exactly what was trained.

    Backbone and weights: given ones are kept (a timm backbone without --weights takes ``hub``).
    Without --backbone a dataset's default is used; for photo datasets that is the paper's
    efficientnet_b0 with model-hub weights — when those are reachable (HF_HUB_OFFLINE=0) or already
    in the local hub cache — and otherwise the bundled ImageNet EfficientNet-Lite0
    (tf_efficientnet_lite0, --weights bundled), the default that works offline.
    """
    backbone, weights = config.backbone, config.weights
    if backbone is None:
        backbone = splits.default_backbone
        if backbone == "efficientnet_b0" and weights is None and hub_offline() and not hub_weights_cached(backbone):
            backbone, weights = LITE0, "bundled"
            if distributed.is_main():
                print(f"note: efficientnet_b0 hub weights are not available offline; using {LITE0} "
                      "--weights bundled (pass --backbone/--weights to choose)", file=sys.stderr)
    if backbone != "mnist_cnn" and weights is None:
        weights = "hub"
    return replace(config, backbone=backbone, weights=weights,
                   epochs=config.epochs or default_epochs(splits, config.batch_size))


def default_epochs(splits: DatasetSplits, batch_size: int) -> int:
    """The dataset's epochs, or as many as its default number of optimisation steps takes."""
    if splits.default_steps is None:
        return splits.default_epochs
    return math.ceil(splits.default_steps / math.ceil(len(splits.train) / batch_size))


def glorot_init(module: nn.Module) -> None:
    """Glorot-uniform weights and zero biases for the trainable layers (paper §4.2, Keras defaults)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def for_backbone(dataset: Dataset, backbone: nn.Module) -> Dataset:
    """``dataset`` delivering images at the backbone's input size (file datasets resize on load)."""
    preprocessing = getattr(backbone, "preprocessing", None)
    if preprocessing is None or not hasattr(dataset, "resized"):
        return dataset
    return dataset.resized(preprocessing.size, preprocessing.interpolation)


def build_model(config: TrainConfig, splits: DatasetSplits, method: str, device: torch.device) -> ExplainedClassifier:
    """A fresh model for ``method`` with the configured backbone (seeded initialisation)."""
    torch.manual_seed(config.seed)
    backbone = build_backbone(config.backbone or splits.default_backbone, config.weights)
    sample = for_backbone(splits.train, backbone)[0][0].unsqueeze(0)
    with torch.no_grad():
        _, channels, height, width = backbone.eval().cpu()(sample).shape
    pooling = build_pooling(
        PoolingConfig(method, config.theta, resolved_gamma(config, splits, height * width), config.k, config.tau,
                      config.l2x_pooling),
        channels, height * width,
    )
    model = ExplainedClassifier(backbone, pooling, len(splits.class_names), config.dropout)
    glorot_init(model.head)
    glorot_init(model.pooling)
    return model.to(device)


def validate_config(config: TrainConfig, splits: DatasetSplits) -> None:
    """Build the configured model once on the CPU so bad settings fail before anything is written."""
    build_model(config, splits, config.method, torch.device("cpu"))


@dataclass
class FeatureSets:
    """Frozen-backbone features of both splits."""

    train: FeatureSplit
    val: FeatureSplit


def extract(model: ExplainedClassifier, splits: DatasetSplits, device: torch.device,
            cache_dtype: str = "float16") -> FeatureSets:
    """F(x) once for both splits; every head of the run trains and evaluates from these.

    A frozen pretrained F goes through the on-disk feature cache (computed once for all runs); a
    backbone trained per run (MNIST CNN) is evaluated in memory.
    """
    model.freeze_backbone()
    sets = {}
    for name in ("train", "val"):
        dataset = for_backbone(splits.split(name), model.backbone)
        labels = stack_labels(dataset)
        if getattr(model.backbone, "trainable", False):
            sets[name] = in_memory_split(compute_features(model.backbone, dataset, device, desc=f"{name} features"),
                                         labels)
        else:
            cached = cached_features(model.backbone, dataset, device, cache_dtype, desc=f"{name} features")
            sets[name] = FeatureSplit(cached.maps, cached.pooled, labels)
    return FeatureSets(**sets)


def train_baseline(config: TrainConfig, splits: DatasetSplits, device: torch.device,
                   features: FeatureSets | None = None) -> tuple[ExplainedClassifier, FeatureSets]:
    """Train h = F ∘ L: end to end when F has no pretrained weights (MNIST CNN), else L alone
    (from ``features`` when given: the same frozen F's features of an earlier run)."""
    model = build_model(config, splits, "baseline", device)
    epochs = config.baseline_epochs or config.epochs
    if trains_end_to_end(model):
        fit_end_to_end(model, splits, config, epochs, device, "baseline")
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
    """Train ``config.method``: end to end from scratch when F has no pretrained weights (§4.1,
    the same seed as the baseline, so both start from the same F), else from the baseline's frozen
    F and a copy of its head L (§4.2) on ``features``.

    BLA-PH always starts from the trained baseline and keeps F and L frozen, so only the explanation
    module learns.
    """
    if config.method not in EXPLANATION_METHODS:
        raise BLAError(f"{config.method!r} is not an explanation method")
    model = build_model(config, splits, config.method, device)
    if trains_end_to_end(model) and config.method != "bla_ph":
        gradient = fit_end_to_end(model, splits, config, config.epochs, device, config.method)
        model.eval()
        return TrainedExplainer(model, extract(model, splits, device, config.cache_dtype), gradient)
    model.backbone = baseline.backbone
    model.head.load_state_dict(baseline.head.state_dict())
    model.freeze_backbone()
    trainable = list(model.pooling.parameters())
    if config.method == "bla_ph":
        model.head.requires_grad_(False)
    else:
        trainable += list(model.head.parameters())
    model.train()
    first_rows = torch.arange(min(INITIALISATION_BATCH, len(features.train)), device=device)
    centre_bounded_logits(model.pooling, features.train.gather(first_rows, device, pooled=False))
    gradient = fit_head(model, trainable, features.train, config, config.epochs, device, config.method)
    model.eval()
    return TrainedExplainer(model, features, gradient)


EVALUATION_BATCH = 128  # rows per evaluation batch: 32 MB of float32 maps stay in the CPU's cache (1.7× 1,024)


@torch.no_grad()
def evaluate(model: ExplainedClassifier, split: FeatureSplit, device: torch.device,
             module_gradient: float | None = None) -> Metrics:
    """Hard and soft accuracy and loss, explanation sizes and liveness on precomputed features.

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
    return Metrics(
        accuracy=(hard_all.argmax(1) == labels).float().mean().item(),
        loss=nnf.cross_entropy(hard_all, labels).item(),
        soft_accuracy=(soft_all.argmax(1) == labels).float().mean().item(),
        soft_loss=nnf.cross_entropy(soft_all, labels).item(),
        mean_explanation_size=size_all.mean().item(),
        sd_explanation_size=size_all.std(correction=0).item(),
        min_explanation_size=int(size_all.min().item()),
        max_explanation_size=int(size_all.max().item()),
        n_val=len(labels),
        dead_explainer=not uses_pooled(model) and is_dead(size_all, positions, variable_size, module_gradient),
        module_gradient=module_gradient,
    )


def versions() -> dict[str, str]:
    """Software versions recorded in every checkpoint and explanations file."""
    import numpy

    return {"bla_core": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "python": platform.python_version()}


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
    strict = getattr(model.backbone, "trainable", False)
    model.load_state_dict(checkpoint["state_dict"], strict=strict)
    model.freeze_backbone()
    model.eval()
    return LoadedRun(model, config, splits, file_sha256(path))


def train_run(config: TrainConfig, out_dir: Path, device: torch.device,
              baseline_dir: Path | None = None) -> Metrics | None:
    """The ``train`` command: the baseline, or an explanation model started from a baseline.

    Without ``baseline_dir`` an explanation method first trains its own baseline (same seed) into
    ``out_dir/baseline``. Under torchrun only the first process trains (None elsewhere).
    """
    splits = load_dataset(config.dataset, config.data_seed, config.val_fraction)
    config = resolve_config(config, splits)
    validate_config(config, splits)
    if distributed.world_size() > 1:
        # Under torchrun the processes share the feature extraction; one process then trains.
        model = build_model(config, splits, "baseline", device)
        if not getattr(model.backbone, "trainable", False):
            extract(model, splits, device, config.cache_dtype)
        if not distributed.is_main():
            return None
    out_dir = prepare_output_dir(Path(out_dir))
    if baseline_dir is not None:
        loaded = load_run(baseline_dir, device)
        if loaded.config.method != "baseline" or config.method == "baseline":
            raise BLAError(f"--baseline must name a baseline run and --method an explanation method "
                           f"({baseline_dir} holds {loaded.config.method!r})")
        if loaded.config.dataset != config.dataset:
            raise BLAError(f"the baseline in {baseline_dir} was trained on {loaded.config.dataset!r}, "
                           f"not {config.dataset!r}")
        baseline, features = loaded.model, extract(loaded.model, splits, device, config.cache_dtype)
    else:
        baseline_config = replace(config, method="baseline")
        baseline, features = train_baseline(baseline_config, splits, device)
        if config.method == "baseline":
            metrics = evaluate(baseline, features.val, device)
            save_run(out_dir, baseline, config, splits, metrics)
            return metrics
        save_run(prepare_output_dir(out_dir / "baseline"), baseline, baseline_config, splits,
                 evaluate(baseline, features.val, device))
    trained = train_explainer(config, splits, baseline, features, device)
    metrics = evaluate(trained.model, trained.features.val, device, trained.module_gradient)
    save_run(out_dir, trained.model, config, splits, metrics)
    return metrics
