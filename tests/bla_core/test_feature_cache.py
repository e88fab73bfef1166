"""The frozen-feature cache: a miss computes, a hit reads, any change of its inputs invalidates."""
import os

import numpy as np
import pytest
import torch

import bla_core.feature_cache as feature_cache
from bla_core.backbones import TimmBackbone
from bla_core.datasets import load_dataset
from bla_core.feature_cache import cache_key, cached_features

BACKBONE = "mobilenetv3_small_050"


@pytest.fixture
def photos(photo_folder):
    root, _ = photo_folder
    return root, load_dataset(f"imagefolder:{root}", val_fraction=0.5).train


def test_miss_computes_the_backbone_features_and_a_hit_reads_them(photos, isolated_cache, monkeypatch):
    _, train = photos
    backbone = TimmBackbone(BACKBONE, "none")
    first = cached_features(backbone, train, torch.device("cpu"), dtype="float32", batch_size=4)
    with torch.no_grad():
        expected = backbone(torch.stack([train[i][0] for i in range(len(train))]))
    assert first.maps.permute(0, 3, 1, 2).shape == expected.shape
    assert torch.allclose(first.maps.permute(0, 3, 1, 2), expected, atol=1e-5)
    assert torch.allclose(first.pooled, expected.mean(dim=(2, 3)), atol=1e-5)
    entries = list((isolated_cache / "features").iterdir())
    assert [e.name for e in entries] == [first.folder.name]

    monkeypatch.setattr(feature_cache, "extract_into", lambda *a, **k: pytest.fail("recomputed on a hit"))
    second = cached_features(backbone, train, torch.device("cpu"), dtype="float32", batch_size=4)
    assert second.folder == first.folder and torch.equal(second.maps, first.maps)
    assert isinstance(np.load(second.folder / "features.npy", mmap_mode="r"), np.memmap)


def test_float16_storage_is_close_to_float32(photos):
    _, train = photos
    backbone = TimmBackbone(BACKBONE, "none")
    half = cached_features(backbone, train, torch.device("cpu"), dtype="float16")
    full = cached_features(backbone, train, torch.device("cpu"), dtype="float32")
    assert half.folder != full.folder and half.maps.dtype == torch.float16
    assert torch.allclose(half.maps.float(), full.maps, rtol=2 ** -10, atol=1e-4)


def test_any_change_of_files_weights_or_preprocessing_changes_the_key(photos, tmp_path):
    root, train = photos
    backbone = TimmBackbone(BACKBONE, "none")
    key, description = cache_key(backbone, train, "float16")
    assert description["weights"] == backbone.weights_id and description["backbone"] == BACKBONE
    assert cache_key(backbone, train, "float16")[0] == key
    assert cache_key(backbone, train.resized((192, 192), "bicubic"), "float16")[0] != key
    assert cache_key(backbone, train, "float32")[0] != key
    other = TimmBackbone("mobilenetv3_small_075", "none")
    assert cache_key(other, train, "float16")[0] != key
    stat = os.stat(train.paths[0])
    os.utime(train.paths[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert cache_key(backbone, train, "float16")[0] != key
    fewer = load_dataset(f"imagefolder:{root}", val_fraction=0.5).train
    fewer.paths.pop()
    assert cache_key(backbone, fewer, "float16")[0] != cache_key(backbone, train, "float16")[0]


def test_a_partial_entry_from_a_killed_extraction_is_never_a_hit(photos, isolated_cache):
    _, train = photos
    backbone = TimmBackbone(BACKBONE, "none")
    key, _ = cache_key(backbone, train, "float16")
    partial = isolated_cache / "features" / f"{key}.partial"
    partial.mkdir(parents=True)
    (partial / "features.npy").write_bytes(b"half written")
    features = cached_features(backbone, train, torch.device("cpu"))
    assert features.folder.name == key and not partial.exists()
    assert torch.isfinite(features.maps.float()).all() and features.maps.abs().sum() > 0
