"""What a stimulus bundle is (schema 1, docs/formats.md): its names and the one check of it.

Every stage that opens a bundle (``generation validate`` and ``preview``, the study app's
``import_stimuli`` and upload) reads it with ``read_manifest``, checks the manifest with
``check_manifest``, opens its images with ``png_size`` and looks for stray files with
``unreferenced_images``; each stage layers only its own limits on top (the generator's PNG
metadata checks, the app's string lengths and size caps) and words its report its own way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from PIL import Image, UnidentifiedImageError

from contracts.blinding import revealing_fragment
from contracts.render import render_record_id, render_record_problem
from contracts.vocabulary import is_question_type, is_random_control, question_sides

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
IMAGES_DIR = "images"
TOKEN_PATTERN = re.compile(r"^[0-9a-f]{32}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
IMAGE_FORMAT = "PNG"


class BundleFileError(Exception):
    """A bundle's file cannot be used; the message (no final stop) names the file and why."""


def _noted(message: str, note: str) -> str:
    return f"{message} ({note})" if note else message


def read_manifest(folder: Path, max_bytes: int | None = None,
                  limit_note: str = "") -> tuple[Any, bytes]:
    """The parsed manifest.json of the bundle at ``folder`` and its bytes (for content hashes).

    A manifest larger than ``max_bytes`` is refused before it is read (``limit_note``, say the
    setting that sets the limit, is added to that message). Raises BundleFileError.
    """
    if not folder.is_dir():
        raise BundleFileError(f"{folder}: bundle folder does not exist")
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise BundleFileError(
            f"{path}: manifest file is missing; is {folder} a stimulus bundle?")
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        message = f"{path}: the manifest is {size:,} bytes; at most {max_bytes:,} are allowed"
        raise BundleFileError(_noted(message, limit_note))
    try:
        raw = path.read_bytes()
        return json.loads(raw.decode("utf-8")), raw
    except OSError as exc:
        raise BundleFileError(f"{path}: not readable ({exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleFileError(f"{path}: not valid UTF-8 JSON ({exc})") from None


def png_size(
    path: Path, label: str | None = None, *, max_side: int | None = None,
    max_pixels: int | None = None, limit_note: str = "", decode: bool = False,
) -> tuple[int, int]:
    """The (width, height) of the bundle image at ``path`` once it proved a readable PNG.

    Every chunk's checksum is verified; the pixels are decoded only with ``decode``. An image over
    ``max_side`` or ``max_pixels`` is refused from the size its header declares, before any
    decoding. Messages name the file as ``label`` (default: the path). Raises BundleFileError.
    """
    name = label or str(path)
    try:
        with Image.open(path) as image:
            _check_pixels(image.size, name, max_side, max_pixels, limit_note)
            image.verify()
        if decode:
            with Image.open(path) as image:
                image.load()
        if image.format != IMAGE_FORMAT:
            raise BundleFileError(f"{name}: the file is a {image.format} image, not PNG "
                                  "(a bundle holds PNG images only; docs/formats.md)")
        return image.size
    except Image.DecompressionBombError:
        raise BundleFileError(
            f"{name}: the image has far too many pixels to be decoded safely") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BundleFileError(f"{name}: not a readable image ({exc})") from None


def _check_pixels(size: tuple[int, int], name: str, max_side: int | None, max_pixels: int | None,
                  note: str) -> None:
    width, height = size
    side = max_side if max_side is not None else max(width, height)
    pixels = max_pixels if max_pixels is not None else width * height
    if max(width, height) > side or width * height > pixels:
        message = (f"{name}: the image is {width}x{height} pixels; at most {side} a side and "
                   f"{pixels:,} pixels are allowed")
        raise BundleFileError(_noted(message, note))


def unreferenced_images(folder: Path, referenced: Iterable[str]) -> list[Path] | None:
    """The files under the bundle's images/ folder that ``referenced`` does not name (hidden files
    such as .DS_Store aside), in order; None when the folder is missing."""
    images = folder / IMAGES_DIR
    if not images.is_dir():
        return None
    named = {(folder / name).resolve() for name in referenced}
    present = sorted(p for p in images.rglob("*") if p.is_file() and not p.name.startswith("."))
    return [p for p in present if p.resolve() not in named]


def check_manifest(manifest: Any) -> list[str]:
    """Every way `manifest` breaks schema 1, as one sentence each (empty when it conforms)."""
    if not isinstance(manifest, dict):
        return ["manifest.json: top level must be a JSON object"]
    problems: list[str] = []
    if manifest.get("schema_version") != SCHEMA_VERSION:
        problems.append(f"manifest.json: schema_version is {manifest.get('schema_version')!r}, expected 1")
    for field, kind in (("bundle_id", str), ("created_at", str), ("generator", dict), ("datasets", list),
                        ("pairs", list), ("provenance", dict)):
        if not isinstance(manifest.get(field), kind):
            problems.append(f"manifest.json: field '{field}' must be a {kind.__name__}")
    if problems:
        return problems
    problems += _check_created_at(manifest["created_at"])
    problems += _check_generator(manifest["generator"])
    problems += _check_provenance(manifest["provenance"])
    classes = _check_datasets(manifest["datasets"], problems)
    problems += _check_pairs(manifest["pairs"], classes)
    problems += _check_render(manifest.get("render"), manifest["pairs"])
    names = dict.fromkeys(name for pair in manifest["pairs"] if isinstance(pair, dict) for name in referenced_files(pair))
    problems += [problem for name in names for problem in file_name_problems(name)]
    problems += [f"manifest.json: pair_id {pair.get('pair_id')!r} reveals a method word"
                 for pair in manifest["pairs"] if isinstance(pair, dict) and revealing_fragment(str(pair.get("pair_id")))]
    return problems


def file_name_problems(name: str) -> list[str]:
    """Problems with a stimulus file name: outside images/, not an opaque token, or naming a method."""
    path = PurePosixPath(name)
    word = revealing_fragment(name)
    if word:
        return [f"{name}: file name reveals the method word {word!r}"]
    if path.parent != PurePosixPath(IMAGES_DIR) or path.suffix != ".png" or not TOKEN_PATTERN.match(path.stem):
        return [f"{name}: file name is not images/<32 hex characters>.png"]
    return []


def referenced_files(pair: dict) -> list[str]:
    """The stimulus files of a pair, then its plain image (if any)."""
    return stimulus_files(pair) + plain_image_files(pair)


def stimulus_files(pair: dict) -> list[str]:
    """The files of a pair's stimuli that name one (a malformed entry is check_manifest's to report)."""
    stimuli = pair.get("stimuli") if isinstance(pair.get("stimuli"), list) else []
    return [s["file"] for s in stimuli if isinstance(s, dict) and isinstance(s.get("file"), str)]


def plain_image_files(pair: dict) -> list[str]:
    """The pair's plain image as a list of one, or empty when the pair shows none."""
    return [pair["image_file"]] if isinstance(pair.get("image_file"), str) else []


def _check_render(record: Any, pairs: list) -> list[str]:
    """The optional `render` record is sound and every pair carries its `render_id`: one drawing per bundle.

    Bundles from before render styles have no record, or one without `style`, and no pair ids.
    """
    pairs = [pair for pair in pairs if isinstance(pair, dict)]
    if record is None:
        if any("render_id" in pair for pair in pairs):
            return ["manifest.json: pairs carry a render_id but the manifest has no render record saying how they were drawn"]
        return []
    problem = render_record_problem(record)
    if problem:
        return [problem]
    expected = render_record_id(record) if "style" in record else None
    others = [pair for pair in pairs if pair.get("render_id") != expected]
    if not others:
        return []
    return [f"manifest.json: {len(others)} of {len(pairs)} pairs were not drawn with the bundle's render settings "
            f"(first: pair {others[0].get('pair_id')!r}); every pair of a bundle must be rendered with one setting"]


def _check_created_at(value: str) -> list[str]:
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return [f"manifest.json: created_at {value!r} is not an ISO-8601 time"]
    return []


def _check_generator(generator: dict) -> list[str]:
    problems = []
    if not isinstance(generator.get("version"), str):
        problems.append("manifest.json: generator.version must be a string")
    if not isinstance(generator.get("seed"), int):
        problems.append("manifest.json: generator.seed must be an integer")
    argv = generator.get("argv")
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        problems.append("manifest.json: generator.argv must be a list of strings")
    return problems


def _check_provenance(provenance: dict) -> list[str]:
    files = provenance.get("explanations")
    if not isinstance(files, dict) or not files:
        return ["manifest.json: provenance.explanations must map explanation files to sha256 digests"]
    return [
        f"manifest.json: provenance.explanations[{name!r}] is not a sha256 hex digest"
        for name, digest in files.items()
        if not (isinstance(digest, str) and _SHA256.match(digest))
    ]


def _check_datasets(datasets: list, problems: list[str]) -> dict[str, list[str]]:
    """Check dataset entries; return class names by dataset key for the pair checks."""
    classes: dict[str, list[str]] = {}
    if not datasets:
        problems.append("manifest.json: datasets is empty")
    for i, entry in enumerate(datasets):
        where = f"manifest.json: datasets[{i}]"
        if not isinstance(entry, dict):
            problems.append(f"{where} must be an object")
            continue
        for field in ("key", "title", "task"):
            if not isinstance(entry.get(field), str) or not entry.get(field):
                problems.append(f"{where}.{field} must be a non-empty string")
        names = entry.get("class_names")
        if not isinstance(names, list) or len(names) < 2 or not all(isinstance(n, str) for n in names):
            problems.append(f"{where}.class_names must list at least two class names")
            names = []
        if isinstance(entry.get("key"), str):
            if entry["key"] in classes:
                problems.append(f"{where}.key {entry['key']!r} appears twice")
            classes[entry["key"]] = names
    return classes


def _check_pairs(pairs: list, classes: dict[str, list[str]]) -> list[str]:
    problems: list[str] = []
    if not pairs:
        problems.append("manifest.json: pairs is empty")
    seen: set[str] = set()
    for i, pair in enumerate(pairs):
        if not isinstance(pair, dict):
            problems.append(f"manifest.json: pairs[{i}] must be an object")
            continue
        where = f"manifest.json: pair {pair.get('pair_id', i)!r}"
        pair_id = pair.get("pair_id")
        if not isinstance(pair_id, str) or not pair_id:
            problems.append(f"{where}: pair_id must be a non-empty string")
        elif pair_id in seen:
            problems.append(f"{where}: pair_id appears twice")
        seen.add(str(pair_id))
        problems += _check_pair(pair, where, classes)
    return problems


def _check_pair(pair: dict, where: str, classes: dict[str, list[str]]) -> list[str]:
    problems = []
    question = pair.get("question_type")
    if not is_question_type(question):
        problems.append(f"{where}: question_type {pair.get('question_type')!r} is not of the form "
                        "<method>_vs_<method> with two different lowercase method keys")
    dataset = pair.get("dataset")
    if dataset not in classes:
        problems.append(f"{where}: dataset {dataset!r} is not listed in datasets")
    if not isinstance(pair.get("image_id"), str) or not pair.get("image_id"):
        problems.append(f"{where}: image_id must be a non-empty string")
    for field in ("true_class", "predicted_class"):
        if dataset in classes and pair.get(field) not in classes[dataset]:
            problems.append(f"{where}: {field} {pair.get(field)!r} is not a class of dataset {dataset!r}")
    if "random_source_image_id" not in pair:
        problems.append(f"{where}: field 'random_source_image_id' is missing (null when unused)")
    stimuli = pair.get("stimuli")
    if not isinstance(stimuli, list) or len(stimuli) != 2 or not all(isinstance(s, dict) for s in stimuli):
        return problems + [f"{where}: stimuli must be a list of two objects"]
    for s in stimuli:
        if not isinstance(s.get("method"), str) or not isinstance(s.get("file"), str):
            problems.append(f"{where}: every stimulus needs a string 'method' and 'file'")
        size = s.get("explanation_size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            problems.append(f"{where}: explanation_size {size!r} must be a non-negative integer or null")
    if is_question_type(question):
        problems += _check_methods(pair, question, [s.get("method") for s in stimuli], where)
    return problems


def _check_methods(pair: dict, question_key: str, methods: list[Any], where: str) -> list[str]:
    first, second = question_sides(question_key)
    random_swap = is_random_control(question_key)
    if not any(m in first for m in methods) or not any(m in second for m in methods):
        return [f"{where}: a {question_key} pair must show {' or '.join(first)} and {' or '.join(second)}, got {methods}"]
    source = pair.get("random_source_image_id")
    if random_swap:
        if not isinstance(source, str) or not source:
            return [f"{where}: random_source_image_id must name the image the random map came from"]
        if source == pair.get("image_id"):
            return [f"{where}: random_source_image_id is the pair's own image"]
    elif source is not None:
        return [f"{where}: random_source_image_id must be null for {question_key}"]
    return []
