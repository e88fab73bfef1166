"""A contact sheet of a bundle for the researcher: image, both sides (a usefulness trial: its panels), method
names and classes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from contracts.bundle import BundleFileError, bundle_entries, check_manifest, read_manifest
from generation.atomic import atomic_file
from generation.errors import GenerationError
from generation.render import describe_render

GAP = 8
LINE = 14
BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)
PLACEHOLDER = (200, 200, 200)


def load_manifest(bundle: Path) -> dict[str, Any]:
    """The bundle's manifest, or GenerationError if it is missing or breaks the schema."""
    try:
        manifest, _ = read_manifest(bundle)
    except BundleFileError as exc:
        raise GenerationError(str(exc)) from None
    problems = check_manifest(manifest)
    if problems:
        raise GenerationError(f"{bundle}: {problems[0]} (run `python -m generation validate` for all problems)")
    return manifest


def contact_sheet(bundle: Path, thumb: int = 160, max_pairs: int | None = None) -> tuple[Image.Image, int]:
    """A line saying how the bundle was drawn, then one row per pair (or trial): the plain image and its
    two stimuli (or its panels), each captioned with what it shows."""
    if thumb < 32:
        raise GenerationError(f"--thumb {thumb} is below 32 pixels")
    manifest = load_manifest(bundle)
    rows = [_row(entry) for entry in bundle_entries(manifest)[:max_pairs]]
    width = max([3, *(len(columns) for _, columns in rows)])
    cell_w, row_h = thumb + GAP, thumb + 3 * LINE + 2 * GAP
    font = ImageFont.load_default()
    heading = _wrapped(describe_render(manifest.get("render")), font, width * cell_w - GAP)
    head_h = LINE * len(heading) + GAP
    sheet = Image.new("RGB", (GAP + width * cell_w, GAP + head_h + row_h * len(rows)), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for k, line in enumerate(heading):
        draw.text((GAP, GAP + k * LINE), line, fill=INK, font=font)
    for i, (title, columns) in enumerate(rows):
        top = GAP + head_h + i * row_h
        draw.text((GAP, top), f"{i + 1}. {title}", fill=INK, font=font)
        for c, (name, caption) in enumerate(columns):
            left = GAP + c * cell_w
            sheet.paste(_thumbnail(bundle, name, thumb), (left, top + LINE + 2))
            draw.multiline_text((left, top + LINE + thumb + 4), caption, fill=INK, font=font, spacing=2)
    return sheet, len(rows)


def _row(entry: dict[str, Any]) -> tuple[str, list[tuple[str | None, str]]]:
    """A row's title and its (file, caption) columns: the plain image, then a pair's sides or a trial's panels."""
    where = f"{entry['dataset']} · {entry['image_id']}"
    columns: list[tuple[str | None, str]] = [
        (entry.get("image_file"), f"true {entry['true_class']}, predicted {entry['predicted_class']}")]
    if "stimuli" in entry:
        columns += [(s["file"], _stimulus_caption(s, entry)) for s in entry["stimuli"]]
        return f"{entry['question_type']} · {where}", columns
    shown = [entry.get("phase"), entry.get("method") or "no explanation"]
    columns += [(p["file"], f"explains {p['class']}") for p in entry["panels"]]
    return f"{' · '.join(str(part) for part in shown if part)} · {where}", columns


def _wrapped(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: int) -> list[str]:
    """`text` broken at spaces into lines no wider than `width` pixels (a longer word gets its own line)."""
    lines = [""]
    for word in text.split():
        candidate = f"{lines[-1]} {word}".strip()
        if lines[-1] and font.getlength(candidate) > width:
            lines.append(word)
        else:
            lines[-1] = candidate
    return lines


def _stimulus_caption(stimulus: dict[str, Any], pair: dict[str, Any]) -> str:
    caption = stimulus["method"]
    if stimulus.get("explanation_size") is not None:
        caption += f" ({stimulus['explanation_size']} cells)"
    if stimulus["method"] == "random" and pair.get("random_source_image_id"):
        caption += f"\nfrom {pair['random_source_image_id']}"
    return caption


def _thumbnail(bundle: Path, name: str | None, thumb: int) -> Image.Image:
    try:
        with Image.open(bundle / name) as image:  # type: ignore[operator]
            return image.convert("RGB").resize((thumb, thumb), Image.Resampling.BILINEAR)
    except (TypeError, OSError):
        placeholder = Image.new("RGB", (thumb, thumb), PLACEHOLDER)
        ImageDraw.Draw(placeholder).text((4, 4), "missing", fill=INK)
        return placeholder


def write_contact_sheet(bundle: Path, out: Path, thumb: int = 160, max_pairs: int | None = None) -> int:
    """Write the contact sheet of `bundle` to `out` (format from its suffix); return the rows drawn."""
    image_format = Image.registered_extensions().get(out.suffix.lower())
    if image_format not in ("PNG", "JPEG", "WEBP"):
        raise GenerationError(f"{out}: use a .png, .jpg or .webp file name for the contact sheet")
    sheet, rows = contact_sheet(bundle, thumb, max_pairs)
    with atomic_file(out) as temporary:
        sheet.save(temporary, format=image_format)
    return rows
