"""Synthetic image folders whose evidence box is known, for measuring where explanations point.

Every folder is an ``imagefolder`` dataset (one sub-folder per class) plus ``boxes.json`` beside the
class folders: image id (path below the root, as the dataset names it) → the evidence object's box
``[x0, y0, x1, y1]`` in pixels of the written image. The class is decidable **only** from the
evidence object: the background, the clutter and the distractor are drawn from the same
distributions in both classes, and the object's colour and size too; the classes differ in the
object's shape alone (a filled disc or a plus-shaped cross).

Kinds (:data:`KINDS`):

* ``clutter`` — the object near the centre (jittered by up to a sixth of the side) on dense clutter
  of small random triangles and lines;
* ``positions`` — the object anywhere in the image, on a plain noisy background;
* ``distractor`` — the evidence object and a distractor object (a filled square of the same colours
  and size, present in both classes) at random non-overlapping places on light clutter; the box is
  the evidence object's.

The cell rule of the benchmark lives here too (:func:`cells_inside`): a cell of an h×w map counts as
inside the box when at least half of its area lies in the box.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from .errors import BLAError
from .files import write_json

KINDS = ("clutter", "positions", "distractor")
CLASS_SHAPES = ("disc", "cross", "ring", "diamond")  # the class folders, in label order
DEFAULT_CLASSES = 2  # a folder's classes: the first this many of CLASS_SHAPES
BOXES_FILE = "boxes.json"
OBJECT_SIDE = (64, 88)  # the evidence object's side in pixels at size 224, drawn uniformly
CLUTTER_ITEMS = {"clutter": 60, "positions": 0, "distractor": 25}


@dataclass(frozen=True)
class EvidenceFolder:
    """A written folder: ``root`` (the imagefolder), its ``kind`` and ``boxes`` (image id → box)."""

    root: Path
    kind: str
    boxes: dict[str, tuple[float, float, float, float]]
    size: int

    @property
    def spec(self) -> str:
        """The dataset spec that trains on this folder."""
        return f"imagefolder:{self.root}"


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(30, 226, size=3))


def _background(rng: np.random.Generator, size: int) -> Image.Image:
    """A noisy grey-brown background, the same distribution for every class."""
    base = rng.integers(90, 166, size=3)
    noise = rng.normal(0.0, 18.0, size=(size, size, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")


def _clutter(draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: int, items: int) -> None:
    """Small triangles and thick lines (neither a disc nor a cross), random colours and places."""
    scale = size / 224
    for _ in range(items):
        x, y = rng.uniform(0, size, size=2)
        extent = rng.uniform(8, 22) * scale
        if rng.random() < 0.5:
            points = [(x + extent * np.cos(a), y + extent * np.sin(a)) for a in rng.uniform(0, 2 * np.pi) + np.array([0, 2.1, 4.2])]
            draw.polygon(points, fill=_colour(rng))
        else:
            angle = rng.uniform(0, np.pi)
            end = (x + 2 * extent * np.cos(angle), y + 2 * extent * np.sin(angle))
            draw.line([(x, y), end], fill=_colour(rng), width=max(1, round(3 * scale)))


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, box: tuple[float, float, float, float],
                colour: tuple[int, int, int]) -> None:
    x0, y0, x1, y1 = box
    if shape == "disc":
        draw.ellipse(box, fill=colour, outline=(0, 0, 0), width=2)
    elif shape == "cross":
        third_w, third_h = (x1 - x0) / 3, (y1 - y0) / 3
        draw.rectangle((x0 + third_w, y0, x1 - third_w, y1), fill=colour)
        draw.rectangle((x0, y0 + third_h, x1, y1 - third_h), fill=colour)
    elif shape == "ring":
        draw.ellipse(box, outline=colour, width=max(3, round((x1 - x0) / 6)))
    elif shape == "diamond":
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        draw.polygon([(cx, y0), (x1, cy), (cx, y1), (x0, cy)], fill=colour, outline=(0, 0, 0))
    elif shape == "square":
        inset = (x1 - x0) * 0.12
        draw.rectangle((x0 + inset, y0 + inset, x1 - inset, y1 - inset), fill=colour, outline=(0, 0, 0), width=2)
    else:
        raise BLAError(f"unknown shape {shape!r}")


def _place(rng: np.random.Generator, size: int, side: float, kind: str) -> tuple[float, float]:
    """Top-left corner of an object of ``side`` pixels for a folder of ``kind``."""
    if kind == "clutter":
        jitter = size / 6
        return tuple(float(v) for v in (size - side) / 2 + rng.uniform(-jitter, jitter, size=2))
    return tuple(float(v) for v in rng.uniform(0, size - side, size=2))


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def evidence_image(kind: str, shape: str, rng: np.random.Generator,
                   size: int = 224) -> tuple[Image.Image, tuple[float, float, float, float]]:
    """One image of ``kind`` with the evidence object ``shape``; returns it and the object's box."""
    if kind not in KINDS:
        raise BLAError(f"unknown evidence folder kind {kind!r}; choose one of {', '.join(KINDS)}")
    image = _background(rng, size)
    draw = ImageDraw.Draw(image)
    _clutter(draw, rng, size, CLUTTER_ITEMS[kind])
    side = rng.uniform(*OBJECT_SIDE) * size / 224
    x, y = _place(rng, size, side, kind)
    box = (x, y, x + side, y + side)
    if kind == "distractor":
        while True:  # a distractor of the same size distribution and colours, never touching the object
            other_side = rng.uniform(*OBJECT_SIDE) * size / 224
            ox, oy = _place(rng, size, other_side, kind)
            other = (ox, oy, ox + other_side, oy + other_side)
            if not _overlap(other, (box[0] - 4, box[1] - 4, box[2] + 4, box[3] + 4)):
                break
        _draw_shape(draw, "square", other, _colour(rng))
    _draw_shape(draw, shape, box, _colour(rng))
    return image, box


def write_evidence_folder(out: Path, kind: str, per_class: int, seed: int, size: int = 224,
                          classes: int = DEFAULT_CLASSES) -> EvidenceFolder:
    """Write ``per_class`` PNG images per class of ``kind`` (the first ``classes`` shapes of
    :data:`CLASS_SHAPES`) into ``out`` and their boxes to ``out/boxes.json``; the same arguments
    always write the same pixels."""
    if kind not in KINDS:
        raise BLAError(f"unknown evidence folder kind {kind!r}; choose one of {', '.join(KINDS)}")
    if per_class < 1:
        raise BLAError(f"per_class must be at least 1, got {per_class}")
    if size < 32:
        raise BLAError(f"size must be at least 32 pixels, got {size}")
    if not 2 <= classes <= len(CLASS_SHAPES):
        raise BLAError(f"classes must be between 2 and {len(CLASS_SHAPES)}, got {classes}")
    out = Path(out)
    rng = np.random.default_rng([seed, KINDS.index(kind)])
    boxes = {}
    for index in range(per_class):
        for shape in CLASS_SHAPES[:classes]:
            image, box = evidence_image(kind, shape, rng, size)
            image_id = f"{shape}/{index:04d}.png"
            (out / shape).mkdir(parents=True, exist_ok=True)
            image.save(out / image_id)
            boxes[image_id] = box
    write_json(out / BOXES_FILE, {"kind": kind, "size": size, "boxes": boxes})
    return EvidenceFolder(out, kind, boxes, size)


def read_evidence_folder(root: Path) -> EvidenceFolder:
    """The folder written by :func:`write_evidence_folder` (clear error when it has no boxes file)."""
    root = Path(root)
    path = root / BOXES_FILE
    if not path.is_file():
        raise BLAError(f"{root} has no {BOXES_FILE}: not an evidence folder written by bla_core.synthetic")
    stored = json.loads(path.read_text())
    return EvidenceFolder(root, stored["kind"], {k: tuple(v) for k, v in stored["boxes"].items()}, stored["size"])


def cells_inside(box: tuple[float, float, float, float], image_size: tuple[int, int],
                 grid: tuple[int, int]) -> torch.Tensor:
    """Bool (h, w): the cells of an h×w grid laid over an image of ``image_size`` = (height, width)
    pixels that have at least half of their area inside ``box`` = (x0, y0, x1, y1)."""
    (height, width), (rows, cols) = image_size, grid
    x0, y0, x1, y1 = box

    def coverage(low: float, high: float, extent: int, cells: int) -> torch.Tensor:
        edges = torch.arange(cells + 1, dtype=torch.float64) * extent / cells
        return (torch.clamp(torch.minimum(edges[1:], torch.tensor(high)) - torch.maximum(edges[:-1], torch.tensor(low)),
                            min=0) / (extent / cells))

    share = coverage(y0, y1, height, rows)[:, None] * coverage(x0, x1, width, cols)[None, :]
    return share >= 0.5
