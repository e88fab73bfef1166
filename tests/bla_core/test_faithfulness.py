"""LIME on the patch grid finds what a synthetic model looks at; Table 2 from real runs."""
import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as nnf
from torch import nn

from bla_core.cli import main
from bla_core.classifier import ExplainedClassifier
from bla_core.faithfulness import fill_image, lime_scores, neutral_colour, spearman, table2_markdown, table2_numbers
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
    assert "| dataset | images | LIME/CAM | undefined | LIME/BLA-T | undefined |" in (out / "table2.md").read_text()
    assert main(["faithfulness", "--run", str(exp), "--out", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists()


def test_lime_on_a_grey_image_with_black_fill_recovers_each_patchs_pixel_sum():
    image = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).repeat_interleave(4, 0).repeat_interleave(4, 1)[None]  # 1×8×8
    fill = fill_image(image, (2, 2), "black", neutral_colour(nn.Identity(), 1))
    assert fill.shape == (1, 8, 8) and not fill.any()
    total = lambda batch: batch.double().sum(dim=(1, 2, 3))  # noqa: E731  (linear: hiding a patch removes its sum)
    scores = lime_scores(total, image, grid=(2, 2), samples=64, fill=fill)
    assert np.allclose(scores, [[16 * 1.0, 16 * 2.0], [16 * 3.0, 16 * 4.0]], atol=1e-9)


def test_mean_fill_of_a_grey_image_is_the_mean_of_the_backbones_normalisation_mean():
    backbone = nn.Module()
    backbone.mean = torch.tensor([0.2, 0.4, 0.9]).view(1, 3, 1, 1)
    assert neutral_colour(backbone, 1).tolist() == pytest.approx([0.5])
    assert neutral_colour(backbone, 3).tolist() == pytest.approx([0.2, 0.4, 0.9])
    assert neutral_colour(nn.Identity(), 3).tolist() == [0.5, 0.5, 0.5]  # no normalisation: grey
    filled = fill_image(torch.rand(1, 4, 4), (2, 2), "mean", neutral_colour(backbone, 1))
    assert torch.allclose(filled, torch.full((1, 4, 4), 0.5))


def test_undefined_correlations_are_counted_and_left_out_of_the_mean():
    per_image = pd.DataFrame({"dataset": ["A"] * 4, "image_id": list("abcd"),
                              "lime_cam": [0.2, np.nan, 0.4, np.nan], "lime_bla_t": [0.1, 0.3, 0.5, 0.7]})
    row = table2_numbers(per_image).loc["A"]
    assert row["images"] == 4 and row["lime_cam"] == pytest.approx(0.3) and row["undefined_lime_cam"] == 2
    assert row["lime_bla_t"] == pytest.approx(0.4) and row["undefined_lime_bla_t"] == 0
    assert "| A | 4 | 0.30 | 2 | 0.40 | 0 |" in table2_markdown(per_image, 10, "black")


def test_faithfulness_on_mnist38_occludes_with_black_and_records_it(tmp_path):
    exp = tmp_path / "exp"
    assert main(["experiment", "--dataset", "mnist38", "--methods", "baseline,bla_t", "--runs", "1", "--epochs", "1",
                 "--out", str(exp)]) == 0
    out = tmp_path / "faith"
    assert main(["faithfulness", "--run", str(exp / "runs" / "run-000"), "--samples", "30", "--images", "3",
                 "--out", str(out)]) == 0
    rows = pd.read_csv(out / "faithfulness.csv")
    assert len(rows) == 3 and (rows["fill"] == "black").all() and (rows["dataset"] == "mnist38").all()
    settings = json.loads((out / "faithfulness.json").read_text())
    assert settings["fill"] == "black"
    undefined = settings["undefined"]["mnist38"]
    assert undefined["undefined_lime_bla_t"] == int(rows["lime_bla_t"].isna().sum())
    assert undefined["undefined_lime_cam"] == int(rows["lime_cam"].isna().sum())
    table = (out / "table2.md").read_text()
    assert "fill: black" in table and "| dataset | images | LIME/CAM | undefined | LIME/BLA-T | undefined |" in table
