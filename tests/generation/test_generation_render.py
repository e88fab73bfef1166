"""Pixel-level checks of render_overlay against hand-computed values, for every render style."""

import re
from pathlib import Path

import numpy as np
import pytest
from matplotlib import colormaps
from PIL import Image

from generation.errors import GenerationError
from generation.render import (
    RenderSettings,
    describe_render,
    load_display_image,
    render_overlay,
    render_record_problem,
    upscale_grid,
    write_png,
)
from generation.validate import png_chunks

TURBO = np.array(colormaps["turbo"](np.linspace(0, 1, 256))[:, :3]) * 255
TURBO_TOP, TURBO_BOTTOM = TURBO[-1], TURBO[0]
CELLS = RenderSettings(style="cells", size=16)


def _grey(value: int, size: int = 8) -> np.ndarray:
    return np.full((size, size, 3), value, dtype=np.uint8)


def _blend(image_value: float, colour: np.ndarray, weight: float = 0.5) -> np.ndarray:
    return np.rint((1 - weight) * image_value + weight * colour).astype(np.uint8)


def _changed_share(before: np.ndarray, after: np.ndarray) -> float:
    return float((before != after).any(axis=-1).mean())


def test_default_is_the_authors_drawing() -> None:
    settings = RenderSettings()
    assert settings.as_manifest() == {"style": "overlay", "size": 224, "upscale": "bilinear",
                                      "image_resample": "bilinear", "colormap": "turbo", "alpha": 0.5}


def test_default_hard_mask_tints_every_pixel_with_soft_edges() -> None:
    mask = np.array([[0, 1], [0, 0]], dtype=np.float32)  # top-right cell selected
    out = render_overlay(_grey(100, 16), mask, hard=True, settings=RenderSettings(size=16))
    # 2 → 16 pixels: pixel x samples the grid at (x + 0.5) / 8 − 0.5, clamped at the edges (cv2's INTER_LINEAR)
    assert (out[:4, 12:] == _blend(100, TURBO_TOP)).all()  # the selected cell's centre: turbo's dark red
    assert (out[:4, :4] == _blend(100, TURBO_BOTTOM)).all()  # unselected pixels changed too: turbo's low end
    assert (out[12:] == _blend(100, TURBO_BOTTOM)).all()
    assert (out[0, 7] == _blend(100, TURBO[112])).all()  # 7.5 / 8 − 0.5 = 0.4375 → level 111.56 → 112


def test_bilinear_upscaling_matches_cv2_linear_interpolation() -> None:
    grid = np.random.default_rng(3).random((3, 5)).astype(np.float32)
    height, width = 12, 20

    def source(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        position = ((np.arange(n_out) + 0.5) * n_in / n_out - 0.5).clip(0, n_in - 1)
        low = np.floor(position).astype(int)
        return low, np.minimum(low + 1, n_in - 1), position - low

    (y0, y1, fy), (x0, x1, fx) = source(height, 3), source(width, 5)
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x1] * fx
    bottom = grid[y1][:, x0] * (1 - fx) + grid[y1][:, x1] * fx
    expected = top * (1 - fy[:, None]) + bottom * fy[:, None]
    assert np.allclose(upscale_grid(grid, height, width, "bilinear"), expected, atol=1e-5)


def test_hard_masks_are_divided_by_their_maximum() -> None:
    mask = np.zeros((4, 4), dtype=np.float32)
    mask[1, 2] = 1
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    settings = RenderSettings(size=32)
    assert np.array_equal(render_overlay(image, 3 * mask, True, settings), render_overlay(image, mask, True, settings))
    empty = render_overlay(image, np.zeros((4, 4), np.float32), True, settings)
    assert np.array_equal(empty, np.rint(0.5 * image + 0.5 * TURBO_BOTTOM).astype(np.uint8))


def test_continuous_map_is_min_max_normalised_and_blended_everywhere() -> None:
    cam = np.array([[-3.0, 5.0], [1.0, 1.0]], dtype=np.float32)  # min -3 → 0, max 5 → 1, 1 → 0.5
    for settings in (RenderSettings(size=16, upscale="nearest"), RenderSettings(size=16)):
        out = render_overlay(_grey(200, 16), cam, hard=False, settings=settings)
        assert (out[:4, :4] == _blend(200, TURBO_BOTTOM)).all()
        assert (out[:4, 12:] == _blend(200, TURBO_TOP)).all()
        assert (out[12:, :4] == _blend(200, TURBO[128])).all()  # 0.5 → level 127.5 → 128


def test_flat_continuous_map_renders_as_the_lowest_colour() -> None:
    out = render_overlay(_grey(0), np.full((3, 3), 7.0, np.float32), hard=False, settings=RenderSettings(size=16))
    assert (out == _blend(0, TURBO_BOTTOM)).all()


def test_both_sides_change_the_same_share_of_pixels_in_the_default_style() -> None:
    digit = np.zeros((224, 224, 3), dtype=np.uint8)
    digit[40:180, 90:130] = 255  # a white stroke on black, as MNIST digits are shown
    mask = np.zeros((7, 7), dtype=np.float32)
    mask[2, 3] = mask[3, 3] = mask[4, 3] = 1  # a BLA-T-sized explanation: 3 of 49 cells
    cam = np.random.default_rng(1).normal(size=(7, 7)).astype(np.float32)
    hard = render_overlay(digit, mask, True, RenderSettings())
    continuous = render_overlay(digit, cam, False, RenderSettings())
    assert _changed_share(digit, hard) == _changed_share(digit, continuous) == 1.0
    cells_hard = render_overlay(digit, mask, True, RenderSettings(style="cells"))
    assert _changed_share(digit, cells_hard) == pytest.approx(3 / 49)  # the cells look: only the selected cells


def test_cells_style_colours_exactly_the_selected_cell() -> None:
    mask = np.array([[0, 1], [0, 0]], dtype=np.float32)  # top-right cell selected
    out = render_overlay(_grey(100), mask, hard=True, settings=CELLS)
    assert (out[:4, 4:] == _blend(100, TURBO_TOP)).all()  # the selected 4×4 cell, blended 50/50 with turbo's top colour
    untouched = np.ones((8, 8), dtype=bool)
    untouched[:4, 4:] = False
    assert (out[untouched] == 100).all()  # every other pixel exactly as in the image


def test_cells_style_weights_a_continuous_map_by_its_value() -> None:
    cam = np.array([[-3.0, 5.0], [1.0, 1.0]], dtype=np.float32)
    out = render_overlay(_grey(200), cam, hard=False, settings=CELLS)
    assert (out[0, 0] == 200).all()  # the minimum leaves the image untouched, as an unselected cell
    assert (out[0, 7] == _blend(200, TURBO_TOP)).all()
    assert (out[7, 0] == _blend(200, TURBO[128], 0.5 * 128 / 255)).all()


def test_cells_style_with_bilinear_upscaling_smooths_edges_but_keeps_far_pixels_untouched() -> None:
    mask = np.zeros((4, 4), dtype=np.float32)
    mask[0, 0] = 1
    image = _grey(50, 64)
    nearest = render_overlay(image, mask, True, RenderSettings(style="cells", size=64))
    bilinear = render_overlay(image, mask, True, RenderSettings(style="cells", size=64, upscale="bilinear"))
    assert (bilinear[40:, 40:] == 50).all()
    edge = bilinear[:, 16:24, 0]  # just right of the selected cell: part-blended in bilinear only
    assert (nearest[:, 16:24, 0] == 50).all() and (edge[:8] != 50).any()


def test_alpha_sets_the_blend_weight() -> None:
    mask = np.ones((2, 2), dtype=np.float32)
    for style in ("overlay", "cells"):
        out = render_overlay(_grey(0), mask, hard=True, settings=RenderSettings(style=style, size=16, alpha=0.25))
        assert (out == _blend(0, TURBO_TOP, 0.25)).all()


def test_colormap_option_changes_the_colour() -> None:
    mask = np.ones((1, 1), dtype=np.float32)
    out = render_overlay(_grey(0), mask, True, RenderSettings(size=16, colormap="viridis", alpha=1.0))
    assert (out == np.rint(np.array(colormaps["viridis"](1.0)[:3]) * 255)).all()


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [({"alpha": 0.0}, "--alpha 0.0 is not a number in (0, 1]"), ({"size": 4}, "--size 4"),
     ({"colormap": "nope"}, "--colormap 'nope' is not a matplotlib colormap"),
     ({"upscale": "cubic"}, "--upscale 'cubic'"),
     ({"style": "sparkle"}, "--style 'sparkle' is not a render style (choose overlay or cells)")],
)
def test_bad_render_settings_name_the_option(kwargs: dict, fragment: str) -> None:
    with pytest.raises(GenerationError, match="^" + re.escape(fragment)):
        RenderSettings(**kwargs)


def test_style_sets_the_upscaling_unless_given() -> None:
    assert RenderSettings(style="cells").upscale == "nearest"
    assert RenderSettings(style="overlay").upscale == "bilinear"
    assert RenderSettings(style="cells", upscale="bilinear").as_manifest()["upscale"] == "bilinear"


@pytest.mark.parametrize(
    ("record", "problem"),
    [("fast", "manifest.json: render must be an object of drawing settings"),
     ({**RenderSettings().as_manifest(), "style": "sparkle"},
      "manifest.json: render.style 'sparkle' is not a render style (choose overlay or cells)"),
     ({**RenderSettings().as_manifest(), "alpha": "half"}, "manifest.json: render.alpha 'half' is not a number in (0, 1]"),
     ({**RenderSettings().as_manifest(), "blur": 2}, "manifest.json: render has unknown field 'blur'; it records "
                                                     "style, size, upscale, image_resample, colormap, alpha"),
     ({"style": "overlay", "size": 224}, "manifest.json: render has no field 'upscale'; it records "
                                         "style, size, upscale, image_resample, colormap, alpha")],
)
def test_malformed_render_records_are_one_sentence(record: object, problem: str) -> None:
    assert render_record_problem(record) == problem


def test_render_record_from_before_styles_is_accepted_and_described() -> None:
    legacy = {"size": 224, "upscale": "nearest", "image_resample": "bilinear", "colormap": "turbo", "alpha": 0.5}
    assert render_record_problem(legacy) is None
    assert describe_render(legacy) == describe_render(None) == "style not recorded (bundle built before render styles)"
    assert describe_render(RenderSettings(style="cells").as_manifest()) == (
        "style cells (nearest, turbo, alpha 0.5): cells tinted in proportion to their value, zero cells untouched")


def test_grayscale_digit_becomes_rgb_at_display_size(tmp_path: Path) -> None:
    digit = np.zeros((28, 28), dtype=np.uint8)
    digit[10:18, 12:16] = 255
    Image.fromarray(digit).save(tmp_path / "d.png")
    shown = load_display_image(tmp_path / "d.png", 224, "nearest")
    assert shown.shape == (224, 224, 3)
    assert (shown[80:144, 96:128] == 255).all() and (shown[:80] == 0).all()


def test_written_png_has_only_pixel_chunks(tmp_path: Path) -> None:
    write_png(_grey(9), tmp_path / "x.png")
    assert [kind for kind, _ in png_chunks(tmp_path / "x.png")] == [b"IHDR", b"IDAT", b"IEND"]
    with Image.open(tmp_path / "x.png") as image:
        assert image.info == {}
        assert image.getexif() == {}
