"""Designs of any methods: all pairs, named comparisons, random-swap controls, and the errors a researcher can make."""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from generation.cli import main
from tests.generation.conftest import Fixture, add_method_file


@pytest.fixture
def four(fixture_files: Fixture) -> tuple[Fixture, list[str]]:
    """Four methods without BLA-T: cam, l2x_f, grad_cam_pp and a researcher's own method."""
    files = [str(fixture_files.files["cam"]), str(fixture_files.files["l2x_f"]),
             str(add_method_file(fixture_files, "grad_cam_pp", 1)), str(add_method_file(fixture_files, "my_method", 2))]
    return fixture_files, files


def _build(files: list[str], out: Path, *extra: str) -> int:
    return main(["build", "--explanations", *files, "--out", str(out), "--per-type", "3", "--seed", "2",
                 "--size", "28", "--workers", "1", *extra])


def _pairs(bundle: Path) -> list[dict]:
    return json.loads((bundle / "manifest.json").read_text())["pairs"]


def _by_type(bundle: Path) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for pair in _pairs(bundle):
        grouped.setdefault(pair["question_type"], []).append(pair)
    return grouped


def test_without_bla_t_the_default_is_every_pair_of_the_given_methods(four, tmp_path: Path) -> None:
    fixture, files = four
    assert _build(files, tmp_path / "b") == 0
    methods = ["cam", "l2x_f", "grad_cam_pp", "my_method"]
    grouped = _by_type(tmp_path / "b")
    assert list(grouped) == [f"{a}_vs_{b}" for a, b in combinations(methods, 2)]
    for key, pairs in grouped.items():
        assert len(pairs) == 3  # --per-type per comparison and dataset
        a, b = key.split("_vs_")
        assert [[s["method"] for s in p["stimuli"]] for p in pairs] == [[a, b]] * 3
        for pair in pairs:  # both sides' models predict the same, correct class
            row = fixture.image_ids.index(pair["image_id"])
            assert pair["true_class"] == pair["predicted_class"]
            assert row != 11 and (row != 0 or "l2x_f" not in key) and (row != 1 or "cam" not in (a, b))
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["generator"]["options"]["design"] == "default"


def test_all_pairs_with_controls_adds_a_random_swap_of_each_named_method(four, tmp_path: Path) -> None:
    fixture, files = four
    assert _build(files, tmp_path / "b", "--design", "all-pairs", "--controls", "cam,my_method") == 0
    grouped = _by_type(tmp_path / "b")
    assert len(grouped) == 8 and list(grouped)[-2:] == ["cam_vs_random", "my_method_vs_random"]
    maps = {"cam": fixture.maps["cam"], "my_method": np.random.default_rng(2).random((12, 7, 7), np.float32)}
    for method in ("cam", "my_method"):
        for pair in grouped[f"{method}_vs_random"]:
            assert [s["method"] for s in pair["stimuli"]] == [method, "random"]
            row = fixture.image_ids.index(pair["image_id"])
            source = fixture.image_ids.index(pair["random_source_image_id"])
            assert source != row and not np.array_equal(maps[method][source], maps[method][row])


def test_compare_builds_exactly_the_named_comparisons_in_order(four, tmp_path: Path) -> None:
    _, files = four
    assert _build(files, tmp_path / "b", "--compare", "my_method:cam", "grad_cam_pp:random") == 0
    grouped = _by_type(tmp_path / "b")
    assert list(grouped) == ["my_method_vs_cam", "grad_cam_pp_vs_random"]
    assert [s["method"] for s in grouped["my_method_vs_cam"][0]["stimuli"]] == ["my_method", "cam"]


def test_a_random_control_of_a_method_with_one_map_for_all_images_is_refused(four, tmp_path: Path, capsys) -> None:
    fixture, files = four
    files[3] = str(add_method_file(fixture, "my_method", 2, maps=np.ones((12, 7, 7), np.float32)))
    code = _build(files, tmp_path / "b", "--compare", "cam:my_method", "--controls", "my_method")
    _expect_error(capsys, code, "has a 'my_method' map different from image", "random-swap control is impossible")
    assert not (tmp_path / "b").exists()


def _expect_error(capsys, code: int, *fragments: str) -> None:
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and len(err.splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, err


@pytest.mark.parametrize("extra, fragments", [
    (("--compare", "cam:integrated_gradients"),
     ("the design compares cam_vs_integrated_gradients, but no explanations file has method integrated_gradients",
      "(the files give cam, l2x_f, grad_cam_pp, my_method)")),
    (("--controls", "saliency"), ("the design compares saliency_vs_random, but no explanations file has method saliency",)),
    (("--compare", "cam_vs_x:l2x_f"), ("--compare 'cam_vs_x:l2x_f': method key 'cam_vs_x' contains '_vs_'",)),
    (("--compare", "Grad-CAM:l2x_f"), ("--compare 'Grad-CAM:l2x_f': method key 'Grad-CAM' is not a lowercase identifier",)),
    (("--compare", "cam"), ("--compare 'cam' is not of the form METHOD:METHOD",)),
    (("--compare", "cam:cam"), ("a comparison needs two different methods, got 'cam' twice",)),
    (("--compare", "random:cam"), ("'random' can only be the second side of a comparison",)),
    (("--controls", "a_vs_b"), ("--controls: method key 'a_vs_b' contains '_vs_'",)),
    (("--design", "round-robin"), ("--design 'round-robin' is not a design (choose paper or all-pairs",)),
    (("--design", "all-pairs", "--compare", "cam:l2x_f"), ("give either --compare (or --question-types) or --design",)),
    (("--question-types", "cam_vs_"), ("--question-types: question type 'cam_vs_' is not of the form",)),
])
def test_design_mistakes_are_one_sentence_and_write_nothing(four, tmp_path: Path, capsys, extra, fragments) -> None:
    _, files = four
    _expect_error(capsys, _build(files, tmp_path / "b", *extra), *fragments)
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("method, fragment", [
    ("Grad-CAM", "field 'method': method key 'Grad-CAM' is not a lowercase identifier"),
    ("mine_vs_theirs", "field 'method': method key 'mine_vs_theirs' contains '_vs_'"),
    ("random", "field 'method' is 'random', which is reserved for the random-swap control"),
])
def test_a_file_with_an_unusable_method_key_is_refused(four, tmp_path: Path, capsys, method: str, fragment: str) -> None:
    fixture, files = four
    bad = add_method_file(fixture, "bad", 3, method=np.array(method))
    _expect_error(capsys, _build([*files, str(bad)], tmp_path / "b"), str(bad), fragment)
    assert not (tmp_path / "b").exists()


def test_files_over_different_images_are_refused(four, fixture_factory, tmp_path: Path, capsys) -> None:
    _, files = four
    fewer = fixture_factory("fewer", count=10)
    extra = add_method_file(fewer, "score_cam", 4)
    _expect_error(capsys, _build([*files, str(extra)], tmp_path / "b"), "cover different images of dataset 'mnist38'",
                  str(extra), "every file of a dataset must explain the same images")
    assert not (tmp_path / "b").exists()


def test_one_method_alone_needs_a_second_file_or_a_control(four, tmp_path: Path, capsys) -> None:
    _, files = four
    _expect_error(capsys, _build(files[:1], tmp_path / "b"), "the files give one method (cam): every pair needs two")
    assert _build(files[:1], tmp_path / "b", "--controls", "cam") == 0
    assert list(_by_type(tmp_path / "b")) == ["cam_vs_random"]
