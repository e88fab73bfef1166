"""Post-hoc explanation methods from the field's libraries: pytorch-grad-cam and captum.

One registry, :data:`LIBRARY_METHODS`: method key → :class:`LibraryMethod`. Every method explains
the predicted class of a trained run's model and returns the map the library produces:

* pytorch-grad-cam (Grad-CAM++, Score-CAM, XGrad-CAM, EigenCAM, LayerCAM, HiResCAM) at the
  backbone's output feature map (the model's last feature layer), as the library returns it:
  ReLU'd, min–max scaled to [0, 1] per image and resized to the input resolution;
* captum (Integrated Gradients, Saliency, Occlusion, LIME) on the input pixels, at the input
  resolution, reduced over colour channels as recorded in :attr:`LibraryMethod.channels`.

The hand-written CAM and Grad-CAM (:mod:`bla_core.posthoc`) stay the reference for those two.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any

import torch
from torch import nn

from .classifier import ExplainedClassifier

# Settings of the methods that have any, recorded in every explanations file they write.
IG_STEPS = 32  # Integrated Gradients: Gauss–Legendre steps; baseline: a black image (inputs are in [0, 1])
OCCLUSION_WINDOW_FRACTION = 1 / 8  # occluding square's side as a share of the image side
LIME_SAMPLES = 200  # perturbed samples per image
LIME_GRID = 7  # LIME's interpretable features: a LIME_GRID × LIME_GRID grid of image cells
LIME_RIDGE_ALPHA = 1.0  # the surrogate: ridge regression, as the reference lime package (captum's Lasso zeroes small effects)
SCORE_CAM_BATCH = 64  # masked images per forward pass
INPUT_GRADIENT_CHUNK = 16  # images per call of the methods that back-propagate through the backbone

Explainer = Callable[[nn.Module, nn.Module | None, torch.Tensor, torch.Tensor], torch.Tensor]


class LogitNetwork(nn.Module):
    """``images → class logits`` of an :class:`ExplainedClassifier`, the form both libraries call.

    The backbone's feature map passes through :attr:`tap`, the target layer of pytorch-grad-cam;
    a frozen backbone's output is made a leaf that requires gradients so the layer's hooks see them.
    """

    def __init__(self, model: ExplainedClassifier) -> None:
        super().__init__()
        self.model = model
        self.tap = nn.Identity()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.model.backbone(images)
        if not features.requires_grad and torch.is_grad_enabled():
            features = features.detach().requires_grad_(True)
        return self.model.forward_features(self.tap(features), hard=True).logits


@dataclass(frozen=True)
class LibraryMethod:
    """One library-backed method: where it comes from, how it is called, how big one call may be."""

    key: str
    library: str  # distribution name on PyPI
    name: str  # the library's class
    explain: Explainer  # (network, target layer, images (B, C, H, W), targets (B,)) → maps (B, h, w)
    channels: str  # how colour channels become one map
    chunk: int | None = None  # images per call (None: the whole batch)
    settings: dict[str, Any] = field(default_factory=dict)
    class_agnostic: bool = False  # the map ignores the target class (EigenCAM)

    def record(self, resolution: tuple[int, int]) -> dict[str, Any]:
        """What the explanations file's provenance says about this method."""
        return {"key": self.key, "library": self.library, "library_version": version(self.library),
                "class": self.name, "map_resolution": list(resolution), "channels": self.channels,
                "settings": self.settings}


def _grad_cam_family(class_name: str, batch_size: int | None = None) -> Explainer:
    def explain(net: nn.Module, layer: nn.Module | None, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        import pytorch_grad_cam
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        if layer is None:
            raise ValueError(f"{class_name} needs a target layer")
        with getattr(pytorch_grad_cam, class_name)(model=net, target_layers=[layer]) as method:
            if batch_size is not None:
                method.batch_size = batch_size
            maps = method(input_tensor=images, targets=[ClassifierOutputTarget(int(t)) for t in targets])
        return torch.from_numpy(maps).float()

    return explain


def _integrated_gradients(net: nn.Module, _layer: nn.Module | None, images: torch.Tensor,
                          targets: torch.Tensor) -> torch.Tensor:
    from captum.attr import IntegratedGradients

    attributions = IntegratedGradients(net).attribute(
        images, baselines=torch.zeros_like(images), target=targets, n_steps=IG_STEPS,
        internal_batch_size=images.shape[0])
    return attributions.sum(dim=1)


def _saliency(net: nn.Module, _layer: nn.Module | None, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    from captum.attr import Saliency

    inputs = images.detach().requires_grad_(True)
    return Saliency(net).attribute(inputs, target=targets, abs=True).amax(dim=1)


def occlusion_window(height: int, width: int) -> tuple[int, int]:
    """Side and stride of the occluding square for an image of ``height`` × ``width`` pixels."""
    side = max(1, round(min(height, width) * OCCLUSION_WINDOW_FRACTION))
    return side, max(1, side // 2)


def _occlusion(net: nn.Module, _layer: nn.Module | None, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    from captum.attr import Occlusion

    channels, height, width = images.shape[1:]
    side, stride = occlusion_window(height, width)
    with torch.no_grad():
        attributions = Occlusion(net).attribute(
            images, sliding_window_shapes=(channels, side, side), strides=(channels, stride, stride),
            baselines=0.0, target=targets)
    return attributions.mean(dim=1)


def lime_segments(height: int, width: int, device: torch.device) -> torch.Tensor:
    """LIME's interpretable features: cell index of every pixel in a LIME_GRID × LIME_GRID grid."""
    rows = torch.arange(height, device=device) * min(LIME_GRID, height) // height
    cols = torch.arange(width, device=device) * min(LIME_GRID, width) // width
    return rows[:, None] * min(LIME_GRID, width) + cols[None, :]


def _lime(net: nn.Module, _layer: nn.Module | None, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    from captum.attr import Lime
    from captum._utils.models.linear_model import SkLearnRidge

    segments = lime_segments(images.shape[2], images.shape[3], images.device)
    mask = segments.expand(1, images.shape[1], *segments.shape)
    lime = Lime(net, interpretable_model=SkLearnRidge(alpha=LIME_RIDGE_ALPHA))
    maps = []
    with torch.no_grad():
        for image, target in zip(images, targets):
            attributions = lime.attribute(image[None], target=int(target), feature_mask=mask, baselines=0.0,
                                          n_samples=LIME_SAMPLES, perturbations_per_eval=min(LIME_SAMPLES, 50))
            maps.append(attributions.mean(dim=1))
    return torch.cat(maps)


_CAM_CHANNELS = "the library's weighted sum over the feature map's channels, ReLU, min-max scaled per image"
_METHODS = (
    LibraryMethod("grad_cam_pp", "grad-cam", "GradCAMPlusPlus", _grad_cam_family("GradCAMPlusPlus"), _CAM_CHANNELS),
    LibraryMethod("score_cam", "grad-cam", "ScoreCAM", _grad_cam_family("ScoreCAM", SCORE_CAM_BATCH), _CAM_CHANNELS,
                  chunk=1, settings={"batch_size": SCORE_CAM_BATCH}),
    LibraryMethod("xgrad_cam", "grad-cam", "XGradCAM", _grad_cam_family("XGradCAM"), _CAM_CHANNELS),
    LibraryMethod("eigen_cam", "grad-cam", "EigenCAM", _grad_cam_family("EigenCAM"), _CAM_CHANNELS,
                  settings={"target": "none: the first principal component of the feature map, whatever the class"},
                  class_agnostic=True),
    LibraryMethod("layer_cam", "grad-cam", "LayerCAM", _grad_cam_family("LayerCAM"), _CAM_CHANNELS),
    LibraryMethod("hires_cam", "grad-cam", "HiResCAM", _grad_cam_family("HiResCAM"), _CAM_CHANNELS),
    LibraryMethod("integrated_gradients", "captum", "IntegratedGradients", _integrated_gradients,
                  "sum over channels (completeness: the map sums to logit(x) - logit(black))", chunk=INPUT_GRADIENT_CHUNK,
                  settings={"n_steps": IG_STEPS, "method": "gausslegendre", "baseline": "black image (0)"}),
    LibraryMethod("saliency", "captum", "Saliency", _saliency, "max over channels of |gradient|", chunk=INPUT_GRADIENT_CHUNK,
                  settings={"abs": True}),
    LibraryMethod("occlusion", "captum", "Occlusion", _occlusion, "mean over channels (windows span all channels)",
                  settings={"window_fraction": OCCLUSION_WINDOW_FRACTION, "stride": "half the window",
                            "baseline": "black (0)"}),
    LibraryMethod("lime", "captum", "Lime", _lime, "mean over channels (features span all channels)",
                  settings={"n_samples": LIME_SAMPLES, "features": f"{LIME_GRID}x{LIME_GRID} grid of image cells",
                            "interpretable_model": f"SkLearnRidge(alpha={LIME_RIDGE_ALPHA})",
                            "baseline": "black (0)"}),
)
LIBRARY_METHODS: dict[str, LibraryMethod] = {m.key: m for m in _METHODS}


def library_maps(model: ExplainedClassifier, images: torch.Tensor,
                 method: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictions and ``method``'s maps (B, h, w) for the predicted classes; the model's mode is kept."""
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            preds = LogitNetwork(model)(images).argmax(1)
    finally:
        model.train(was_training)
    return preds, library_class_maps(model, images, preds, method=method)


def library_class_maps(model: ExplainedClassifier, images: torch.Tensor, targets: torch.Tensor,
                       method: str) -> torch.Tensor:
    """``method``'s maps (B, h, w) explaining the classes ``targets`` (B,); the model's mode is kept."""
    entry = LIBRARY_METHODS[method]
    net = LogitNetwork(model)
    was_training = model.training
    try:
        net.eval()
        step = entry.chunk or images.shape[0]
        maps = [entry.explain(net, net.tap, images[i:i + step], targets[i:i + step])
                for i in range(0, images.shape[0], step)]
    finally:
        model.train(was_training)
    return torch.cat(maps).detach().float().to(targets.device)
