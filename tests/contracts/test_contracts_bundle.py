"""The one manifest check: names and render records as both stages read them."""
from __future__ import annotations

from contracts.bundle import file_name_problems, referenced_files
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
