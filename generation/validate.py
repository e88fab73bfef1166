"""Check a stimulus bundle: schema, files, sizes, and that nothing a participant sees names a method."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from contracts.blinding import revealing_fragment

from contracts.bundle import IMAGES_DIR, MANIFEST_NAME, check_manifest

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Chunks that carry pixels or colour handling only; anything else (tEXt, zTXt, iTXt, eXIf, iCCP with its
# profile name, private chunks) could carry words and is reported.
PIXEL_CHUNKS = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"pHYs", b"sBIT"})


def validate_bundle(bundle: Path) -> list[str]:
    """Every problem of the bundle at `bundle`, one sentence each; empty when it is sound."""
    manifest_path = bundle / MANIFEST_NAME
    if not bundle.is_dir():
        return [f"{bundle}: bundle folder does not exist"]
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [f"{manifest_path}: manifest file is missing"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [f"{manifest_path}: not readable JSON ({exc})"]
    problems = check_manifest(manifest)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("pairs"), list):
        return problems
    size = (manifest.get("render") or {}).get("size") if isinstance(manifest.get("render"), dict) else None
    stimuli: set[str] = set()
    checked: dict[str, tuple[int, int] | None] = {}
    for pair in manifest["pairs"]:
        if isinstance(pair, dict):
            problems += _check_pair_files(bundle, pair, size, stimuli, checked)
    problems += [f"{name}: file is both a stimulus and a plain image" for name in sorted(stimuli & _plain_files(manifest))]
    problems += _check_unreferenced(bundle, set(checked))
    return problems


def _stimulus_files(pair: dict) -> list[str]:
    stimuli = pair.get("stimuli") if isinstance(pair.get("stimuli"), list) else []
    return [s["file"] for s in stimuli if isinstance(s, dict) and isinstance(s.get("file"), str)]


def _plain_files(manifest: dict) -> set[str]:
    return {p["image_file"] for p in manifest["pairs"] if isinstance(p, dict) and isinstance(p.get("image_file"), str)}


def _check_pair_files(
    bundle: Path, pair: dict, size: object, stimuli: set[str], checked: dict[str, tuple[int, int] | None]
) -> list[str]:
    """Check a pair's files (each file once, even when pairs share a plain image) and their sizes."""
    problems: list[str] = []
    names = _stimulus_files(pair)
    for name in names:
        if name in stimuli:
            problems.append(f"{name}: file is used by more than one stimulus")
        stimuli.add(name)
    if isinstance(pair.get("image_file"), str):
        names.append(pair["image_file"])
    for name in names:
        if name not in checked:
            checked[name], found = _check_file(bundle, name)
            problems += found
    sizes = {checked[name] for name in names if checked[name] is not None}
    if len(sizes) > 1:
        problems.append(f"pair {pair.get('pair_id')!r}: its images differ in size {sorted(sizes)}")
    if isinstance(size, int) and sizes and sizes != {(size, size)}:
        problems.append(f"pair {pair.get('pair_id')!r}: image size {sorted(sizes)[0]} differs from render.size {size}")
    return problems


def _check_file(bundle: Path, name: str) -> tuple[tuple[int, int] | None, list[str]]:
    """The image size (None if unusable) and the problems of one referenced file."""
    path = bundle / name
    if not path.is_file():
        return None, [f"{name}: file does not exist"]
    opened, found = _open_image(path, name)
    if opened is not None:
        found += check_png_metadata(path, name)
    return opened, found


def _open_image(path: Path, name: str) -> tuple[tuple[int, int] | None, list[str]]:
    try:
        with Image.open(path) as image:
            image.verify()  # checks every chunk's CRC without decoding the pixels
            if image.format != "PNG":
                return image.size, [f"{name}: file is {image.format}, not PNG"]
            return image.size, []
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        return None, [f"{name}: file does not open as an image ({exc})"]


def png_chunks(path: Path) -> list[tuple[bytes, bytes]]:
    """The (type, data) chunks of a PNG file, in order."""
    data = path.read_bytes()
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("missing PNG signature")
    chunks, offset = [], len(PNG_SIGNATURE)
    while offset + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        chunks.append((kind, data[offset + 8:offset + 8 + length]))
        offset += 12 + length
    return chunks


def check_png_metadata(path: Path, name: str) -> list[str]:
    """Problems for any PNG chunk that could carry text (tEXt, iTXt, eXIf, …)."""
    try:
        chunks = png_chunks(path)
    except ValueError as exc:
        return [f"{name}: {exc}"]
    problems = []
    for kind, payload in chunks:
        if kind in PIXEL_CHUNKS:
            continue
        word = revealing_fragment(payload.decode("latin-1"))
        detail = f" and names the method word {word!r}" if word else ""
        problems.append(f"{name}: PNG carries a {kind.decode('latin-1')} metadata chunk{detail}")
    return problems


def _check_unreferenced(bundle: Path, referenced: set[str]) -> list[str]:
    images = bundle / IMAGES_DIR
    if not images.is_dir():
        return [f"{IMAGES_DIR}/: folder is missing"]
    return [
        f"{IMAGES_DIR}/{p.name}: file is not referenced by the manifest"
        for p in sorted(images.iterdir())
        if f"{IMAGES_DIR}/{p.name}" not in referenced
    ]
