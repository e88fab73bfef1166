"""Tiny explanation files on disk, laid out as bla_core writes them, for the generation tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

DATASET = "mnist38"
CLASS_NAMES = ["3", "8"]
COUNT = 12
GRID = 7


@dataclass
class Fixture:
    """Paths of the fixture files plus the arrays they hold, for hand-checked assertions."""

    folder: Path
    files: dict[str, Path]
    image_ids: list[str]
    labels: np.ndarray
    preds: dict[str, np.ndarray]
    maps: dict[str, np.ndarray]
    pixels: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def paths(self) -> list[str]:
        """All explanation files as strings, ready for --explanations."""
        return [str(p) for p in self.files.values()]


def write_explanations(path: Path, **fields: Any) -> Path:
    """Write an explanations .npz the way bla_core does (strings as numpy unicode arrays)."""
    arrays = {k: np.asarray(v) for k, v in fields.items()}
    np.savez_compressed(path, allow_pickle=False, **arrays)
    return path


def _bla_t_mask(i: int) -> np.ndarray:
    """A distinct hard mask per image: 1 + i % 5 cells on a diagonal-ish walk."""
    mask = np.zeros((GRID, GRID), dtype=np.float32)
    for k in range(1 + i % 5):
        mask[(i + k) % GRID, (2 * i + k) % GRID] = 1.0
    return mask


def _l2x_mask(i: int) -> np.ndarray:
    """Exactly 8 selected cells (L2X-F top-k with k = 8)."""
    mask = np.zeros(GRID * GRID, dtype=np.float32)
    mask[(np.arange(8) * 5 + i) % (GRID * GRID)] = 1.0
    return mask.reshape(GRID, GRID)


def make_fixture(folder: Path, count: int = COUNT, extra: dict[str, dict[str, Any]] | None = None) -> Fixture:
    """Write `count` 28×28 digit-like PNGs and bla_t, l2x_f and cam explanation files into `folder`."""
    rng = np.random.default_rng(7)
    image_ids = [f"{DATASET}-{i:05d}" for i in range(count)]
    image_dir = folder / "images" / DATASET
    image_dir.mkdir(parents=True, exist_ok=True)
    pixels = {}
    for i, image_id in enumerate(image_ids):
        digit = (rng.random((28, 28)) * 80).astype(np.uint8)
        digit[6:22, 10 + i % 4:14 + i % 4] = 200 + i  # a bright stroke that differs per image
        Image.fromarray(digit).save(image_dir / f"{image_id}.png")
        pixels[image_id] = digit
    labels = np.array([i % 2 for i in range(count)], dtype=np.int64)
    bla_preds = labels.copy()
    bla_preds[count - 1] = 1 - labels[count - 1]  # last image misclassified by every system
    l2x_preds = bla_preds.copy()
    l2x_preds[0] = 1 - labels[0]  # L2X-F disagrees on image 0
    cam_preds = bla_preds.copy()
    cam_preds[1] = 1 - labels[1]  # the baseline disagrees on image 1
    maps = {
        "bla_t": np.stack([_bla_t_mask(i) for i in range(count)]),
        "l2x_f": np.stack([_l2x_mask(i) for i in range(count)]),
        "cam": rng.normal(size=(count, GRID, GRID)).astype(np.float32),
    }
    preds = {"bla_t": bla_preds, "l2x_f": l2x_preds, "cam": cam_preds}
    files = {}
    for method in ("bla_t", "l2x_f", "cam"):
        fields: dict[str, Any] = dict(
            image_ids=np.array(image_ids),
            image_paths=np.array([f"images/{DATASET}/{i}.png" for i in image_ids]),
            labels=labels,
            preds=preds[method],
            maps=maps[method],
            method=np.array(method),
            class_names=np.array(CLASS_NAMES),
            dataset=np.array(DATASET),
            provenance=np.array(json.dumps({"seed": 0, "method": method})),
            dataset_title=np.array("Handwritten digits 3 and 8"),
            dataset_task=np.array("tell handwritten 3s from 8s"),
        )
        fields.update((extra or {}).get(method, {}))
        files[method] = write_explanations(folder / f"{DATASET}_{method}.npz", **fields)
    return Fixture(folder, files, image_ids, labels, preds, maps, pixels)


def add_method_file(fixture: Fixture, name: str, seed: int, **override: Any) -> Path:
    """One more explanations file over the fixture's images: the CAM file with seeded maps and method ``name``."""
    fields = dict(np.load(fixture.files["cam"]))
    fields.update(method=np.array(name), maps=np.random.default_rng(seed).random(fields["maps"].shape, np.float32))
    fields.update(override)
    return write_explanations(fixture.folder / f"{DATASET}_{name}.npz", **fields)


@pytest.fixture
def fixture_files(tmp_path: Path) -> Fixture:
    """Fixture explanation files for mnist38 (12 images, 2 classes) in a fresh folder."""
    return make_fixture(tmp_path / "explanations")


@pytest.fixture
def fixture_factory(tmp_path: Path) -> Callable[..., Fixture]:
    """Make fixture files with overrides: factory(name, count=..., extra={method: {field: value}})."""

    def factory(name: str = "explanations", **kwargs: Any) -> Fixture:
        return make_fixture(tmp_path / name, **kwargs)

    return factory
