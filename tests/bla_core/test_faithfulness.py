"""LIME on the patch grid finds what a synthetic model looks at; Table 2 from real runs."""
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as nnf
from torch import nn

from bla_core.cli import main
from bla_core.classifier import ExplainedClassifier
from bla_core.faithfulness import lime_scores, spearman
from bla_core.pooling import AveragePooling
from bla_core.posthoc import cam

IMPORTANT = (2, 5)


class OneCellBackbone(nn.Module):
    """Per 32×32 patch its mean brightness, but only the patch at IMPORTANT reaches the feature map."""

    trainable = False
    out_channels = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cells = nnf.avg_pool2d(x.mean(dim=1, keepdim=True), 32)
        mask = torch.zeros_like(cells)
        mask[:, :, IMPORTANT[0], IMPORTANT[1]] = 1.0
        return cells * mask


@pytest.fixture
def one_cell_model():
    model = ExplainedClassifier(OneCellBackbone(), AveragePooling(), num_classes=2).eval()
    with torch.no_grad():
        model.classifier.weight.copy_(torch.tensor([[-20.0], [20.0]]))
        model.classifier.bias.zero_()
    return model


def test_lime_finds_the_one_cell_that_matters(one_cell_model):
    image = torch.rand(3, 224, 224, generator=torch.Generator().manual_seed(1)) * 0.5 + 0.5
    probability = lambda batch: torch.softmax(one_cell_model(batch).logits, 1)[:, 1]  # noqa: E731
    scores = lime_scores(probability, image, samples=300, generator=torch.Generator().manual_seed(0))
    assert scores.shape == (7, 7)
    assert np.unravel_index(np.argmax(scores), scores.shape) == IMPORTANT
    others = np.delete(scores.ravel(), IMPORTANT[0] * 7 + IMPORTANT[1])
    assert scores[IMPORTANT] > 0.1 and np.abs(others).max() < 1e-6  # only that cell changes the output
    cam_map = cam(one_cell_model, image[None], torch.tensor([1]))[0].numpy()
    indicator = np.zeros((7, 7))
    indicator[IMPORTANT] = 1
    assert spearman(cam_map, indicator) == pytest.approx(1.0)


def test_lime_is_exact_for_a_model_linear_in_the_patterns():
    weights = torch.arange(49, dtype=torch.float64).view(7, 7) / 49
    def additive(batch):  # score = Σ_cells weight · (cell kept), for an image that is 1 everywhere
        return (nnf.avg_pool2d(batch[:, :1].double(), 32)[:, 0] * weights).sum(dim=(1, 2))
    scores = lime_scores(additive, torch.ones(3, 224, 224), samples=200)
    assert np.allclose(scores, weights.numpy(), atol=1e-9)


def test_faithfulness_command_writes_table2_from_experiment_runs(photo_folder, tmp_path):
    root, _ = photo_folder
    exp = tmp_path / "exp"
    assert main(["experiment", "--dataset", f"imagefolder:{root}", "--val-fraction", "0.5", "--backbone",
                 "mobilenetv3_small_050", "--weights", "none", "--methods", "baseline,bla_t", "--runs", "1",
                 "--epochs", "1", "--out", str(exp)]) == 0
    out = tmp_path / "faith"
    assert main(["faithfulness", "--run", str(exp / "runs" / "run-000"), "--samples", "40", "--images", "2",
                 "--out", str(out)]) == 0
    rows = pd.read_csv(out / "faithfulness.csv")
    assert len(rows) == 2 and set(rows.columns) >= {"image_id", "lime_cam", "lime_bla_t"}
    assert rows[["lime_cam", "lime_bla_t"]].abs().le(1).all().all()
    assert "| dataset | images | LIME/CAM | LIME/BLA-T |" in (out / "table2.md").read_text()
    assert main(["faithfulness", "--run", str(exp), "--out", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists()
