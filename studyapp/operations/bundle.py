"""Validate a stimulus bundle (schema 1, docs/formats.md) and import it into a study all-or-nothing.

Images are decoded, stripped of metadata and stored in media storage under fresh random names, so
nothing a participant can fetch carries the bundle's file names or any text chunk of the files.
A bundle may come from anyone: the manifest's size, its strings (no NUL, no longer than the column
they go into) and every image's pixel count (read from its header, before decoding) are capped. What a
bundle is (PNG images named images/<32 hex>.png, ...) is decided by the one shared check,
``contracts.bundle.check_manifest``; the checks here add the app's limits and decode every image.
"""
from __future__ import annotations

import hashlib
import io
import re
import secrets
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from PIL import Image

from contracts.bundle import (
    IMAGE_FORMAT,
    MANIFEST_NAME,
    SCHEMA_VERSION,
    BundleFileError,
    bundle_task,
    check_manifest,
    png_size,
    read_manifest,
    unreferenced_images,
)
from contracts.usefulness import (
    FORWARD_SIMULATION,
    LEARN,
    MAX_PANELS,
    NO_EXPLANATION,
    PANEL_CLASS,
    PANEL_FILE,
    PANELS,
    PHASES,
    PREFERENCE,
)
from studyapp.conf import study_settings
from studyapp.models import (
    DEFAULT_INSTRUCTIONS,
    DEFAULT_TASK_INSTRUCTIONS,
    Bundle,
    Dataset,
    Pair,
    Stimulus,
    Study,
    Trial,
    TrialPanel,
    answered_trials_per_participant,
    questions_per_participant,
)

KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
STORAGE_DIR = "stimuli"


class BundleError(Exception):
    """The bundle is not valid; the message is one sentence naming the file, field and value."""


@dataclass(frozen=True)
class ValidatedBundle:
    """A bundle that passed validation: its folder, parsed manifest and content hash."""

    root: Path
    manifest: dict[str, Any]
    content_sha256: str
    files: tuple[str, ...]

    @property
    def task(self) -> str:
        """``preference`` or the usefulness task the bundle holds (docs/formats.md)."""
        return bundle_task(self.manifest)

    @property
    def questions(self) -> list[dict[str, Any]]:
        """The manifest's pairs (preference) or trials (usefulness tasks)."""
        return self.manifest["pairs" if self.task == PREFERENCE else "trials"]

    def questions_per_participant(self, per_cell: int) -> int:
        """Answered questions per participant at ``per_cell`` per cell (attention checks and learning trials not counted)."""
        if self.task == PREFERENCE:
            cells = Counter((pair["question_type"], pair["dataset"]) for pair in self.questions)
            return questions_per_participant(cells.values(), per_cell)
        answered = ((t.get("method"), t["dataset"], t.get("phase")) for t in self.questions if t.get("phase") != LEARN)
        return answered_trials_per_participant(answered, self.task, per_cell)


@dataclass(frozen=True)
class ImportResult:
    """What an import did."""

    study: Study
    created: bool
    pairs: int
    images: int
    unit: str = "pairs"


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise BundleError(message)


def _max_length(model: type, field: str) -> int:
    return model._meta.get_field(field).max_length


def _string(value: Any, where: str, *, limit: int, key: bool = False) -> str:
    _require(isinstance(value, str) and value.strip() != "", f"{where} must be a non-empty string, got {value!r}.")
    _require(len(value) <= limit, f"{where} is {len(value)} characters long; at most {limit} are allowed.")
    # Tabs, line breaks and other control characters would break CSV rows and spreadsheet cells.
    _require(value.isprintable(), f"{where} {value!r} contains a control character (tab, line break, …).")
    if key:
        _require(bool(KEY_PATTERN.match(value)), f"{where} {value!r} must use only letters, digits, '_', '.' and '-'.")
    return value


def _list(value: Any, where: str) -> list[Any]:
    _require(isinstance(value, list) and len(value) > 0, f"{where} must be a non-empty list.")
    return value


def _reject_nul(value: Any, where: str) -> None:
    """No string anywhere in the manifest (keys included) may hold a NUL character (PostgreSQL stores none)."""
    if isinstance(value, str):
        _require("\x00" not in value, f"{where} contains a NUL character ({value[:40]!r}).")
    elif isinstance(value, dict):
        for key, item in value.items():
            _reject_nul(key, f"{where} (a key)")
            _reject_nul(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _reject_nul(item, f"{where}[{i}]")


def _read_manifest(root: Path) -> tuple[dict[str, Any], bytes]:
    path = root / MANIFEST_NAME
    with _refusing_file_errors():
        manifest, raw = read_manifest(root, study_settings().study_import_max_manifest_bytes,
                                      "STUDY_IMPORT_MAX_MANIFEST_BYTES")
    _require(isinstance(manifest, dict), f"{path}: the manifest must be a JSON object.")
    _reject_nul(manifest, str(path))
    return manifest, raw


@contextmanager
def _refusing_file_errors() -> Iterator[None]:
    """The shared reader's problem (``contracts.bundle``) as this app's one-sentence BundleError."""
    try:
        yield
    except BundleFileError as exc:
        raise BundleError(f"{exc}.") from None


def _check_image(root: Path, file: Any, where: str) -> tuple[str, tuple[int, int]]:
    """The file's name inside the bundle and its pixel size, once it proved a readable PNG."""
    name = _string(file, where, limit=_max_length(Stimulus, "source_file"))
    path = (root / name).resolve()
    _require(
        not Path(name).is_absolute() and path.is_relative_to(root.resolve()),
        f"{where} {name!r} must be a path inside the bundle.",
    )
    _require(path.is_file(), f"{where}: image file {root / name} does not exist.")
    limits = study_settings()
    with _refusing_file_errors():
        size = png_size(root / name, max_side=limits.study_import_max_side,
                        max_pixels=limits.study_import_max_pixels,
                        limit_note="STUDY_IMPORT_MAX_SIDE, STUDY_IMPORT_MAX_PIXELS", decode=True)
    return name, size


def _check_datasets(manifest: dict[str, Any], where: str) -> dict[str, set[str]]:
    classes_by_key: dict[str, set[str]] = {}
    for i, dataset in enumerate(_list(manifest.get("datasets"), f"{where}: datasets")):
        at = f"{where}: datasets[{i}]"
        _require(isinstance(dataset, dict), f"{at} must be an object.")
        key = _string(dataset.get("key"), f"{at}.key", limit=_max_length(Dataset, "key"), key=True)
        _require(key not in classes_by_key, f"{at}.key {key!r} appears twice.")
        _string(dataset.get("title"), f"{at}.title", limit=_max_length(Dataset, "title"))
        _string(dataset.get("task"), f"{at}.task", limit=_max_length(Dataset, "task"))
        names = _list(dataset.get("class_names"), f"{at}.class_names")
        limit = _max_length(Pair, "true_class")
        classes_by_key[key] = {_string(n, f"{at}.class_names[{j}]", limit=limit) for j, n in enumerate(names)}
    return classes_by_key


def _check_pair(root: Path, pair: Any, at: str, classes_by_key: dict[str, set[str]]) -> list[str]:
    _require(isinstance(pair, dict), f"{at} must be an object.")
    _string(pair.get("question_type"), f"{at}.question_type", limit=_max_length(Pair, "question_type"), key=True)
    dataset = _string(pair.get("dataset"), f"{at}.dataset", limit=_max_length(Dataset, "key"))
    _require(dataset in classes_by_key, f"{at}.dataset {dataset!r} is not one of the datasets {sorted(classes_by_key)}.")
    _string(pair.get("image_id"), f"{at}.image_id", limit=_max_length(Pair, "image_id"))
    for field in ("true_class", "predicted_class"):
        value = _string(pair.get(field), f"{at}.{field}", limit=_max_length(Pair, field))
        _require(value in classes_by_key[dataset], f"{at}.{field} {value!r} is not a class of dataset {dataset!r}.")
    source = pair.get("random_source_image_id")
    _require(source is None or isinstance(source, str), f"{at}.random_source_image_id must be a string or null.")
    if source:
        _string(source, f"{at}.random_source_image_id", limit=_max_length(Pair, "random_source_image_id"))
    stimuli = _list(pair.get("stimuli"), f"{at}.stimuli")
    _require(len(stimuli) == 2, f"{at}.stimuli must hold exactly 2 stimuli, got {len(stimuli)}.")
    files, methods, sizes = [], [], {}
    for j, stimulus in enumerate(stimuli):
        sat = f"{at}.stimuli[{j}]"
        _require(isinstance(stimulus, dict), f"{sat} must be an object.")
        methods.append(_string(stimulus.get("method"), f"{sat}.method", limit=_max_length(Stimulus, "method"), key=True))
        size = stimulus.get("explanation_size")
        _require(
            size is None or (isinstance(size, int) and not isinstance(size, bool) and size >= 0),
            f"{sat}.explanation_size must be a non-negative integer or absent, got {size!r}.",
        )
        name, sizes[name] = _check_image(root, stimulus.get("file"), f"{sat}.file")
        files.append(name)
    _require(methods[0] != methods[1], f"{at}.stimuli both use method {methods[0]!r}.")
    if pair.get("image_file") is not None:
        name, sizes[name] = _check_image(root, pair["image_file"], f"{at}.image_file")
        files.append(name)
    # Sides of different size would tell participants which system is which.
    _require(
        len(set(sizes.values())) == 1,
        f"{at}: its images differ in size ({', '.join(f'{n} {w}x{h}' for n, (w, h) in sizes.items())}).",
    )
    return files


def _check_trial(root: Path, trial: Any, at: str, classes_by_key: dict[str, set[str]], task: str) -> list[str]:
    """The app's limits on one usefulness trial (the contract's own checks follow in ``_check_contract``)."""
    _require(isinstance(trial, dict), f"{at} must be an object.")
    dataset = _string(trial.get("dataset"), f"{at}.dataset", limit=_max_length(Dataset, "key"))
    _require(dataset in classes_by_key, f"{at}.dataset {dataset!r} is not one of the datasets {sorted(classes_by_key)}.")
    _string(trial.get("image_id"), f"{at}.image_id", limit=_max_length(Trial, "image_id"))
    for field in ("true_class", "predicted_class"):
        value = _string(trial.get(field), f"{at}.{field}", limit=_max_length(Trial, field))
        _require(value in classes_by_key[dataset], f"{at}.{field} {value!r} is not a class of dataset {dataset!r}.")
    _require(isinstance(trial.get("model_correct"), bool), f"{at}.model_correct must be true or false.")
    if trial.get("method") is not None:
        _string(trial["method"], f"{at}.method", limit=_max_length(Trial, "method"), key=True)
    phases = PHASES if task == FORWARD_SIMULATION else ()
    _require(trial.get("phase") in (None, *phases) and (trial.get("phase") is None) != bool(phases),
             f"{at}.phase {trial.get('phase')!r} must be one of {list(phases)}" if phases else f"{at}.phase must be null.")
    panels = trial.get(PANELS) or []
    _require(isinstance(panels, list) and len(panels) <= MAX_PANELS,
             f"{at}.{PANELS} must be a list of at most {MAX_PANELS} panels.")
    sizes: dict[str, tuple[int, int]] = {}
    files = []
    for j, panel in enumerate(panels):
        pat = f"{at}.{PANELS}[{j}]"
        _require(isinstance(panel, dict), f"{pat} must be an object.")
        name = _string(panel.get(PANEL_CLASS), f"{pat}.{PANEL_CLASS}", limit=_max_length(TrialPanel, "class_name"))
        _require(name in classes_by_key[dataset], f"{pat}.{PANEL_CLASS} {name!r} is not a class of dataset {dataset!r}.")
        file, sizes[file] = _check_image(root, panel.get(PANEL_FILE), f"{pat}.{PANEL_FILE}")
        files.append(file)
    file, sizes[file] = _check_image(root, trial.get("image_file"), f"{at}.image_file")
    files.append(file)
    _require(
        len(set(sizes.values())) == 1,
        f"{at}: its images differ in size ({', '.join(f'{n} {w}x{h}' for n, (w, h) in sizes.items())}).",
    )
    return files


def _check_questions(root: Path, manifest: dict[str, Any], where: str, classes_by_key: dict[str, set[str]],
                     progress: Callable[[int], None] | None) -> list[str]:  # fmt: skip
    """Check every pair (preference) or trial (usefulness task); the files they name, in order."""
    try:
        task = bundle_task(manifest)
    except ValueError as exc:
        raise BundleError(f"{root}: {exc}.") from None
    kind, id_field, model = ("pairs", "pair_id", Pair) if task == PREFERENCE else ("trials", "trial_id", Trial)
    seen: set[str] = set()
    files: list[str] = []
    for i, entry in enumerate(_list(manifest.get(kind), f"{where}: {kind}")):
        at = f"{where}: {kind}[{i}]"
        entry_id = _string(entry.get(id_field) if isinstance(entry, dict) else None, f"{at}.{id_field}",
                           limit=_max_length(model, id_field))  # fmt: skip
        _require(entry_id not in seen, f"{at}.{id_field} {entry_id!r} appears twice.")
        seen.add(entry_id)
        if task == PREFERENCE:
            files.extend(_check_pair(root, entry, at, classes_by_key))
        else:
            files.extend(_check_trial(root, entry, at, classes_by_key, task))
        if progress:
            progress(1)
    return files


def _check_unreferenced(root: Path, files: list[str]) -> None:
    """Every image in the bundle's images/ folder must be one the manifest names (else it is another bundle's)."""
    stray = unreferenced_images(root, files) or []
    _require(
        not stray,
        f"{stray[0] if stray else ''}: image is in the bundle but not in its manifest "
        f"({len(stray)} such files; is manifest.json the one written with these images?).",
    )


def _content_hash(manifest_bytes: bytes, root: Path, files: list[str]) -> str:
    digest = hashlib.sha256(manifest_bytes)
    for name in sorted(set(files)):
        digest.update(name.encode())
        digest.update(hashlib.sha256((root / name).read_bytes()).digest())
    return digest.hexdigest()


def _check_contract(root: Path, manifest: dict[str, Any]) -> None:
    """The bundle contract both stages share (``contracts.bundle``): what the app's own checks above let through."""
    problems = check_manifest(manifest)
    _require(not problems, f"{root}: {problems[0] if problems else ''} ({len(problems)} problem(s) in all; "
                           "`python -m generation validate` lists every one).")


def validate_bundle(folder: str | Path, progress: Callable[[int], None] | None = None) -> ValidatedBundle:
    """Check the whole bundle (manifest fields, references, every image) before anything is written."""
    root = Path(folder)
    manifest, raw = _read_manifest(root)
    where = str(root / "manifest.json")
    version = manifest.get("schema_version")
    _require(version == SCHEMA_VERSION, f"{where}: schema_version is {version!r}; this app reads {SCHEMA_VERSION}.")
    _string(manifest.get("bundle_id"), f"{where}: bundle_id", limit=_max_length(Bundle, "bundle_id"))
    classes_by_key = _check_datasets(manifest, where)
    files = _check_questions(root, manifest, where, classes_by_key, progress)
    _check_unreferenced(root, files)
    _check_contract(root, manifest)
    return ValidatedBundle(root, manifest, _content_hash(raw, root, files), tuple(files))


def clean_image_bytes(path: Path) -> bytes:
    """Re-encode a PNG without metadata (text chunks, EXIF, ICC, comments), keeping only its transparency."""
    with Image.open(path) as image:
        image.load()
        transparency = image.info.get("transparency")
        image.info = {} if transparency is None else {"transparency": transparency}
        out = io.BytesIO()
        image.save(out, IMAGE_FORMAT)
    return out.getvalue()


def _store_images(bundle: ValidatedBundle, saved: list[str], progress: Callable[[int], None] | None) -> dict[str, str]:
    stored: dict[str, str] = {}
    for name in dict.fromkeys(bundle.files):
        data = clean_image_bytes(bundle.root / name)
        # Hex names: unguessable (128 bits) and, unlike base64, unable to spell cam, bla, l2x or lime.
        stored[name] = default_storage.save(f"{STORAGE_DIR}/{secrets.token_hex(16)}.png", ContentFile(data))
        saved.append(stored[name])
        if progress:
            progress(1)
    return stored


def _existing_bundle(study: Study, bundle: ValidatedBundle) -> bool:
    """True if the study already holds this very bundle; raise if it holds another one."""
    current = Bundle.objects.filter(study=study).first()
    if current is None:
        return False
    bundle_id = bundle.manifest["bundle_id"]
    _require(
        current.bundle_id == bundle_id,
        f"study {study.slug!r} already holds bundle {current.bundle_id!r}; import {bundle_id!r} into a new study.",
    )
    _require(
        current.content_sha256 == bundle.content_sha256,
        f"study {study.slug!r} already holds bundle {bundle_id!r} with different content; give the changed bundle a new bundle_id and a new study.",
    )
    return True


def import_bundle(
    bundle: ValidatedBundle,
    study_slug: str,
    *,
    title: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import a validated bundle into the study (created as a draft if missing), all or nothing."""
    _require(bool(SLUG_PATTERN.match(study_slug)), f"--study {study_slug!r} must use only a-z, 0-9, '_' and '-'.")
    saved: list[str] = []
    try:
        with transaction.atomic():
            study, _ = Study.objects.select_for_update().get_or_create(
                slug=study_slug, defaults={"title": title or study_slug}
            )
            if _existing_bundle(study, bundle):
                return ImportResult(study, False, 0, 0)
            stored = _store_images(bundle, saved, progress)
            _create_rows(study, bundle, stored)
    except BaseException:
        for name in saved:
            default_storage.delete(name)
        raise
    return ImportResult(study, True, len(bundle.questions), len(stored), "pairs" if bundle.task == PREFERENCE else "trials")


def _create_rows(study: Study, bundle: ValidatedBundle, stored: dict[str, str]) -> None:
    manifest = bundle.manifest
    record = Bundle.objects.create(
        study=study, bundle_id=manifest["bundle_id"], content_sha256=bundle.content_sha256, manifest=manifest
    )
    datasets = {
        d["key"]: Dataset.objects.create(
            bundle=record, key=d["key"], title=d["title"], task=d["task"], class_names=d["class_names"]
        )
        for d in manifest["datasets"]
    }
    if bundle.task == PREFERENCE:
        _create_pairs(record, manifest, datasets, stored)
        return
    _create_trials(record, manifest, datasets, stored)
    study.task = bundle.task
    if study.instructions == DEFAULT_INSTRUCTIONS:  # the preference study's default: the task's own instead
        study.instructions = DEFAULT_TASK_INSTRUCTIONS[bundle.task]
    study.save(update_fields=["task", "instructions"])


def _with_ids(rows: list, model: type, record: Bundle, id_field: str) -> list:
    """``rows`` as bulk_create returned them, with their primary keys (backends without RETURNING ids)."""
    if any(row.pk is None for row in rows):
        by_id = dict(model.objects.filter(bundle=record).values_list(id_field, "pk"))
        for row in rows:
            row.pk = by_id[getattr(row, id_field)]
    return rows


def _create_trials(record: Bundle, manifest: dict[str, Any], datasets: dict[str, Dataset],
                   stored: dict[str, str]) -> None:  # fmt: skip
    trials = _with_ids(Trial.objects.bulk_create(
        Trial(
            bundle=record, trial_id=t["trial_id"], dataset=datasets[t["dataset"]], image_id=t["image_id"],
            true_class=t["true_class"], predicted_class=t["predicted_class"], model_correct=t["model_correct"],
            method="" if t.get("method") in (None, NO_EXPLANATION) else t["method"], phase=t.get("phase") or "",
            image=stored[t["image_file"]],
        )
        for t in manifest["trials"]
    ), Trial, record, "trial_id")  # fmt: skip
    TrialPanel.objects.bulk_create(
        TrialPanel(trial=trial, class_name=panel[PANEL_CLASS], image=stored[panel[PANEL_FILE]],
                   source_file=panel[PANEL_FILE], order=order)
        for trial, t in zip(trials, manifest["trials"], strict=True)
        for order, panel in enumerate(t.get(PANELS) or [])
    )


def _create_pairs(record: Bundle, manifest: dict[str, Any], datasets: dict[str, Dataset],
                  stored: dict[str, str]) -> None:  # fmt: skip
    pairs = Pair.objects.bulk_create(
        Pair(
            bundle=record,
            pair_id=p["pair_id"],
            question_type=p["question_type"],
            dataset=datasets[p["dataset"]],
            image_id=p["image_id"],
            true_class=p["true_class"],
            predicted_class=p["predicted_class"],
            random_source_image_id=p.get("random_source_image_id") or "",
            image=stored[p["image_file"]] if p.get("image_file") else "",
        )
        for p in manifest["pairs"]
    )
    pairs = _with_ids(pairs, Pair, record, "pair_id")
    Stimulus.objects.bulk_create(
        Stimulus(
            pair=pair,
            method=s["method"],
            image=stored[s["file"]],
            source_file=s["file"],
            explanation_size=s.get("explanation_size"),
            order=order,
        )
        for pair, p in zip(pairs, manifest["pairs"], strict=True)
        for order, s in enumerate(p["stimuli"])
    )
