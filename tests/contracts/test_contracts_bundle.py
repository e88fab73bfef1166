"""The one bundle check: names, render records, the manifest reader, image opening and stray files
as every stage reads them."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from contracts.bundle import (
    BundleFileError,
    file_name_problems,
    plain_image_files,
    png_size,
    read_manifest,
    referenced_files,
    stimulus_files,
    unreferenced_images,
)
from contracts.render import RENDER_STYLE_NAMES, RESAMPLE_NAMES, render_record_problem
from generation.render import RENDER_STYLES, RESAMPLE_MODES


def test_stimulus_names_are_opaque_png_tokens() -> None:
    assert file_name_problems("images/" + "0" * 32 + ".png") == []
    assert file_name_problems("images/" + "0" * 16 + ".png") == [
        "images/0000000000000000.png: file name is not images/<32 hex characters>.png"]
    assert file_name_problems("images/" + "0" * 32 + ".jpg") == [
        f"images/{'0' * 32}.jpg: file name is not images/<32 hex characters>.png"]
    assert file_name_problems("images/cam.png") == ["images/cam.png: file name reveals the method word 'cam'"]


def test_referenced_files_are_the_stimuli_then_the_plain_image() -> None:
    pair = {"stimuli": [{"file": "a"}, {"file": "b"}, {"method": "x"}], "image_file": "c"}
    assert referenced_files(pair) == ["a", "b", "c"]


def test_the_generator_draws_exactly_the_styles_and_resamplings_a_bundle_may_record() -> None:
    assert tuple(RENDER_STYLES) == RENDER_STYLE_NAMES
    assert tuple(RESAMPLE_MODES) == RESAMPLE_NAMES


def test_a_recorded_colormap_is_a_name() -> None:
    record = {"style": "overlay", "size": 224, "upscale": "bilinear", "image_resample": "bilinear",
              "colormap": "", "alpha": 0.5}
    assert render_record_problem(record) == "manifest.json: render.colormap '' is not a colormap name"


def test_stimulus_and_plain_files_of_a_pair() -> None:
    pair = {"stimuli": [{"file": "a"}, {"method": "x"}, "junk"], "image_file": "c"}
    assert (stimulus_files(pair), plain_image_files(pair)) == (["a"], ["c"])
    assert plain_image_files({"image_file": None}) == [] and stimulus_files({"stimuli": "x"}) == []


def test_the_manifest_reader_names_the_first_problem(tmp_path: Path) -> None:
    missing = f"^{tmp_path / 'none'}: bundle folder does not exist$"
    with pytest.raises(BundleFileError, match=missing):
        read_manifest(tmp_path / "none")
    with pytest.raises(BundleFileError, match="manifest.json: manifest file is missing; is "):
        read_manifest(tmp_path)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"pairs": ["x" * 100]}))
    assert read_manifest(tmp_path) == ({"pairs": ["x" * 100]}, path.read_bytes())
    size = path.stat().st_size
    too_big = rf"is {size:,} bytes; at most 64 are allowed \(LIMIT\)$"
    with pytest.raises(BundleFileError, match=too_big):
        read_manifest(tmp_path, 64, "LIMIT")
    path.write_bytes(b'{"schema_version": 1,')
    with pytest.raises(BundleFileError, match="manifest.json: not valid UTF-8 JSON"):
        read_manifest(tmp_path)


def test_png_size_accepts_only_readable_pngs_within_the_limits(tmp_path: Path) -> None:
    png, jpeg, broken = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    Image.new("RGB", (40, 30)).save(png)
    Image.new("RGB", (40, 30)).save(jpeg, "JPEG")
    broken.write_bytes(png.read_bytes()[:30])
    assert png_size(png) == png_size(png, decode=True) == (40, 30)
    with pytest.raises(BundleFileError, match="^images/b.png: the file is a JPEG image, not PNG"):
        png_size(jpeg, "images/b.png")
    with pytest.raises(BundleFileError, match=f"^{broken}: not a readable image"):
        png_size(broken, decode=True)
    with pytest.raises(BundleFileError, match=r"40x30 pixels; at most 39 a side and 1,200 pixels"):
        png_size(png, max_side=39, max_pixels=1200)
    too_many = r"at most 40 a side and 1,199 pixels are allowed \(CAPS\)$"
    with pytest.raises(BundleFileError, match=too_many):
        png_size(png, max_side=40, max_pixels=1199, limit_note="CAPS")


def test_unreferenced_images_are_the_files_the_manifest_does_not_name(tmp_path: Path) -> None:
    assert unreferenced_images(tmp_path, []) is None
    (tmp_path / "images" / "sub").mkdir(parents=True)
    for name in ("images/a.png", "images/b.png", "images/.DS_Store", "images/sub/c.png"):
        (tmp_path / name).write_bytes(b"x")
    stray = unreferenced_images(tmp_path, ["images/a.png", "images/./sub/../b.png"])
    assert stray == [tmp_path / "images" / "sub" / "c.png"]
