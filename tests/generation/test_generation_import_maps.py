"""`python -m generation import-maps`: maps from another tool become an explanations file `build` takes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generation.cli import main
from generation.explanations import load_explanations

COUNT = 8
CLASSES = ("cat", "dog")


def _write_inputs(root: Path) -> dict[str, Path]:
    """8 photos in cat/ and dog/, a labels CSV (one misprediction) and a folder of maps, half .npy, half PNG."""
    images, maps = root / "images", root / "maps"
    rows = ["image,true_class,predicted_class"]
    rng = np.random.default_rng(3)
    for i in range(COUNT):
        label = CLASSES[i % 2]
        name = f"{label}/{label}{i}.jpg"
        (images / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).save(images / name)
        predicted = CLASSES[1 - i % 2] if i == COUNT - 1 else label
        rows.append(f"{name},{label},{predicted}")
        (maps / label).mkdir(parents=True, exist_ok=True)
        grid = np.zeros((4, 4), dtype=np.float32)
        grid[i % 4, (i // 4) % 4] = 1.0 + i
        if i % 2:
            Image.fromarray((grid * 25).astype(np.uint8), mode="L").save(maps / label / f"{label}{i}.png")
        else:
            np.save(maps / label / f"{label}{i}.npy", grid)
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return {"images": images, "maps": maps, "labels": root / "labels.csv"}


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    return _write_inputs(tmp_path / "tool")


def _import(inputs: dict[str, Path], out: Path, method: str = "my_method", *extra: str, maps: Path | None = None) -> int:
    return main(["import-maps", "--images", str(inputs["images"]), "--maps", str(maps or inputs["maps"]),
                 "--labels", str(inputs["labels"]), "--method", method, "--dataset", "pets", "--out", str(out),
                 "--title", "Cats and dogs", "--task", "tell cats from dogs", *extra])


def test_a_folder_of_npy_and_png_maps_becomes_an_explanations_file(inputs, tmp_path, capsys):
    out = tmp_path / "pets_my_method.npz"
    assert _import(inputs, out) == 0
    assert "wrote 8 continuous maps of 4×4 (my_method, pets)" in capsys.readouterr().out
    loaded = load_explanations(out)
    assert loaded.method == "my_method" and loaded.dataset == "pets" and loaded.class_names == CLASSES
    assert loaded.image_ids[:2] == ("cat/cat0", "dog/dog1")
    assert loaded.labels.tolist() == [0, 1] * 4 and loaded.preds.tolist() == [0, 1, 0, 1, 0, 1, 0, 0]
    assert loaded.maps.shape == (COUNT, 4, 4)
    assert loaded.maps[0, 0, 0] == 1.0  # .npy taken as it is
    assert loaded.maps[1, 1, 0] == pytest.approx(50 / 255)  # PNG scaled by its bit depth
    assert loaded.image_paths[3] == (inputs["images"] / "dog" / "dog3.jpg").resolve()
    assert loaded.title == "Cats and dogs" and loaded.task == "tell cats from dogs"
    assert loaded.provenance["map_resolution"] == [4, 4] and len(loaded.provenance["labels_sha256"]) == 64


def test_one_stacked_npy_in_csv_order_and_binary_maps_are_hard(inputs, tmp_path):
    stacked = (np.arange(COUNT * 9).reshape(COUNT, 3, 3) % 2).astype(np.float32)
    np.save(tmp_path / "stack.npy", stacked)
    out = tmp_path / "stacked.npz"
    assert _import(inputs, out, "other_tool", "--classes", "dog,cat", maps=tmp_path / "stack.npy") == 0
    loaded = load_explanations(out)
    assert np.array_equal(loaded.maps, stacked) and loaded.map_kind == "hard"
    assert loaded.class_names == ("dog", "cat") and loaded.labels.tolist()[:2] == [1, 0]


def test_imported_files_go_through_generation_build(inputs, tmp_path):
    first, second = tmp_path / "a.npz", tmp_path / "b.npz"
    assert _import(inputs, first, "tool_a") == 0
    stacked = np.random.default_rng(0).random((COUNT, 4, 4)).astype(np.float32)
    np.save(tmp_path / "b.npy", stacked)
    assert _import(inputs, second, "tool_b", maps=tmp_path / "b.npy") == 0
    bundle = tmp_path / "bundle"
    assert main(["build", "--explanations", str(first), str(second), "--out", str(bundle), "--per-type", "4",
                 "--seed", "1", "--size", "56", "--workers", "1"]) == 0
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert {p["question_type"] for p in manifest["pairs"]} == {"tool_a_vs_tool_b"}
    assert len(manifest["pairs"]) == 4
    assert all(p["true_class"] == p["predicted_class"] for p in manifest["pairs"])  # the misprediction is left out
    assert main(["validate", str(bundle)]) == 0


def _remove(path: Path) -> None:
    path.unlink()


def _break_csv_header(inputs):
    text = inputs["labels"].read_text().replace("predicted_class", "prediction", 1)
    inputs["labels"].write_text(text)


def _unknown_class(inputs):
    text = inputs["labels"].read_text().replace("cat/cat0.jpg,cat,cat", "cat/cat0.jpg,cat,bird")
    inputs["labels"].write_text(text)


def _nan_map(inputs):
    grid = np.zeros((4, 4), dtype=np.float32)
    grid[2, 2] = np.nan
    np.save(inputs["maps"] / "cat" / "cat0.npy", grid)


def _duplicate_row(inputs):
    with inputs["labels"].open("a") as handle:
        handle.write("cat/cat0.jpg,cat,cat\n")


PROBLEMS = [
    (lambda i: _remove(i["maps"] / "cat" / "cat2.npy"), "no map for image 'cat/cat2.jpg' (expected cat/cat2.npy or cat/cat2.png)"),
    (lambda i: np.save(i["maps"] / "cat" / "lion.npy", np.zeros((4, 4))), "lion.npy: map for an unknown image"),
    (lambda i: np.save(i["maps"] / "cat" / "cat0.npy", np.zeros((2, 4, 4))), "cat0.npy: a map must be 2-D (h, w), got shape (2, 4, 4)"),
    (_nan_map, "cat0.npy: map holds NaN or infinite values"),
    (_unknown_class, "line 2: predicted_class 'bird' is not a known class (cat, dog)"),
    (_break_csv_header, "expected exactly the columns image,true_class,predicted_class"),
    (_duplicate_row, "image 'cat/cat0.jpg' is listed twice (lines 2 and 10)"),
    (lambda i: _remove(i["images"] / "dog" / "dog3.jpg"), "line 5: image 'dog/dog3.jpg' does not exist in"),
    (lambda i: np.save(i["maps"] / "cat" / "cat4.npy", np.zeros((5, 5))), "every map needs the same grid"),
    (lambda i: Image.new("RGB", (4, 4)).save(i["maps"] / "dog" / "dog1.png"), "dog1.png: map image is RGB, not grayscale"),
    (lambda i: np.save(i["maps"] / "dog" / "dog1.npy", np.zeros((4, 4))), "has two maps (dog1.npy and dog1.png)"),
]


@pytest.mark.parametrize("spoil, message", PROBLEMS)
def test_each_problem_is_one_sentence_and_nothing_is_written(inputs, tmp_path, capsys, spoil, message):
    spoil(inputs)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    assert _import(inputs, out_dir / "x.npz") == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("error: ")
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize("method, message", [
    ("bla_t_vs_cam", "contains '_vs_'"), ("Grad-CAM", "is not a lowercase identifier"),
])
def test_a_bad_method_key_is_refused(inputs, tmp_path, capsys, method, message):
    assert _import(inputs, tmp_path / "x.npz", method) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "x.npz").exists()


def test_stacked_maps_must_match_the_rows(inputs, tmp_path, capsys):
    np.save(tmp_path / "stack.npy", np.zeros((COUNT - 1, 3, 3)))
    assert _import(inputs, tmp_path / "x.npz", maps=tmp_path / "stack.npy") == 2
    assert "holds 7 maps for the 8 images of the labels CSV" in capsys.readouterr().err


def test_an_existing_output_needs_overwrite(inputs, tmp_path, capsys):
    out = tmp_path / "x.npz"
    assert _import(inputs, out) == 0
    before = out.read_bytes()
    assert _import(inputs, out, "second") == 2
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == before
    assert _import(inputs, out, "second", "--overwrite") == 0 and load_explanations(out).method == "second"
