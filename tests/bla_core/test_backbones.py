"""timm backbones: feature maps, data configs, weights from files, the bundled Lite0, offline hub."""
import time

import numpy as np
import pytest
import torch
from PIL import Image

from bla_core.backbones import TimmBackbone, build_backbone
from bla_core.cli import main
from bla_core.datasets import load_dataset
from bla_core.errors import BLAError
from bla_core.config import TrainConfig, resolve_config


def test_timm_backbone_gives_forward_features_and_its_data_config():
    backbone = build_backbone("efficientnet_b0", "none")
    assert backbone.out_channels == 1280 and backbone.trainable is False
    assert backbone.preprocessing.size == (224, 224)
    assert backbone.preprocessing.mean == pytest.approx((0.485, 0.456, 0.406))
    x = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        features = backbone(x)
        expected = backbone.model.forward_features((x - backbone.mean) / backbone.std)
    assert features.shape == (2, 1280, 7, 7) and torch.equal(features, expected)
    assert not any(p.requires_grad for p in backbone.parameters())
    lite = build_backbone("tf_efficientnet_lite0", "none")
    assert lite.preprocessing.mean == (0.5, 0.5, 0.5) and lite.preprocessing.std == (0.5, 0.5, 0.5)


def test_random_init_is_the_same_for_every_build():
    a = TimmBackbone("mobilenetv3_small_050", "none")
    torch.manual_seed(123)
    b = TimmBackbone("mobilenetv3_small_050", "none")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_bundled_lite0_classifies_chelsea_as_a_cat():
    from skimage.data import chelsea

    backbone = build_backbone("tf_efficientnet_lite0", "bundled")
    photo = Image.fromarray(chelsea()).resize((224, 224), Image.Resampling.BICUBIC)
    x = torch.from_numpy(np.asarray(photo).copy()).permute(2, 0, 1).float().div(255)[None]
    with torch.no_grad():
        top = backbone.classify(backbone(x)).argmax(1).item()
    assert 281 <= top <= 285  # ImageNet's domestic cats
    assert len(backbone.weights_id) == 64


@pytest.mark.parametrize("kind", ["safetensors", "wrapped-checkpoint"])
def test_weights_from_a_local_file(tmp_path, kind):
    from safetensors.torch import save_file

    source = TimmBackbone("mobilenetv3_small_050", "none").model.state_dict()
    state = {k: (v + 1.0 if v.is_floating_point() else v) for k, v in source.items()}
    if kind == "safetensors":
        path = tmp_path / "w.safetensors"
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        path = tmp_path / "w.pth"
        torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    loaded = TimmBackbone("mobilenetv3_small_050", str(path))
    key = "conv_stem.weight"
    assert torch.equal(loaded.model.state_dict()[key], state[key])
    assert loaded.weights_id != TimmBackbone("mobilenetv3_small_050", "none").weights_id


def test_weights_that_do_not_fit_give_a_clear_error(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"conv_stem.weight": torch.zeros(3, 3, 3, 3)}, str(path))
    with pytest.raises(BLAError, match=f"weights {path} do not fit this backbone"):
        TimmBackbone("mobilenetv3_small_050", str(path))
    with pytest.raises(BLAError, match="does not exist"):
        TimmBackbone("mobilenetv3_small_050", str(tmp_path / "missing.pth"))
    with pytest.raises(BLAError, match="bundled exists only for"):
        TimmBackbone("efficientnet_b0", "bundled")


def test_hub_weights_offline_fail_within_seconds_saying_how_to_pass_a_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hub"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    start = time.monotonic()
    code = main(["train", "--dataset", "mnist38", "--backbone", "resnet18", "--method", "baseline",
                 "--out", str(tmp_path / "run")])
    assert time.monotonic() - start < 10
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "offline" in err and "--weights PATH" in err and "resnet18" in err
    assert not (tmp_path / "run").exists()


def test_unknown_backbone_is_one_clear_error():
    with pytest.raises(BLAError, match="unknown backbone 'efficientnet_b99'"):
        build_backbone("efficientnet_b99")


def test_default_backbone_resolution_offline(photo_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    root, _ = photo_folder
    photos = load_dataset(f"imagefolder:{root}", val_fraction=0.5)
    resolved = resolve_config(TrainConfig(dataset=f"imagefolder:{root}"), photos)
    assert (resolved.backbone, resolved.weights, resolved.epochs) == ("tf_efficientnet_lite0", "bundled", 5)
    explicit = resolve_config(TrainConfig(dataset=f"imagefolder:{root}", backbone="efficientnet_b0"), photos)
    assert explicit.weights == "hub"
    digits = resolve_config(TrainConfig(), load_dataset("mnist38"))
    # the paper's 3 × 375 steps over 800 training digits in batches of 32 (25 steps an epoch): 45 epochs
    assert (digits.backbone, digits.weights, digits.epochs) == ("mnist_cnn", None, 45)
