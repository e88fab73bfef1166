"""Post-hoc explanation maps for a trained classifier: CAM and Grad-CAM.

The random-swap control is drawn where pairs are built (generation.selection.random_source_row).
"""
from __future__ import annotations

import torch

from .classifier import ExplainedClassifier
from .errors import BLAError
from .pooling import AveragePooling


def cam(model: ExplainedClassifier, x: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    """Class activation map Σ_c w_{y,c} f_c of an average-pooled model; (B, h, w).

    ``target`` (B,) defaults to the predicted class ŷ. The map is the per-position decomposition of
    the class logit: its mean over positions plus the bias is that logit.
    """
    if not isinstance(model.pooling, AveragePooling):
        raise BLAError("CAM needs an average-pooled (baseline) model; use grad_cam for other heads")
    with torch.no_grad():
        features = model.backbone(x)
        if target is None:
            target = model.forward_features(features, hard=True).logits.argmax(dim=1)
        weights = model.classifier.weight[target]  # (B, C)
        return torch.einsum("bc,bchw->bhw", weights, features)


def grad_cam(model: ExplainedClassifier, x: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al. 2017) at the backbone's output feature map; (B, h, w).

    α_c = mean over positions of ∂y_target/∂f_c, map = ReLU(Σ_c α_c f_c). For an average-pooled
    linear head this is ReLU(CAM)/n. The model's train/eval mode is left as it was.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            features = model.backbone(x).detach().requires_grad_(True)
            logits = model.forward_features(features, hard=True).logits
            if target is None:
                target = logits.argmax(dim=1)
            score = logits.gather(1, target.view(-1, 1)).sum()
            (grads,) = torch.autograd.grad(score, features)
        alpha = grads.mean(dim=(2, 3))
        return torch.relu(torch.einsum("bc,bchw->bhw", alpha, features.detach()))
    finally:
        model.train(was_training)

