"""Check a stimulus bundle: schema, files, sizes, and that nothing a participant sees names a method."""

from __future__ import annotations

import struct
from pathlib import Path

from contracts.blinding import revealing_fragment
from contracts.bundle import (
    IMAGES_DIR,
    BundleFileError,
    bundle_entries,
    bundle_task,
    check_manifest,
    entries_field,
    explanation_files,
    plain_image_files,
    png_size,
    read_manifest,
    referenced_files,
    unreferenced_images,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Chunks that carry pixels or colour handling only; anything else (tEXt, zTXt, iTXt, eXIf, iCCP with its
# profile name, private chunks) could carry words and is reported.
PIXEL_CHUNKS = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"pHYs", b"sBIT"})


def validate_bundle(bundle: Path) -> list[str]:
    """Every problem of the bundle at `bundle`, one sentence each; empty when it is sound."""
    try:
        manifest, _ = read_manifest(bundle)
    except BundleFileError as exc:
        return [str(exc)]
    problems = check_manifest(manifest)
    try:
        field = entries_field(bundle_task(manifest))
    except ValueError:
        return problems
    if not isinstance(manifest, dict) or not isinstance(manifest.get(field), list):
        return problems
    size = (manifest.get("render") or {}).get("size") if isinstance(manifest.get("render"), dict) else None
    stimuli: set[str] = set()
    checked: dict[str, tuple[int, int] | None] = {}
    pairs = bundle_entries(manifest)  # a preference bundle's pairs or a usefulness bundle's trials
    for pair in pairs:
        problems += _check_pair_files(bundle, pair, size, stimuli, checked, field[:-1])
    plain = {name for pair in pairs for name in plain_image_files(pair)}
    problems += [f"{name}: file is both a stimulus and a plain image"
                 for name in sorted(stimuli & plain)]
    problems += _check_unreferenced(bundle, set(checked))
    return problems


def _check_pair_files(
    bundle: Path, pair: dict, size: object, stimuli: set[str], checked: dict[str, tuple[int, int] | None],
    noun: str = "pair",
) -> list[str]:
    """Check a pair's (or trial's) files (each file once, even when entries share a plain image) and their sizes."""
    problems: list[str] = []
    for name in explanation_files(pair):
        if name in stimuli:
            problems.append(f"{name}: file is used by more than one stimulus")
        stimuli.add(name)
    names = referenced_files(pair)
    for name in names:
        if name not in checked:
            checked[name], found = _check_file(bundle, name)
            problems += found
    sizes = {checked[name] for name in names if checked[name] is not None}
    label = f"{noun} {pair.get(f'{noun}_id')!r}"
    if len(sizes) > 1:
        problems.append(f"{label}: its images differ in size {sorted(sizes)}")
    if isinstance(size, int) and sizes and sizes != {(size, size)}:
        problems.append(f"{label}: image size {sorted(sizes)[0]} differs from render.size {size}")
    return problems


def _check_file(bundle: Path, name: str) -> tuple[tuple[int, int] | None, list[str]]:
    """The image size (None if unusable) and the problems of one referenced file."""
    path = bundle / name
    if not path.is_file():
        return None, [f"{name}: file does not exist"]
    try:
        size = png_size(path, name)  # checks every chunk's CRC without decoding the pixels
    except BundleFileError as exc:
        return None, [str(exc)]
    return size, check_png_metadata(path, name)


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
    stray = unreferenced_images(bundle, referenced)
    if stray is None:
        return [f"{IMAGES_DIR}/: folder is missing"]
    return [f"{p.relative_to(bundle).as_posix()}: file is not referenced by the manifest"
            for p in stray]
