"""Draw an explanation on its image: upscale the grid, colour it with a colormap, blend it on."""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from PIL import Image, UnidentifiedImageError

from generation.errors import GenerationError

# zlib level 1 with run-length matching: as small as level 6 for 224 px stimuli, several times faster.
PNG_COMPRESSION = {"compress_level": 1, "compress_type": zlib.Z_RLE}
RESAMPLE_MODES = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR}


@dataclass(frozen=True)
class RenderSettings:
    """How every stimulus of a bundle is drawn (shared by both sides of a pair)."""

    size: int = 224
    upscale: str = "nearest"
    image_resample: str = "bilinear"
    colormap: str = "turbo"
    alpha: float = 0.5

    def __post_init__(self) -> None:
        if not 16 <= self.size <= 4096:
            raise GenerationError(f"--size {self.size} is outside 16..4096 pixels")
        for option, value in (("--upscale", self.upscale), ("--image-resample", self.image_resample)):
            if value not in RESAMPLE_MODES:
                raise GenerationError(f"{option} {value!r} is not one of {', '.join(RESAMPLE_MODES)}")
        if not 0.0 < self.alpha <= 1.0:
            raise GenerationError(f"--alpha {self.alpha} is outside (0, 1]")
        colormap_lut(self.colormap)

    def as_manifest(self) -> dict[str, object]:
        """The settings as recorded in the manifest's optional `render` field."""
        return {
            "size": self.size,
            "upscale": self.upscale,
            "image_resample": self.image_resample,
            "colormap": self.colormap,
            "alpha": self.alpha,
        }


@functools.lru_cache(maxsize=None)
def colormap_lut(name: str) -> np.ndarray:
    """The colormap as a 256×3 float32 table of 0–255 RGB values."""
    try:
        cmap = colormaps[name]
    except KeyError:
        raise GenerationError(f"--colormap {name!r} is not a matplotlib colormap") from None
    return (cmap(np.linspace(0.0, 1.0, 256))[:, :3] * 255.0).astype(np.float32)


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
    """Map values to [0, 1]: hard masks as they are, continuous maps min-max scaled (flat → 0)."""
    values = np.asarray(explanation, dtype=np.float32)
    if hard:
        return values
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros_like(values)
    return (values - low) / (high - low)


def upscale_grid(values: np.ndarray, height: int, width: int, mode: str) -> np.ndarray:
    """Upscale an h×w(×c) grid to height×width: `nearest` keeps cells visible, `bilinear` smooths."""
    if mode == "nearest":
        rows = np.arange(height) * values.shape[0] // height
        cols = np.arange(width) * values.shape[1] // width
        return values.take(rows, axis=0).take(cols, axis=1)
    grid = Image.fromarray(np.ascontiguousarray(values, dtype=np.float32))
    return np.asarray(grid.resize((width, height), RESAMPLE_MODES[mode]), dtype=np.float32).clip(0.0, 1.0)


def render_overlay(image: np.ndarray, explanation: np.ndarray, hard: bool, settings: RenderSettings) -> np.ndarray:
    """Blend an explanation on an RGB uint8 image.

    Hard masks colour only the selected cells (with the colormap's top colour, weight alpha) and
    leave every other pixel untouched; continuous maps are min-max normalised, coloured by value and
    blended with weight alpha everywhere, as the authors drew (Grad-)CAM.
    """
    height, width = image.shape[:2]
    values = normalised(explanation, hard)
    if settings.upscale == "nearest":
        # Colouring the grid before repeating its cells gives the same pixels with far fewer lookups.
        colour, weight = _colour_and_weight(values, hard, settings)
        colour, weight = upscale_grid(colour, height, width, "nearest"), upscale_grid(weight, height, width, "nearest")
    else:
        colour, weight = _colour_and_weight(upscale_grid(values, height, width, settings.upscale), hard, settings)
    blended = image * (1.0 - weight)
    blended += colour * weight
    np.rint(blended, out=blended)
    return blended.astype(np.uint8)  # a convex blend of 0–255 values needs no clipping


def _colour_and_weight(values: np.ndarray, hard: bool, settings: RenderSettings) -> tuple[np.ndarray, np.ndarray]:
    """Per-position colour (…×3) and blend weight (…×1) for values in [0, 1]."""
    lut = colormap_lut(settings.colormap)
    if hard:
        return np.broadcast_to(lut[-1], (*values.shape, 3)), (settings.alpha * values)[..., None]
    colour = lut[np.rint(values * 255.0).astype(np.intp)]
    return colour, np.full((*values.shape, 1), settings.alpha, dtype=np.float32)


def write_png(pixels: np.ndarray, path: Path) -> None:
    """Write RGB pixels as a PNG with no text, EXIF or other metadata chunks."""
    Image.fromarray(pixels).save(path, format="PNG", **PNG_COMPRESSION)
