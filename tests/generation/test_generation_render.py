"""Pixel-level checks of render_overlay against hand-computed values."""

from pathlib import Path

import numpy as np
import pytest
from matplotlib import colormaps
from PIL import Image

from generation.errors import GenerationError
from generation.render import RenderSettings, load_display_image, render_overlay, write_png
from generation.validate import png_chunks

TURBO_TOP = np.array(colormaps["turbo"](1.0)[:3]) * 255
TURBO_BOTTOM = np.array(colormaps["turbo"](0.0)[:3]) * 255


def _grey(value: int, size: int = 8) -> np.ndarray:
    return np.full((size, size, 3), value, dtype=np.uint8)


def test_hard_mask_nearest_colours_exactly_the_selected_cell() -> None:
    mask = np.array([[0, 1], [0, 0]], dtype=np.float32)  # top-right cell selected
    out = render_overlay(_grey(100), mask, hard=True, settings=RenderSettings(size=16))
    expected = np.rint(0.5 * 100 + 0.5 * TURBO_TOP).astype(np.uint8)
    assert (out[:4, 4:] == expected).all()  # the selected 4×4 cell, blended 50/50 with turbo's top colour
    untouched = np.ones((8, 8), dtype=bool)
    untouched[:4, 4:] = False
    assert (out[untouched] == 100).all()  # every other pixel exactly as in the image


def test_hard_mask_alpha_sets_the_blend_weight() -> None:
    mask = np.ones((2, 2), dtype=np.float32)
    out = render_overlay(_grey(0), mask, hard=True, settings=RenderSettings(size=16, alpha=0.25))
    assert (out == np.rint(0.25 * TURBO_TOP).astype(np.uint8)).all()


def test_continuous_map_is_min_max_normalised_and_blended_everywhere() -> None:
    cam = np.array([[-3.0, 5.0], [1.0, 1.0]], dtype=np.float32)  # min -3 → 0, max 5 → 1, 1 → 0.5
    out = render_overlay(_grey(200), cam, hard=False, settings=RenderSettings(size=16))
    lut = np.array(colormaps["turbo"](np.linspace(0, 1, 256))[:, :3]) * 255
    assert (out[0, 0] == np.rint(0.5 * 200 + 0.5 * TURBO_BOTTOM)).all()
    assert (out[0, 7] == np.rint(0.5 * 200 + 0.5 * TURBO_TOP)).all()
    assert np.abs(out[7, 0].astype(float) - (100 + 0.5 * lut[128])).max() <= 1  # 0.5 → entry 128


def test_flat_continuous_map_renders_as_the_lowest_colour() -> None:
    out = render_overlay(_grey(0), np.full((3, 3), 7.0, np.float32), hard=False, settings=RenderSettings(size=16))
    assert (out == np.rint(0.5 * TURBO_BOTTOM).astype(np.uint8)).all()


def test_bilinear_smooths_cell_edges_but_keeps_far_pixels_untouched() -> None:
    mask = np.zeros((4, 4), dtype=np.float32)
    mask[0, 0] = 1
    image = _grey(50, 64)
    nearest = render_overlay(image, mask, True, RenderSettings(size=64, upscale="nearest"))
    bilinear = render_overlay(image, mask, True, RenderSettings(size=64, upscale="bilinear"))
    assert (bilinear[40:, 40:] == 50).all()
    edge = bilinear[:, 16:24, 0]  # just right of the selected cell: part-blended in bilinear only
    assert (nearest[:, 16:24, 0] == 50).all() and (edge[:8] != 50).any()


def test_colormap_option_changes_the_colour() -> None:
    mask = np.ones((1, 1), dtype=np.float32)
    out = render_overlay(_grey(0), mask, True, RenderSettings(size=16, colormap="viridis", alpha=1.0))
    assert (out[0, 0] == np.rint(np.array(colormaps["viridis"](1.0)[:3]) * 255)).all()


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [({"alpha": 0.0}, "--alpha"), ({"size": 4}, "--size"), ({"colormap": "nope"}, "--colormap 'nope'"),
     ({"upscale": "cubic"}, "--upscale")],
)
def test_bad_render_settings_name_the_option(kwargs: dict, fragment: str) -> None:
    with pytest.raises(GenerationError, match=fragment):
        RenderSettings(**kwargs)


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
