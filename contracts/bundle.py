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
from contracts.usefulness import (
    ARMS,
    DISTINCTION,
    FORWARD_SIMULATION,
    IMAGE_FILE,
    LEARN,
    MAX_PANELS,
    MIN_PANELS,
    MODEL_CORRECT,
    NO_EXPLANATION,
    PANEL_CLASS,
    PANEL_FILE,
    PANELS,
    PHASE,
    PHASES,
    PREFERENCE,
    TASK,
    TASKS,
    TRIAL_ID,
)
from contracts.usefulness import METHOD as TRIAL_METHOD
from contracts.vocabulary import is_method_key, is_question_type, is_random_control, question_sides

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


def bundle_task(manifest: Any) -> str:
    """The task a manifest's bundle runs (``contracts.usefulness.TASKS``): its ``task`` field, the
    preference study when absent or null. ValueError with one sentence for any other value."""
    task = manifest.get(TASK) if isinstance(manifest, dict) else None
    if task is None:
        return PREFERENCE
    if task not in TASKS:
        raise ValueError(f"manifest.json: task {task!r} is not one of {', '.join(TASKS)}")
    return task


def entries_field(task: str) -> str:
    """The manifest's list of what participants see: ``pairs`` (preference) or ``trials``."""
    return "pairs" if task == PREFERENCE else "trials"


def bundle_entries(manifest: Any) -> list[dict]:
    """The pairs or trials of a manifest (whichever its task has), objects only, in order."""
    try:
        entries = manifest.get(entries_field(bundle_task(manifest)))
    except (AttributeError, ValueError):
        return []
    return [entry for entry in entries if isinstance(entry, dict)] if isinstance(entries, list) else []


def manifest_files(manifest: Any) -> list[str]:
    """Every image file a manifest names (pairs' or trials'), each once, in order of appearance."""
    return list(dict.fromkeys(name for entry in bundle_entries(manifest) for name in referenced_files(entry)))


def check_manifest(manifest: Any) -> list[str]:
    """Every way `manifest` breaks schema 1, as one sentence each (empty when it conforms)."""
    if not isinstance(manifest, dict):
        return ["manifest.json: top level must be a JSON object"]
    problems: list[str] = []
    if manifest.get("schema_version") != SCHEMA_VERSION:
        problems.append(f"manifest.json: schema_version is {manifest.get('schema_version')!r}, expected 1")
    try:
        task = bundle_task(manifest)
    except ValueError as exc:
        return problems + [str(exc)]
    field = entries_field(task)
    for name, kind in (("bundle_id", str), ("created_at", str), ("generator", dict), ("datasets", list),
                       (field, list), ("provenance", dict)):
        if not isinstance(manifest.get(name), kind):
            problems.append(f"manifest.json: field '{name}' must be a {kind.__name__}")
    other = entries_field(DISTINCTION if task == PREFERENCE else PREFERENCE)
    if other in manifest:
        problems.append(f"manifest.json: a {task} bundle lists {field}, not {other} (one bundle holds one task)")
    if problems:
        return problems
    problems += _check_created_at(manifest["created_at"])
    problems += _check_generator(manifest["generator"])
    problems += _check_provenance(manifest["provenance"])
    classes = _check_datasets(manifest["datasets"], problems)
    if task == PREFERENCE:
        problems += _check_pairs(manifest["pairs"], classes)
    else:
        problems += _check_trials(task, manifest["trials"], manifest.get(ARMS), classes)
    noun = field[:-1]
    problems += _check_render(manifest.get("render"), manifest[field], noun)
    problems += [problem for name in manifest_files(manifest) for problem in file_name_problems(name)]
    problems += [f"manifest.json: {noun}_id {entry.get(f'{noun}_id')!r} reveals a method word"
                 for entry in bundle_entries(manifest) if revealing_fragment(str(entry.get(f"{noun}_id")))]
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
    """The explanation files of a pair or trial (stimuli, panels), then its plain image (if any)."""
    return explanation_files(pair) + plain_image_files(pair)


def explanation_files(entry: dict) -> list[str]:
    """The files that show an explanation: a pair's stimuli, then a trial's panels."""
    return stimulus_files(entry) + panel_files(entry)


def panel_files(trial: dict) -> list[str]:
    """The files of a trial's panels that name one (a malformed entry is check_manifest's to report)."""
    panels = trial.get(PANELS) if isinstance(trial.get(PANELS), list) else []
    return [p[PANEL_FILE] for p in panels if isinstance(p, dict) and isinstance(p.get(PANEL_FILE), str)]


def stimulus_files(pair: dict) -> list[str]:
    """The files of a pair's stimuli that name one (a malformed entry is check_manifest's to report)."""
    stimuli = pair.get("stimuli") if isinstance(pair.get("stimuli"), list) else []
    return [s["file"] for s in stimuli if isinstance(s, dict) and isinstance(s.get("file"), str)]


def plain_image_files(pair: dict) -> list[str]:
    """The pair's plain image as a list of one, or empty when the pair shows none."""
    return [pair["image_file"]] if isinstance(pair.get("image_file"), str) else []


def _check_render(record: Any, entries: list, noun: str = "pair") -> list[str]:
    """The optional `render` record is sound and every pair (or trial) carries its `render_id`: one
    drawing per bundle.

    Bundles from before render styles have no record, or one without `style`, and no pair ids.
    """
    entries = [entry for entry in entries if isinstance(entry, dict)]
    if record is None:
        if any("render_id" in entry for entry in entries):
            return [(f"manifest.json: {noun}s carry a render_id but the manifest has no render "
                     "record saying how they were drawn")]
        return []
    problem = render_record_problem(record)
    if problem:
        return [problem]
    expected = render_record_id(record) if "style" in record else None
    others = [entry for entry in entries if entry.get("render_id") != expected]
    if not others:
        return []
    first = others[0].get(f"{noun}_id")
    return [(f"manifest.json: {len(others)} of {len(entries)} {noun}s were not drawn with the "
             f"bundle's render settings (first: {noun} {first!r}); every {noun} of a bundle must be "
             "rendered with one setting")]


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


def _check_trials(task: str, trials: list, arms: Any, classes: dict[str, list[str]]) -> list[str]:
    """The trials of a usefulness bundle (docs/formats.md "Usefulness bundles"), then its arms."""
    problems = _check_arms(task, arms)
    arm_keys = arms if task == FORWARD_SIMULATION and not problems else None
    if not trials:
        problems.append("manifest.json: trials is empty")
    seen: set[str] = set()
    for i, trial in enumerate(trials):
        if not isinstance(trial, dict):
            problems.append(f"manifest.json: trials[{i}] must be an object")
            continue
        where = f"manifest.json: trial {trial.get(TRIAL_ID, i)!r}"
        trial_id = trial.get(TRIAL_ID)
        if not isinstance(trial_id, str) or not trial_id:
            problems.append(f"{where}: trial_id must be a non-empty string")
        elif trial_id in seen:
            problems.append(f"{where}: trial_id appears twice")
        seen.add(str(trial_id))
        problems += _check_trial_image(trial, where, classes)
        problems += _check_trial_method(task, trial, where, arm_keys)
        problems += _check_panels(task, trial, where, classes)
    if arm_keys is not None:
        problems += _check_phases([t for t in trials if isinstance(t, dict)], arm_keys)
    return problems


def _check_trial_image(trial: dict, where: str, classes: dict[str, list[str]]) -> list[str]:
    """The image of a trial: its dataset, classes, plain file and whether the model got it right."""
    problems = []
    dataset = trial.get("dataset")
    if dataset not in classes:
        problems.append(f"{where}: dataset {dataset!r} is not listed in datasets")
    if not isinstance(trial.get("image_id"), str) or not trial.get("image_id"):
        problems.append(f"{where}: image_id must be a non-empty string")
    for field in ("true_class", "predicted_class"):
        if dataset in classes and trial.get(field) not in classes[dataset]:
            problems.append(f"{where}: {field} {trial.get(field)!r} is not a class of dataset {dataset!r}")
    correct = trial.get(MODEL_CORRECT)
    if not isinstance(correct, bool):
        problems.append(f"{where}: model_correct must be true or false, got {correct!r}")
    elif correct != (trial.get("predicted_class") == trial.get("true_class")):
        problems.append(f"{where}: model_correct is {str(correct).lower()} but predicted_class "
                        f"{trial.get('predicted_class')!r} and true_class {trial.get('true_class')!r} "
                        f"{'differ' if correct else 'agree'}")
    if not isinstance(trial.get(IMAGE_FILE), str):
        problems.append(f"{where}: image_file must name the plain image")
    return problems


def _check_trial_method(task: str, trial: dict, where: str, arms: list[str] | None) -> list[str]:
    """A trial's `phase` and `method` as its task allows (forward simulation: a learn trial's method
    is one of the arms, `none` included; pre and post trials show no method)."""
    phase, method = trial.get(PHASE), trial.get(TRIAL_METHOD)
    if task != FORWARD_SIMULATION:
        if phase is not None:
            return [f"{where}: phase must be null in {_a(task)} trial, got {phase!r}"]
        if not is_method_key(method) or method == NO_EXPLANATION:
            return [f"{where}: method {method!r} must be a method key in {_a(task)} trial"]
        return []
    if phase not in PHASES:
        return [f"{where}: phase {phase!r} must be one of {', '.join(PHASES)}"]
    if phase != LEARN:
        return [] if method is None else [f"{where}: method must be null in a {phase} trial, got {method!r}"]
    if arms is not None and method not in arms:
        return [f"{where}: method {method!r} of a learn trial is not one of the arms {arms}"]
    if not (is_method_key(method) or method == NO_EXPLANATION):
        return [f"{where}: method {method!r} of a learn trial must be a method key or {NO_EXPLANATION!r}"]
    return []


def _check_panels(task: str, trial: dict, where: str, classes: dict[str, list[str]]) -> list[str]:
    """A trial's panels: how many its task shows, each a class of the dataset, the prediction's first."""
    panels = trial.get(PANELS)
    if not isinstance(panels, list) or not all(
            isinstance(p, dict) and isinstance(p.get(PANEL_CLASS), str) and isinstance(p.get(PANEL_FILE), str)
            for p in panels):
        return [f"{where}: panels must be a list of objects with a string 'class' and 'file'"]
    low, high, what = _panel_count(task, trial)
    if not low <= len(panels) <= high:
        return [f"{where}: {_a(what)} shows {_count_words(low, high)}, got {len(panels)}"]
    shown = [p[PANEL_CLASS] for p in panels]
    dataset, predicted = trial.get("dataset"), trial.get("predicted_class")
    unknown = [c for c in shown if dataset in classes and c not in classes[dataset]]
    if unknown:
        return [f"{where}: panel class {unknown[0]!r} is not a class of dataset {dataset!r}"]
    if len(set(shown)) != len(shown):
        return [f"{where}: panel classes {shown} repeat a class; each panel explains another class"]
    if shown and shown[0] != predicted:
        return [f"{where}: the first panel must explain the predicted class {predicted!r}, got {shown[0]!r}"]
    return []


def _panel_count(task: str, trial: dict) -> tuple[int, int, str]:
    """The fewest and most panels a trial shows, and what the trial is (for the message)."""
    if task == DISTINCTION:
        return MIN_PANELS, MAX_PANELS, "distinction trial"
    if task != FORWARD_SIMULATION:
        return 1, 1, f"{task} trial"
    phase, method = trial.get(PHASE), trial.get(TRIAL_METHOD)
    if phase == LEARN and method != NO_EXPLANATION:
        return 1, 1, "learn trial"
    return 0, 0, f"{phase} trial" if phase != LEARN else f"learn trial of the {NO_EXPLANATION!r} arm"


def _a(words: str) -> str:
    """``words`` after its indefinite article ("an agreement trial", "a learn trial")."""
    return f"{'an' if words[:1] in 'aeiou' else 'a'} {words}"


def _count_words(low: int, high: int) -> str:
    if low != high:
        return f"{low} to {high} panels"
    return {0: "no panels", 1: "exactly one panel"}.get(low, f"{low} panels")


def _check_arms(task: str, arms: Any) -> list[str]:
    """`arms`: for forward simulation a list of method keys, optionally `none`, each once; else null."""
    if task != FORWARD_SIMULATION:
        if arms is None:
            return []
        return [f"manifest.json: arms must be null in {_a(task)} bundle (only forward simulation has arms)"]
    if not isinstance(arms, list) or not arms or not all(
            is_method_key(arm) or arm == NO_EXPLANATION for arm in arms):
        return [f"manifest.json: arms must list method keys and optionally {NO_EXPLANATION!r}, got {arms!r}"]
    twice = sorted({arm for arm in arms if arms.count(arm) > 1})
    return [f"manifest.json: arm {arm!r} is listed twice" for arm in twice]


def _check_phases(trials: list[dict], arms: list[str]) -> list[str]:
    """Forward simulation: every phase has trials, no image is in two phases, every arm learns from
    every learning image."""
    problems = [f"manifest.json: {_a(FORWARD_SIMULATION)} bundle needs {phase} trials and has none"
                for phase in PHASES if not any(t.get(PHASE) == phase for t in trials)]
    phases: dict[tuple[Any, Any], set[str]] = {}
    for trial in trials:
        if trial.get(PHASE) in PHASES:
            phases.setdefault((trial.get("dataset"), trial.get("image_id")), set()).add(trial[PHASE])
    shared = [(image, sorted(found, key=PHASES.index)) for image, found in phases.items() if len(found) > 1]
    if shared:
        (dataset, image_id), found = shared[0]
        problems.append(f"manifest.json: {len(shared)} image(s) are in more than one phase (first: {image_id!r} "
                        f"of {dataset!r} in {' and '.join(found)}); no image may be in two phases")
    learning = [image for image, found in phases.items() if LEARN in found]
    for arm in arms:
        seen = {(t.get("dataset"), t.get("image_id")) for t in trials
                if t.get(PHASE) == LEARN and t.get(TRIAL_METHOD) == arm}
        missing = [image for image in learning if image not in seen]
        if missing:
            problems.append(f"manifest.json: arm {arm!r} has no learn trial for {len(missing)} of the "
                            f"{len(learning)} learning images (first: {missing[0][1]!r}); every arm learns "
                            "from the same images")
    return problems
