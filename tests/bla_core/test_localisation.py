"""End to end on a tiny synthetic evidence folder: BLA-T's explanation lands on the object (issue 25)."""
import csv
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bla_core.cli import main
from bla_core.errors import BLAError
from bla_core.synthetic import cells_inside, read_evidence_folder, write_evidence_folder

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import localisation  # noqa: E402


@pytest.fixture(scope="module")
def clutter_folder(tmp_path_factory):
    return write_evidence_folder(tmp_path_factory.mktemp("evidence") / "clutter", "clutter", per_class=20, seed=0)


def object_precision(folder, run: Path, *start: str) -> tuple[float, float]:
    """Train BLA-T (bundled Lite0, frozen features), explain the validation split, and return the
    share of selected cells inside the object's box and the box's share of the grid."""
    torch.set_num_threads(1)
    args = ["train", "--dataset", folder.spec, "--method", "bla_t", "--backbone", "tf_efficientnet_lite0",
            "--weights", "bundled", "--epochs", "60", "--seed", "0", "--out", str(run)]
    assert main(args + list(start)) == 0
    assert main(["explain", "--run", str(run), "--out", str(run / "bla_t.npz")]) == 0
    stored = np.load(run / "bla_t.npz")
    selected = stored["maps"] > 0
    inside = np.stack([cells_inside(folder.boxes[i], (folder.size, folder.size), selected.shape[1:]).numpy()
                       for i in stored["image_ids"]])
    return float(((selected & inside).sum((1, 2)) / selected.sum((1, 2))).mean()), float(inside.mean())


def test_the_default_start_selects_mostly_object_cells_where_the_unit_scale_start_does_not(clutter_folder, tmp_path):
    precision, share = object_precision(clutter_folder, tmp_path / "default")
    centred, _ = object_precision(clutter_folder, tmp_path / "centred", "--bla-start", "centred")
    assert share < 0.15  # the object covers under a seventh of the 7×7 grid
    assert precision > 0.6 and precision > 4 * share  # measured 0.67
    assert centred < 0.5 and precision > centred + 0.15  # measured 0.42: half the cells, mostly background


def test_boxes_are_stored_beside_the_class_folders_and_cells_count_by_half_their_area(clutter_folder, tmp_path):
    again = read_evidence_folder(clutter_folder.root)
    assert again.boxes == clutter_folder.boxes and len(again.boxes) == 40
    assert sorted(p.name for p in clutter_folder.root.iterdir()) == ["boxes.json", "cross", "disc"]
    # a box over pixels 32–96 × 32–80 of 224: rows 1 and 2 (the second half covered), columns 1 and 2
    inside = cells_inside((32, 32, 96, 80), (224, 224), (7, 7))
    assert inside.nonzero().tolist() == [[1, 1], [1, 2], [2, 1], [2, 2]]
    with pytest.raises(BLAError, match="has no boxes.json"):
        read_evidence_folder(tmp_path)
    with pytest.raises(BLAError, match="unknown evidence folder kind 'stripes'"):
        write_evidence_folder(tmp_path / "x", "stripes", 2, 0)
    with pytest.raises(BLAError, match="classes must be between 2 and 4, got 5"):
        write_evidence_folder(tmp_path / "x", "clutter", 2, 0, classes=5)


def test_a_four_class_folder_holds_one_folder_per_shape_with_the_boxes_of_all(tmp_path):
    folder = write_evidence_folder(tmp_path / "four", "distractor", per_class=3, seed=1, classes=4)
    assert sorted(p.name for p in folder.root.iterdir()) == ["boxes.json", "cross", "diamond", "disc", "ring"]
    assert len(folder.boxes) == 12 and read_evidence_folder(folder.root).boxes == folder.boxes
    again = write_evidence_folder(tmp_path / "again", "distractor", per_class=3, seed=1, classes=4)
    assert (folder.root / "ring" / "0002.png").read_bytes() == (again.root / "ring" / "0002.png").read_bytes()


def test_the_quick_benchmark_writes_one_row_per_method_start_and_seed(tmp_path, capsys):
    out = tmp_path / "results.csv"
    assert localisation.main(["--quick", "--library", "eigen_cam", "--starts", "small,centred", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    methods = [(r["method"], r["start"]) for r in rows if r["seed"] == "0"]
    assert methods == [("cam", ""), ("grad_cam", ""), ("bla_t", "small"), ("bla_t", "centred"), ("l2x_f", ""),
                       ("eigen_cam", "")]
    assert {r["seed"] for r in rows} == {"0", "1"}
    for r in rows:
        assert 0.0 <= float(r["pointing"]) <= 1.0 and 0.0 <= float(r["accuracy"]) <= 1.0
    assert float(next(r for r in rows if r["method"] == "l2x_f")["mask_size"]) == 8.0
    assert "| clutter | bla_t | small | 2 |" in capsys.readouterr().out
