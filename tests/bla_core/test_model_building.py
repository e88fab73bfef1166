"""Model building: one build per model of a run, the feature map's size learnt where F is, and the
Backbone / image-set interfaces."""
import json

import pytest
import torch

import bla_core.checkpoints as checkpoints
import bla_core.model_building as model_building
import bla_core.training as training
from bla_core.backbones import Backbone, TimmBackbone, build_backbone
from bla_core.cli import main
from bla_core.config import TrainConfig, resolve_config
from bla_core.datasets import load_dataset
from bla_core.image_datasets import ImageFileSet
from bla_core.image_sets import FileImageSet, ImageSet, TensorImageSet
from bla_core.model_building import build_model


@pytest.fixture
def builds(monkeypatch):
    """The method of every model built, in order, wherever bla_core builds one."""
    built = []

    def counting(config, splits, method, device):
        built.append(method)
        return model_building.build_model(config, splits, method, device)

    monkeypatch.setattr(training, "build_model", counting)
    monkeypatch.setattr(checkpoints, "build_model", counting)
    return built


@pytest.mark.parametrize("method, expected", [("baseline", ["baseline"]), ("bla_t", ["baseline", "bla_t"])])
def test_train_builds_each_model_of_the_run_once(tmp_path, builds, method, expected):
    assert main(["train", "--method", method, "--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    assert builds == expected
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["method"] == method


def test_train_from_a_baseline_run_builds_the_baseline_and_the_explainer_once(tmp_path, builds):
    assert main(["train", "--method", "baseline", "--epochs", "1", "--out", str(tmp_path / "base")]) == 0
    builds.clear()
    assert main(["train", "--method", "l2x_f", "--epochs", "1", "--baseline", str(tmp_path / "base"),
                 "--out", str(tmp_path / "l2x")]) == 0
    assert builds == ["baseline", "l2x_f"]


def test_bad_settings_fail_before_the_explanation_model_is_built(tmp_path, builds, capsys):
    assert main(["train", "--method", "l2x_f", "--k", "50", "--epochs", "1", "--out", str(tmp_path / "x")]) == 2
    assert "k=50 is larger than the 49 positions" in capsys.readouterr().err
    assert builds == ["baseline"] and not (tmp_path / "x").exists()


def test_the_feature_map_size_is_learnt_where_the_backbone_is_without_moving_it(monkeypatch):
    # On the meta device a tensor has a shape but no data: moving F to the CPU to probe it would raise.
    backbone = TimmBackbone("mobilenetv3_small_050", "none").to("meta")
    monkeypatch.setattr(model_building, "build_backbone", lambda name, weights: backbone)
    splits = load_dataset("mnist38")
    config = resolve_config(TrainConfig(method="bla", backbone="mobilenetv3_small_050", weights="none"), splits)
    model = build_model(config, splits, "bla", torch.device("meta"))
    assert model.backbone is backbone and model.pooling.score.in_channels == backbone.out_channels == 288
    assert {p.device.type for p in backbone.parameters()} == {"meta"}
    assert model_building.feature_geometry(backbone, splits) == (1, 1, 288)  # 28×28 digits, stride 32


def test_backbones_and_image_sets_meet_their_interfaces(photo_folder):
    assert isinstance(build_backbone("mnist_cnn"), Backbone)
    assert isinstance(build_backbone("mobilenetv3_small_050", "none"), Backbone)
    assert not isinstance(torch.nn.Conv2d(1, 1, 1), Backbone)
    digits = load_dataset("mnist38").train
    photos = load_dataset(f"imagefolder:{photo_folder[0]}", val_fraction=0.5).train
    assert isinstance(digits, TensorImageSet) and isinstance(digits, ImageSet) and not isinstance(digits, FileImageSet)
    assert isinstance(photos, ImageFileSet) and isinstance(photos, FileImageSet)
    assert isinstance(photos.resized((32, 32), "bilinear"), FileImageSet) and photos.resized((32, 32), "bilinear")[0][0].shape == (3, 32, 32)
