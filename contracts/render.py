"""The manifest's ``render`` record: how every stimulus of a bundle was drawn (docs/formats.md)."""
from __future__ import annotations

import hashlib
import json
import numbers
from collections.abc import Callable, Mapping

# The fields of the record, in order; `style` is absent from bundles built before styles.
RENDER_FIELDS: tuple[str, ...] = ("style", "size", "upscale", "image_resample", "colormap", "alpha")
RENDER_STYLE_NAMES: tuple[str, ...] = ("overlay", "cells")
RESAMPLE_NAMES: tuple[str, ...] = ("nearest", "bilinear")


def render_record_id(record: Mapping[str, object]) -> str:
    """A 16-hex digest of a render record: pairs carry it, so pairs drawn differently cannot share a bundle."""
    return hashlib.sha256(json.dumps(dict(record), sort_keys=True).encode()).hexdigest()[:16]


def settings_problem(record: Mapping[str, object], label: Callable[[str], str]) -> str | None:
    """The first thing wrong with render settings, as one sentence naming `label(field)`; None when sound.

    A record without `style` (written before styles existed) is checked for its other fields only. The
    colormap is a recorded name here; whether matplotlib knows it matters only to the generator drawing it.
    """
    style, size, alpha = record.get("style"), record.get("size"), record.get("alpha")
    if "style" in record and style not in RENDER_STYLE_NAMES:
        return f"{label('style')} {style!r} is not a render style (choose {' or '.join(RENDER_STYLE_NAMES)})"
    if not isinstance(size, int) or isinstance(size, bool) or not 16 <= size <= 4096:
        return f"{label('size')} {size!r} is not a whole number of pixels in 16..4096"
    for field in ("upscale", "image_resample"):
        if record.get(field) not in RESAMPLE_NAMES:
            return f"{label(field)} {record.get(field)!r} is not one of {', '.join(RESAMPLE_NAMES)}"
    if not isinstance(record.get("colormap"), str) or not record["colormap"]:
        return f"{label('colormap')} {record.get('colormap')!r} is not a colormap name"
    if not isinstance(alpha, numbers.Real) or isinstance(alpha, bool) or not 0.0 < alpha <= 1.0:
        return f"{label('alpha')} {alpha!r} is not a number in (0, 1]"
    return None


def render_record_problem(record: object) -> str | None:
    """What is wrong with a manifest's `render` record, as one sentence; None when it is sound."""
    if not isinstance(record, dict):
        return "manifest.json: render must be an object of drawing settings"
    unknown = sorted(set(record) - set(RENDER_FIELDS))
    missing = [field for field in RENDER_FIELDS[1:] if field not in record]
    if unknown or missing:
        what = f"unknown field {unknown[0]!r}" if unknown else f"no field {missing[0]!r}"
        return f"manifest.json: render has {what}; it records {', '.join(RENDER_FIELDS)}"
    problem = settings_problem(record, lambda field: f"render.{field}")
    return f"manifest.json: {problem}" if problem else None
