"""Draw an explanation on its image: one pipeline for every side of every pair, its style named once.

Every stimulus goes normalise → upscale → colour → blend with the bundle's one `RenderSettings`;
only the explanation differs between the two sides of a pair, never the drawing.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from PIL import Image, UnidentifiedImageError

from contracts.render import RENDER_FIELDS, RENDER_STYLE_NAMES, RESAMPLE_NAMES, render_record_id
from contracts.render import render_record_problem as render_record_problem  # re-exported for the manifest check
from contracts.render import settings_problem as contract_settings_problem
from generation.errors import GenerationError

# zlib level 1 with run-length matching: as small as level 6 for 224 px stimuli, several times faster.
PNG_COMPRESSION = {"compress_level": 1, "compress_type": zlib.Z_RLE}
RESAMPLE_MODES = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR}


@dataclass(frozen=True)
class RenderStyle:
    """A named drawing: how the coloured map is weighted in the blend, and its default upscaling."""

    name: str
    upscale: str
    weight_by_value: bool  # False: weight alpha on every pixel; True: alpha × value, so zeros leave pixels untouched
    description: str


RENDER_STYLES: dict[str, RenderStyle] = {
    style.name: style
    for style in (
        RenderStyle("overlay", "bilinear", False, "colour blended over the whole image, as the paper's authors drew"),
        RenderStyle("cells", "nearest", True, "cells tinted in proportion to their value, zero cells untouched"),
    )
}
DEFAULT_STYLE = "overlay"


@dataclass(frozen=True)
class RenderSettings:
    """How every stimulus of a bundle is drawn (shared by both sides of every pair).

    `upscale` None takes the style's default; the effective value is what the manifest records.
    """

    style: str = DEFAULT_STYLE
    size: int = 224
    upscale: str | None = None
    image_resample: str = "bilinear"
    colormap: str = "turbo"
    alpha: float = 0.5

    def __post_init__(self) -> None:
        style = RENDER_STYLES.get(self.style)
        if style is not None and self.upscale is None:
            object.__setattr__(self, "upscale", style.upscale)
        problem = settings_problem(self.as_manifest(), lambda field: "--" + field.replace("_", "-"))
        if problem:
            raise GenerationError(problem)

    @property
    def render_style(self) -> RenderStyle:
        """The named style these settings draw in."""
        return RENDER_STYLES[self.style]

    def as_manifest(self) -> dict[str, object]:
        """The effective settings as recorded in the manifest's `render` field."""
        return {field: getattr(self, field) for field in RENDER_FIELDS}

    @property
    def render_id(self) -> str:
        """The digest every pair drawn with these settings carries (see `render_record_id`)."""
        return render_record_id(self.as_manifest())


def settings_problem(record: Mapping[str, object], label: Callable[[str], str]) -> str | None:
    """The shared record rules of ``contracts.render`` plus what drawing needs: a colormap matplotlib knows."""
    problem = contract_settings_problem(record, label)
    if problem is None and record["colormap"] not in colormaps:
        return f"{label('colormap')} {record.get('colormap')!r} is not a matplotlib colormap"
    return problem


def describe_render(record: object) -> str:
    """One line saying how a bundle was drawn, for the contact sheet."""
    if not isinstance(record, dict) or record.get("style") not in RENDER_STYLES:
        return "style not recorded (bundle built before render styles)"
    style = RENDER_STYLES[record["style"]]
    return f"style {style.name} ({record['upscale']}, {record['colormap']}, alpha {record['alpha']:g}): {style.description}"


@functools.lru_cache(maxsize=None)
def colormap_lut(name: str) -> np.ndarray:
    """The colormap as a 256×3 float32 table of 0–255 RGB values (`name` checked by `settings_problem`)."""
    return (colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3] * 255.0).astype(np.float32)


def load_display_image(path: Path, size: int, resample: str) -> np.ndarray:
    """The image at `path` as size×size RGB uint8 (grayscale MNIST digits become RGB)."""
    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
    except FileNotFoundError:
        raise GenerationError(f"{path}: image file does not exist") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise GenerationError(f"{path}: image file cannot be read ({exc})") from None
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), RESAMPLE_MODES[resample])
    return np.asarray(rgb, dtype=np.uint8)


def normalised(explanation: np.ndarray, hard: bool) -> np.ndarray:
    """Map values to [0, 1] as the authors did: hard masks divided by their maximum, continuous maps
    min-max scaled; a map with nothing to show (empty mask, flat map) becomes all zeros."""
    values = np.asarray(explanation, dtype=np.float32)
    low = 0.0 if hard else float(values.min())
    high = float(values.max())
    if high <= low:
        return np.zeros_like(values)
    return (values - low) / (high - low)


def upscale_grid(values: np.ndarray, height: int, width: int, mode: str) -> np.ndarray:
    """Upscale an h×w(×c) grid to height×width: `nearest` keeps cells visible, `bilinear` interpolates
    between cell centres with the edge cells repeated outward (as cv2.resize's INTER_LINEAR)."""
    if mode == "nearest":
        rows = np.arange(height) * values.shape[0] // height
        cols = np.arange(width) * values.shape[1] // width
        return values.take(rows, axis=0).take(cols, axis=1)
    grid = Image.fromarray(np.ascontiguousarray(values, dtype=np.float32))
    return np.asarray(grid.resize((width, height), RESAMPLE_MODES[mode]), dtype=np.float32).clip(0.0, 1.0)


def render_overlay(image: np.ndarray, explanation: np.ndarray, hard: bool, settings: RenderSettings) -> np.ndarray:
    """Draw an explanation on an RGB uint8 image: normalise, upscale, colour with the colormap, blend.

    Hard and continuous maps differ only in their normalisation; colour and blend are the same for
    both, so the two sides of a pair are drawn alike.
    """
    height, width = image.shape[:2]
    values = upscale_grid(normalised(explanation, hard), height, width, settings.upscale)
    levels = (values * 255.0 + 0.5).astype(np.uint8)  # the colormap's 256 entries, as cv2.applyColorMap indexes
    colour_term, keep = blend_tables(settings.colormap, settings.alpha, settings.render_style.weight_by_value)
    blended = image * keep.take(levels, axis=0)
    blended += colour_term.take(levels, axis=0)
    np.rint(blended, out=blended)
    return blended.astype(np.uint8)  # a convex blend of 0–255 values needs no clipping


@functools.lru_cache(maxsize=None)
def blend_tables(colormap: str, alpha: float, weight_by_value: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per colormap level k: the colour's share of a pixel (256×3) and the image's weight (256×1).

    A pixel at level k becomes image × keep[k] + colour_term[k], with the colour's weight alpha
    everywhere, or alpha × k/255 when weighted by value.
    """
    weight = np.full(256, alpha, dtype=np.float32)
    if weight_by_value:
        weight *= np.arange(256, dtype=np.float32) / 255.0
    colour_term = colormap_lut(colormap) * weight[:, None]
    return colour_term, (1.0 - weight)[:, None]


def write_png(pixels: np.ndarray, path: Path) -> None:
    """Write RGB pixels as a PNG with no text, EXIF or other metadata chunks."""
    Image.fromarray(pixels).save(path, format="PNG", **PNG_COMPRESSION)
