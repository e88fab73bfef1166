"""`python -m generation import-maps`: an explanations file from maps another tool made (docs/formats.md).

Inputs: a folder of images, one map per image (``.npy`` or grayscale PNG beside the image's relative
path, or one stacked ``(N, h, w)`` ``.npy`` in the CSV's row order) and a labels CSV with the columns
:data:`CSV_COLUMNS`. Every problem is one :class:`GenerationError` sentence; the output is written
atomically and read back with :func:`generation.explanations.load_explanations` before it appears.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from contracts import explanations as fields
from contracts.vocabulary import validate_method_key
from generation.atomic import atomic_file
from generation.errors import GenerationError
from generation.explanations import load_explanations

CSV_COLUMNS = ("image", "true_class", "predicted_class")
MAP_SUFFIXES = (".npy", ".png")
# PNG modes a grayscale map may have, and the value its brightest pixel stands for (the map is scaled to [0, 1]).
GRAYSCALE_MODES = {"1": 1.0, "L": 255.0, "I;16": 65535.0, "I;16B": 65535.0, "I": 65535.0, "F": 1.0}


@dataclass(frozen=True)
class LabelRow:
    """One CSV row: the image's path relative to the images folder and its two class names."""

    line: int
    image: str
    true_class: str
    predicted_class: str


@dataclass(frozen=True)
class ImportRequest:
    """What `import-maps` was asked to do."""

    images: Path
    maps: Path
    labels: Path
    method: str
    dataset: str
    out: Path
    classes: tuple[str, ...] | None = None
    title: str | None = None
    task: str | None = None
    overwrite: bool = False


def read_labels(path: Path) -> list[LabelRow]:
    """The rows of a labels CSV with exactly the columns :data:`CSV_COLUMNS` (any order)."""
    if not path.is_file():
        raise GenerationError(f"{path}: labels CSV does not exist")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise GenerationError(f"{path}: labels CSV is empty; expected the header {','.join(CSV_COLUMNS)}")
            header = [h.strip() for h in header]
            if sorted(header) != sorted(CSV_COLUMNS):
                raise GenerationError(f"{path}: labels CSV header is {','.join(header)!r}; "
                                      f"expected exactly the columns {','.join(CSV_COLUMNS)}")
            rows = []
            for values in reader:
                if not any(v.strip() for v in values):
                    continue
                line = reader.line_num
                if len(values) != len(header):
                    raise GenerationError(f"{path}: line {line} has {len(values)} cells, expected {len(header)}")
                cells = {h: v.strip() for h, v in zip(header, values)}
                empty = [c for c in CSV_COLUMNS if not cells[c]]
                if empty:
                    raise GenerationError(f"{path}: line {line} has an empty {empty[0]!r} cell")
                rows.append(LabelRow(line, cells["image"], cells["true_class"], cells["predicted_class"]))
    except UnicodeDecodeError:
        raise GenerationError(f"{path}: labels CSV is not UTF-8 text") from None
    except csv.Error as exc:
        raise GenerationError(f"{path}: labels CSV is malformed ({exc})") from None
    if not rows:
        raise GenerationError(f"{path}: labels CSV has a header but no rows")
    seen: dict[str, int] = {}
    for row in rows:
        if row.image in seen:
            raise GenerationError(f"{path}: image {row.image!r} is listed twice (lines {seen[row.image]} and {row.line})")
        seen[row.image] = row.line
    return rows


def class_indices(rows: list[LabelRow], classes: tuple[str, ...] | None, labels: Path) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """Class names and the true / predicted class index of every row.

    ``classes`` defaults to the distinct true classes, sorted; a class outside it is an error.
    """
    names = tuple(classes) if classes else tuple(sorted({r.true_class for r in rows}))
    if len(names) < 2 or len(set(names)) != len(names):
        raise GenerationError(f"{labels}: needs at least two distinct classes, got {', '.join(names) or 'none'}"
                              + ("" if classes else " among the true classes (or pass --classes)"))
    index = {name: i for i, name in enumerate(names)}
    for row in rows:
        for column in ("true_class", "predicted_class"):
            value = getattr(row, column)
            if value not in index:
                raise GenerationError(f"{labels}: line {row.line}: {column} {value!r} is not a known class "
                                      f"({', '.join(names)})")
    return (names, np.array([index[r.true_class] for r in rows], dtype=np.int64),
            np.array([index[r.predicted_class] for r in rows], dtype=np.int64))


def image_files(rows: list[LabelRow], folder: Path, labels: Path) -> list[Path]:
    """The image file of every row, each checked to exist inside ``folder`` and to open as an image."""
    if not folder.is_dir():
        raise GenerationError(f"{folder}: images folder does not exist")
    root = folder.resolve()
    paths = []
    for row in rows:
        path = (root / row.image).resolve()
        if not path.is_relative_to(root):
            raise GenerationError(f"{labels}: line {row.line}: image {row.image!r} lies outside {folder}")
        if not path.is_file():
            raise GenerationError(f"{labels}: line {row.line}: image {row.image!r} does not exist in {folder}")
        try:
            with Image.open(path) as image:
                image.verify()
        except (UnidentifiedImageError, OSError, SyntaxError):
            raise GenerationError(f"{path}: image listed in {labels.name} is not a readable image") from None
        paths.append(path)
    return paths


def read_map(path: Path) -> np.ndarray:
    """One 2-D map from a ``.npy`` array or a grayscale PNG (scaled to [0, 1] by its bit depth)."""
    if path.suffix.lower() == ".npy":
        try:
            value = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise GenerationError(f"{path}: not a readable .npy array ({exc})") from None
    else:
        try:
            with Image.open(path) as image:
                if image.mode not in GRAYSCALE_MODES:
                    raise GenerationError(f"{path}: map image is {image.mode}, not grayscale (L, I;16, I or F)")
                value = np.asarray(image, dtype=np.float64) / GRAYSCALE_MODES[image.mode]
        except (UnidentifiedImageError, OSError):
            raise GenerationError(f"{path}: not a readable PNG map") from None
    return checked_map(value, str(path))


def checked_map(value: np.ndarray, where: str) -> np.ndarray:
    """``value`` as float32 if it is a non-empty 2-D array of finite numbers."""
    if value.ndim != 2:
        raise GenerationError(f"{where}: a map must be 2-D (h, w), got shape {value.shape}")
    if value.dtype.kind not in "fiub" or min(value.shape) < 1:
        raise GenerationError(f"{where}: a map must be a non-empty array of numbers, got {value.dtype} {value.shape}")
    result = value.astype(np.float32)
    if not np.isfinite(result).all():
        raise GenerationError(f"{where}: map holds NaN or infinite values")
    return result


def folder_maps(rows: list[LabelRow], folder: Path) -> list[np.ndarray]:
    """One map per row from ``folder``: the image's relative path with suffix ``.npy`` or ``.png``."""
    expected = {}
    for row in rows:
        stem = Path(row.image).with_suffix("")
        expected[stem.as_posix()] = row
    found: dict[str, Path] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in MAP_SUFFIXES):
        key = path.relative_to(folder).with_suffix("").as_posix()
        if key not in expected:
            raise GenerationError(f"{path}: map for an unknown image (no row of the labels CSV names {key}.*)")
        if key in found:
            raise GenerationError(f"{path}: image {expected[key].image!r} has two maps ({found[key].name} and {path.name})")
        found[key] = path
    maps = []
    for key, row in expected.items():
        if key not in found:
            raise GenerationError(f"{folder}: no map for image {row.image!r} (expected {key}.npy or {key}.png)")
        maps.append(read_map(found[key]))
    return maps


def stacked_maps(rows: list[LabelRow], path: Path) -> list[np.ndarray]:
    """The rows of one ``(N, h, w)`` ``.npy``, in the labels CSV's row order."""
    try:
        value = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise GenerationError(f"{path}: not a readable .npy array ({exc})") from None
    if value.ndim != 3:
        raise GenerationError(f"{path}: stacked maps must be 3-D (N, h, w), got shape {value.shape}")
    if value.shape[0] != len(rows):
        raise GenerationError(f"{path}: holds {value.shape[0]} maps for the {len(rows)} images of the labels CSV")
    return [checked_map(value[i], f"{path}: map {i} (image {row.image!r})") for i, row in enumerate(rows)]


def load_maps(rows: list[LabelRow], source: Path) -> np.ndarray:
    """All maps (N, h, w), from a folder or a stacked ``.npy``; every map must have the same shape."""
    if source.is_dir():
        maps = folder_maps(rows, source)
    elif source.is_file() and source.suffix.lower() == ".npy":
        maps = stacked_maps(rows, source)
    else:
        raise GenerationError(f"{source}: --maps must be a folder of maps or one stacked .npy file")
    shapes = {m.shape for m in maps}
    if len(shapes) > 1:
        first = maps[0].shape
        odd = next(i for i, m in enumerate(maps) if m.shape != first)
        raise GenerationError(f"{source}: map of image {rows[odd].image!r} is {maps[odd].shape[0]}×{maps[odd].shape[1]}, "
                              f"the first is {first[0]}×{first[1]}; every map needs the same grid")
    return np.stack(maps)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def import_maps(request: ImportRequest) -> Path:
    """Check every input and write the explanations file ``request.out`` (nothing on error)."""
    try:
        method = validate_method_key(request.method)
    except ValueError as exc:
        raise GenerationError(f"--method: {exc}") from None
    if request.out.suffix != ".npz":
        raise GenerationError(f"{request.out}: the explanations file must end in .npz")
    rows = read_labels(request.labels)
    class_names, labels, preds = class_indices(rows, request.classes, request.labels)
    paths = image_files(rows, request.images, request.labels)
    maps = load_maps(rows, request.maps)
    arrays = {
        fields.IMAGE_IDS: np.array([Path(r.image).with_suffix("").as_posix() for r in rows], dtype=str),
        fields.IMAGE_PATHS: np.array([str(p) for p in paths], dtype=str),
        fields.LABELS: labels,
        fields.PREDS: preds,
        fields.MAPS: maps,
        fields.METHOD: np.array(method),
        fields.CLASS_NAMES: np.array(class_names, dtype=str),
        fields.DATASET: np.array(request.dataset),
        fields.MAP_KIND: np.array(fields.HARD if np.isin(maps, (0.0, 1.0)).all() else fields.CONTINUOUS),
        fields.PROVENANCE: np.array(json.dumps({
            "imported_by": "python -m generation import-maps",
            "images": str(request.images.resolve()), "maps": str(request.maps.resolve()),
            "labels": str(request.labels.resolve()), "labels_sha256": _sha256(request.labels),
            "maps_sha256": hashlib.sha256(maps.tobytes()).hexdigest(),
            "map_resolution": list(maps.shape[1:]),
        }, sort_keys=True)),
    }
    for field, text in ((fields.DATASET_TITLE, request.title), (fields.DATASET_TASK, request.task)):
        if text:
            arrays[field] = np.array(text)
    try:
        request.out.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass  # atomic_file names the problem
    with atomic_file(request.out, overwrite=request.overwrite) as temporary:
        with temporary.open("wb") as handle:
            np.savez_compressed(handle, **arrays)
        load_explanations(temporary)  # the very checks `generation build` runs
    return request.out


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register the `import-maps` subcommand."""
    parser = commands.add_parser(
        "import-maps", help="make an explanations file from maps another tool wrote",
        description="Read one map per image (.npy or grayscale PNG named like the image, or one stacked "
                    "(N, h, w) .npy in the CSV's row order) and a labels CSV (image,true_class,predicted_class) "
                    "and write an explanations file for `generation build`. Formats: docs/formats.md.")
    parser.add_argument("--images", type=Path, required=True, metavar="DIR", help="folder the CSV's image paths are relative to")
    parser.add_argument("--maps", type=Path, required=True, metavar="DIR|FILE.npy", help="folder of maps, or one stacked .npy")
    parser.add_argument("--labels", type=Path, required=True, metavar="LABELS.csv",
                        help="CSV with the columns " + ",".join(CSV_COLUMNS))
    parser.add_argument("--method", required=True, help="method key of the maps ([a-z][a-z0-9_]*, no _vs_)")
    parser.add_argument("--dataset", required=True, metavar="KEY", help="dataset key, e.g. catsdogs")
    parser.add_argument("--out", type=Path, required=True, metavar="FILE.npz", help="explanations file to write")
    parser.add_argument("--classes", default=None, metavar="A,B,…",
                        help="class names in index order (default: the CSV's true classes, sorted)")
    parser.add_argument("--title", default=None, help="dataset title shown to participants")
    parser.add_argument("--task", default=None, help='what the model was trained to do ("trained to TASK")')
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")


def run(args: argparse.Namespace) -> int:
    """Run `import-maps` from parsed arguments and print what was written."""
    classes = tuple(c.strip() for c in args.classes.split(",")) if args.classes else None
    request = ImportRequest(images=args.images, maps=args.maps, labels=args.labels, method=args.method,
                            dataset=args.dataset, out=args.out, classes=classes, title=args.title,
                            task=args.task, overwrite=args.overwrite)
    out = import_maps(request)
    loaded = load_explanations(out)
    print(f"wrote {len(loaded.image_ids)} {loaded.map_kind} maps of {loaded.maps.shape[1]}×{loaded.maps.shape[2]} "
          f"({loaded.method}, {loaded.dataset}) to {out}")
    return 0
