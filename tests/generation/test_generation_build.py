"""`python -m generation build` end to end on fixture files: manifest, images, determinism, errors."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generation.cli import main

REPO = Path(__file__).resolve().parents[2]


def _build(fixture, out: Path, *extra: str, files=None, workers: str = "1") -> int:
    return main(["build", "--explanations", *(files or fixture.paths), "--out", str(out), "--per-type", "4",
                 "--seed", "5", "--size", "56", "--workers", workers, *extra])


def _pixels(bundle: Path, name: str) -> np.ndarray:
    with Image.open(bundle / name) as image:
        return np.asarray(image.convert("RGB"))


def _manifest(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text())


def test_build_writes_schema_1_manifest_and_images(fixture_files, tmp_path: Path, capsys) -> None:
    bundle = tmp_path / "bundle"
    assert _build(fixture_files, bundle) == 0
    manifest = _manifest(bundle)
    assert manifest["schema_version"] == 1 and manifest["generator"]["seed"] == 5
    assert manifest["datasets"] == [{"key": "mnist38", "title": "Handwritten digits 3 and 8",
                                     "task": "tell handwritten 3s from 8s", "class_names": ["3", "8"]}]
    by_type = {}
    for pair in manifest["pairs"]:
        by_type.setdefault(pair["question_type"], []).append(pair)
        assert pair["true_class"] == pair["predicted_class"]  # correctly classified by default
    assert {k: len(v) for k, v in by_type.items()} == {"bla_t_vs_cam": 4, "bla_t_vs_l2x_f": 4, "bla_t_vs_random": 4}
    methods = {k: [s["method"] for s in v[0]["stimuli"]] for k, v in by_type.items()}
    assert methods == {"bla_t_vs_cam": ["bla_t", "cam"], "bla_t_vs_l2x_f": ["bla_t", "l2x_f"],
                       "bla_t_vs_random": ["bla_t", "random"]}
    cam_pair = by_type["bla_t_vs_cam"][0]
    row = fixture_files.image_ids.index(cam_pair["image_id"])
    assert cam_pair["stimuli"][0]["explanation_size"] == int(fixture_files.maps["bla_t"][row].sum())
    assert "explanation_size" not in cam_pair["stimuli"][1] and cam_pair["random_source_image_id"] is None
    digest = hashlib.sha256(fixture_files.files["cam"].read_bytes()).hexdigest()
    assert manifest["provenance"]["explanations"][str(fixture_files.files["cam"])] == digest
    out = capsys.readouterr().out
    assert "wrote 12 pairs (24 stimuli)" in out and str(bundle) in out


def _changed_share(plain: np.ndarray, stimulus: np.ndarray) -> float:
    return float((plain != stimulus).any(axis=-1).mean())


def test_default_style_draws_both_sides_over_the_whole_image(fixture_files, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    assert _build(fixture_files, bundle) == 0
    manifest = _manifest(bundle)
    assert manifest["render"] == {"style": "overlay", "size": 56, "upscale": "bilinear",
                                  "image_resample": "bilinear", "colormap": "turbo", "alpha": 0.5}
    assert len({pair["render_id"] for pair in manifest["pairs"]}) == 1
    for pair in manifest["pairs"]:
        plain = _pixels(bundle, pair["image_file"])
        shares = [_changed_share(plain, _pixels(bundle, s["file"])) for s in pair["stimuli"]]
        assert min(shares) > 0.99, (pair["question_type"], shares)  # hard masks too: unselected pixels tinted


def test_cells_style_leaves_unselected_cells_untouched(fixture_files, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    _build(fixture_files, bundle, "--style", "cells", "--image-resample", "nearest")
    assert _manifest(bundle)["render"]["style"] == "cells" and _manifest(bundle)["render"]["upscale"] == "nearest"
    for pair in _manifest(bundle)["pairs"]:
        plain = _pixels(bundle, pair["image_file"])
        row = fixture_files.image_ids.index(pair["image_id"])
        expected = np.repeat(np.repeat(fixture_files.pixels[pair["image_id"]], 2, 0), 2, 1)  # 28 → 56
        assert (plain == expected[..., None]).all()
        first, second = (_pixels(bundle, s["file"]) for s in pair["stimuli"])
        assert not np.array_equal(first, second)
        mask = np.repeat(np.repeat(fixture_files.maps["bla_t"][row], 8, 0), 8, 1).astype(bool)  # 7 → 56
        assert (first[~mask] == plain[~mask]).all() and (first[mask] != plain[mask]).any()
        if pair["question_type"] == "bla_t_vs_random":
            source = fixture_files.image_ids.index(pair["random_source_image_id"])
            assert source != row
            other = np.repeat(np.repeat(fixture_files.maps["bla_t"][source], 8, 0), 8, 1).astype(bool)
            assert (second[~other] == plain[~other]).all()  # the other image's mask on this image


def test_same_seed_gives_identical_bundle_apart_from_created_at(fixture_files, tmp_path: Path) -> None:
    bundle, first = tmp_path / "bundle", tmp_path / "first"
    _build(fixture_files, bundle, workers="2")
    bundle.rename(first)
    _build(fixture_files, bundle, workers="2")
    a, b = _manifest(first), _manifest(bundle)
    a.pop("created_at"), b.pop("created_at")
    assert a == b
    names = sorted(os.listdir(bundle / "images"))
    assert names == sorted(os.listdir(first / "images"))
    assert all((bundle / "images" / n).read_bytes() == (first / "images" / n).read_bytes() for n in names)
    _build(fixture_files, tmp_path / "inline")  # rendering in this process instead changes nothing
    assert all((tmp_path / "inline/images" / n).read_bytes() == (first / "images" / n).read_bytes() for n in names)
    _build(fixture_files, tmp_path / "other-seed", "--seed", "6")
    assert sorted(os.listdir(tmp_path / "other-seed" / "images")) != names


def test_grad_cam_stands_in_for_cam_and_is_recorded(fixture_factory, tmp_path: Path) -> None:
    fixture = fixture_factory(extra={"cam": {"method": np.array("grad_cam")}})
    bundle = tmp_path / "bundle"
    assert _build(fixture, bundle, "--question-types", "bla_t_vs_cam") == 0
    assert {s["method"] for p in _manifest(bundle)["pairs"] for s in p["stimuli"]} == {"bla_t", "grad_cam"}


def test_misclassified_flag_title_and_task(fixture_files, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    assert _build(fixture_files, bundle, "--question-types", "bla_t_vs_random", "--per-type", "20",
                  "--include-misclassified", "--title", "mnist38=Digits", "--task", "mnist38=to tell 3 from 8") == 0
    manifest = _manifest(bundle)
    assert len(manifest["pairs"]) == 12
    assert any(p["true_class"] != p["predicted_class"] for p in manifest["pairs"])
    assert manifest["datasets"][0]["title"] == "Digits" and manifest["datasets"][0]["task"] == "tell 3 from 8"


def _expect_error(capsys, code: int, *fragments: str) -> None:
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "Traceback" not in err
    assert len(err.splitlines()) == 1
    for fragment in fragments:
        assert fragment in err


def test_user_mistakes_give_one_sentence_and_write_nothing(fixture_factory, tmp_path: Path, capsys) -> None:
    good, short = fixture_factory("good"), fixture_factory("short", count=10)
    out = tmp_path / "bundle"
    code = _build(good, out, files=[str(good.files["bla_t"]), str(short.files["cam"])])
    _expect_error(capsys, code, "cover different images", str(short.files["cam"]))
    code = _build(good, out, "--question-types", "bla_t_vs_l2x_f", files=[str(good.files["bla_t"])])
    _expect_error(capsys, code, "the design compares bla_t_vs_l2x_f, but no explanations file has method l2x_f")
    bad = fixture_factory("bad", extra={"cam": {"maps": np.zeros((12, 49), np.float32)}})
    _expect_error(capsys, _build(bad, out), str(bad.files["cam"]), "field 'maps'")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    _expect_error(capsys, _build(good, blocker / "bundle"), "a-file is not a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "bad", "good", "short"]


def test_unknown_style_is_one_sentence_and_writes_nothing(fixture_files, tmp_path: Path, capsys) -> None:
    code = _build(fixture_files, tmp_path / "bundle", "--style", "sparkle")
    _expect_error(capsys, code, "--style 'sparkle' is not a render style (choose overlay or cells)")
    assert [p.name for p in tmp_path.iterdir()] == ["explanations"]


def test_empty_pool_is_an_error(fixture_factory, tmp_path: Path, capsys) -> None:
    fixture = fixture_factory(extra={"bla_t": {"preds": np.array([1, 0] * 6)}})  # BLA-T always wrong
    code = _build(fixture, tmp_path / "bundle")
    _expect_error(capsys, code, "no image in dataset(s) mnist38", "no pair is possible")
    assert not (tmp_path / "bundle").exists()


def test_existing_bundle_needs_overwrite_and_failure_keeps_the_old_one(fixture_files, tmp_path: Path, capsys) -> None:
    bundle = tmp_path / "bundle"
    _build(fixture_files, bundle)
    before = _manifest(bundle)["bundle_id"]
    _expect_error(capsys, _build(fixture_files, bundle), "already exists", "--overwrite")
    (fixture_files.folder / "images/mnist38/mnist38-00004.png").unlink()
    code = _build(fixture_files, bundle, "--overwrite", "--per-type", "10")
    _expect_error(capsys, code, "mnist38-00004.png: image file for image id 'mnist38-00004' does not exist")
    assert _manifest(bundle)["bundle_id"] == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_every_subcommand_has_help() -> None:
    for command in ("build", "preview", "validate"):
        result = subprocess.run([sys.executable, "-m", "generation", command, "--help"], cwd=REPO,
                                capture_output=True, text=True, check=True)
        assert "usage: python -m generation " + command in result.stdout


def test_generation_imports_neither_torch_nor_django() -> None:
    code = ("import sys, generation.cli, generation.build, generation.preview; "
            "print(sorted(m for m in ('torch', 'django') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
