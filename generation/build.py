"""Build a stimulus bundle: load explanations, plan pairs, render both sides, write the manifest."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from contracts.bundle import IMAGES_DIR, MANIFEST_NAME, SCHEMA_VERSION
from contracts.task import task_phrase
import generation
from generation.atomic import atomic_directory, check_writable
from generation.errors import GenerationError
from generation.explanations import Explanations, load_explanations
from generation.render import RenderSettings, load_display_image, render_overlay, write_png
from generation.design import Comparison, Design
from generation.selection import DatasetInputs, PairPlan, group_by_dataset, resolve_comparisons, select_pairs
from generation.validate import validate_bundle


@dataclass(frozen=True, kw_only=True)
class BundleSettings:
    """What every bundle command shares (`build`, `usefulness`): the explanations files, the output
    folder, the seed, the datasets' wording, the drawing, the run's command line and its checks."""

    explanation_files: tuple[Path, ...]
    out: Path
    seed: int = 0
    titles: Mapping[str, str] = field(default_factory=dict)
    dataset_tasks: Mapping[str, str] = field(default_factory=dict)  # "trained to …" per dataset
    render: RenderSettings = field(default_factory=RenderSettings)
    overwrite: bool = False
    workers: int = 2
    argv: tuple[str, ...] = ()
    allow_unselective: bool = False


@dataclass(frozen=True, kw_only=True)
class BuildOptions(BundleSettings):
    """Everything `build` needs; mirrors the command-line flags."""

    question_types: tuple[str, ...] | None = None
    compare: tuple[str, ...] = ()
    design: str | None = None
    controls: tuple[str, ...] = ()
    per_type: int = 12
    include_misclassified: bool = False

    @property
    def study_design(self) -> Design:
        """The comparisons asked for, as `generation.design` reads them."""
        return Design(compare=self.compare, design=self.design, controls=self.controls,
                      question_types=self.question_types or ())


@dataclass(frozen=True)
class BuildResult:
    """What a build wrote and what the user should know about it."""

    bundle: Path
    manifest: dict[str, Any]
    notes: list[str]

    @property
    def stimulus_count(self) -> int:
        """Number of explanation images (two per pair)."""
        return sum(len(pair["stimuli"]) for pair in self.manifest["pairs"])


@dataclass(frozen=True)
class PairFiles:
    """The opaque names given to one pair: its id, its plain image, and its two stimuli."""

    pair_id: str
    image: str
    sides: tuple[str, str]


class TokenSource:
    """Opaque 32-hex tokens from a generator seeded by the seed and the inputs' digests.

    Deterministic for the same inputs and seed, and different bundles of different inputs do not
    share file names.
    """

    def __init__(self, seed: int, digests: Sequence[str]) -> None:
        entropy = [seed, *(int(d, 16) for d in sorted(digests))]
        self._rng = np.random.default_rng(np.random.SeedSequence(entropy))
        self._issued: set[str] = set()

    def next(self) -> str:
        """A token not issued before by this source."""
        while (token := self._rng.bytes(16).hex()) in self._issued:
            pass
        self._issued.add(token)
        return token


def build_bundle(options: BuildOptions, progress: bool = False) -> BuildResult:
    """Write the bundle described by `options`; raise GenerationError (writing nothing) on bad input."""
    if options.per_type < 1:
        raise GenerationError(f"--per-type {options.per_type} must be at least 1")
    if options.workers < 1:
        raise GenerationError(f"--workers {options.workers} must be at least 1")
    check_writable(options.out, options.overwrite, "bundle")
    files, datasets = load_inputs(options.explanation_files, options.allow_unselective)
    check_wording_keys(datasets, options.titles, options.dataset_tasks)
    wording = {key: dataset_wording(d, options.titles, options.dataset_tasks) for key, d in datasets.items()}
    questions, notes = resolve_comparisons(datasets, options.study_design)
    plans, shortfalls = select_pairs(
        datasets, questions, options.per_type, options.seed, options.include_misclassified
    )
    notes += shortfalls + _unused_file_notes(files, plans)
    notes += [f"dataset '{key}': {note}" for key, (_, _, note) in wording.items() if note]
    check_images_exist((plan.dataset.reference, plan.row) for plan in plans)

    tokens = TokenSource(options.seed, [ex.sha256 for ex in files])
    names = _name_files(plans, tokens)
    with atomic_directory(options.out, options.overwrite) as folder:
        (folder / IMAGES_DIR).mkdir()
        _render_all(plans, names, folder, options, progress)
        manifest = _manifest(options, files, datasets, wording, questions, plans, names)
        write_checked_manifest(folder, manifest)
    return BuildResult(options.out, manifest, notes)


def load_inputs(paths: Sequence[Path], allow_unselective: bool) -> tuple[list[Explanations], dict[str, DatasetInputs]]:
    """Read and check the explanation files, refuse unselective runs (unless allowed), group them by dataset."""
    files = [load_explanations(path) for path in paths]
    if not allow_unselective:
        refuse_unselective(files)
    return files, group_by_dataset(files)


def write_checked_manifest(folder: Path, manifest: Mapping[str, Any]) -> None:
    """Write the manifest into the bundle being built and run the bundle check on the result."""
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", "utf-8")
    problems = validate_bundle(folder)
    if problems:
        raise GenerationError(f"the new bundle failed its own check ({problems[0]}); nothing was written")


def refuse_unselective(files: Sequence[Explanations]) -> None:
    """Refuse the explanations of a run whose hard explanation does not select (issue 25): a study of
    them would ask people to judge background."""
    for ex in files:
        if ex.unselective:
            verdict = ex.selectivity or {}
            reasons = "; ".join(verdict.get("reason_texts") or verdict.get("reasons") or ())
            raise GenerationError(
                f"{ex.path}: the explanations of run {verdict.get('run', '?')} (seed {verdict.get('seed', '?')}) are "
                f"not selective ({reasons}); nothing was written — pass --allow-unselective to build from them anyway")


def _file(tokens: TokenSource) -> str:
    return f"{IMAGES_DIR}/{tokens.next()}.png"


def _name_files(plans: Sequence[PairPlan], tokens: TokenSource) -> list[PairFiles]:
    """Opaque names for every pair; pairs showing the same image share its plain image file."""
    plain: dict[tuple[str, int], str] = {}
    names = []
    for plan in plans:
        pair_id = tokens.next()
        image = plain.setdefault((plan.dataset.key, plan.row), _file(tokens))
        names.append(PairFiles(pair_id, image, (_file(tokens), _file(tokens))))
    return names


def dataset_wording(
    dataset: DatasetInputs, titles: Mapping[str, str], tasks: Mapping[str, str], task_flag: str = "--task"
) -> tuple[str, str, str | None]:
    """Title and task for the question text: flags first, then the files, then a plain default.

    The study shows "Two systems (A and B) were trained to {task}.", so a leading "to " is dropped.
    Returns (title, task, note on what was defaulted or None).
    """
    files = list(dataset.by_method.values())
    title = titles.get(dataset.key) or next((ex.title for ex in files if ex.title), None)
    task = tasks.get(dataset.key) or next((ex.task for ex in files if ex.task), None)
    defaulted = [name for name, value in (("title", title), ("task", task)) if not value]
    classes = dataset.reference.class_names
    if not task:
        task = f"tell {classes[0]} from {classes[1]}" if len(classes) == 2 else f"sort images into {len(classes)} classes"
    task = task_phrase(task)
    title = title or dataset.key
    note = f"no {' or '.join(defaulted)} given, using {title!r} / {task!r} (set --title/{task_flag})" if defaulted else None
    return title, task, note


def check_wording_keys(datasets: Mapping[str, DatasetInputs], titles: Mapping[str, str], tasks: Mapping[str, str],
                       task_flag: str = "--task") -> None:
    """Every dataset a --title or task-phrase flag names is one of the files' datasets."""
    for flag, given in (("--title", titles), (task_flag, tasks)):
        unknown = sorted(set(given) - set(datasets))
        if unknown:
            raise GenerationError(
                f"{flag} names dataset '{unknown[0]}', but the explanation files describe {', '.join(datasets)}"
            )


def _unused_file_notes(files: Sequence[Explanations], plans: Sequence[PairPlan]) -> list[str]:
    used = {(plan.dataset.key, side.source.method) for plan in plans for side in plan.sides}
    return [f"ignoring {ex.path}: method '{ex.method}' is not part of the chosen comparisons"
            for ex in files if (ex.dataset, ex.method) not in used]


def check_images_exist(rows: Iterable[tuple[Explanations, int]]) -> None:
    """Every (file, row) to be shown has its image file on disk; else one sentence naming the first missing."""
    missing = sorted({(str(ex.image_paths[row]), ex.image_ids[row]) for ex, row in rows
                      if not ex.image_paths[row].is_file()})
    if missing:
        path, image_id = missing[0]
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise GenerationError(f"{path}: image file for image id {image_id!r} does not exist{more}")


@dataclass(frozen=True)
class RenderJob:
    """Everything one worker process needs to draw and write one pair's images."""

    image: np.ndarray
    plain_file: Path | None
    sides: tuple[tuple[np.ndarray, bool, Path], ...]
    settings: RenderSettings


def run_render_job(job: RenderJob) -> None:
    """Write the pair's plain image (if it is this job's to write) and both rendered stimuli."""
    if job.plain_file is not None:
        write_png(job.image, job.plain_file)
    for explanation, hard, path in job.sides:
        write_png(render_overlay(job.image, explanation, hard, job.settings), path)


def _render_all(
    plans: Sequence[PairPlan], names: Sequence[PairFiles], folder: Path, options: BuildOptions, progress: bool
) -> None:
    """Render every pair, in worker processes when asked; names are fixed beforehand, so output is deterministic."""
    images = DisplayImages(options.render)
    jobs = []
    for plan, files in zip(plans, names):
        sides = tuple((side.source.maps[side.row], side.source.is_hard, folder / name)
                      for side, name in zip(plan.sides, files.sides))
        path = plan.dataset.reference.image_paths[plan.row]
        jobs.append(RenderJob(images.pixels(path), images.plain_target(folder, files.image), sides, options.render))
    run_render_jobs(jobs, options.workers, progress, "pair")


class DisplayImages:
    """Each image loaded once at the bundle's size, and each plain image file written by one job only."""

    def __init__(self, render: RenderSettings) -> None:
        self._render = render
        self._pixels: dict[Path, np.ndarray] = {}
        self._written: set[str] = set()

    def pixels(self, path: Path) -> np.ndarray:
        """The image at ``path`` as the bundle shows it (size×size RGB)."""
        if path not in self._pixels:
            self._pixels[path] = load_display_image(path, self._render.size, self._render.image_resample)
        return self._pixels[path]

    def plain_target(self, folder: Path, name: str) -> Path | None:
        """Where the first job naming plain image ``name`` writes it; None for every later job."""
        if name in self._written:
            return None
        self._written.add(name)
        return folder / name


def run_render_jobs(jobs: Sequence[RenderJob], workers: int, progress: bool, unit: str) -> None:
    """Run the render jobs, in ``workers`` processes (1: in this one), with a progress bar on a terminal."""
    # disable=None shows the bar only on a terminal, so logs and captured output stay clean
    bar = functools.partial(tqdm, total=len(jobs), desc=f"rendering {unit}s", unit=unit,
                            disable=None if progress else True)
    if workers == 1:
        for _ in bar(map(run_render_job, jobs)):
            pass
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for _ in bar(pool.map(run_render_job, jobs, chunksize=4)):
            pass


def _manifest(
    options: BuildOptions,
    files: Sequence[Explanations],
    datasets: Mapping[str, DatasetInputs],
    wording: Mapping[str, tuple[str, str, str | None]],
    questions: Sequence[Comparison],
    plans: Sequence[PairPlan],
    names: Sequence[PairFiles],
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "generator": generator_record(options.seed, options.argv, {
            "question_types": [q.key for q in questions],
            "design": options.study_design.name,
            "per_type": options.per_type,
            "include_misclassified": options.include_misclassified,
        }),
        "datasets": dataset_records(datasets, wording),
        "pairs": [_pair_entry(plan, files_, options.render) for plan, files_ in zip(plans, names)],
        "provenance": provenance_record(files),
        "render": options.render.as_manifest(),
    }
    return stamped_manifest(body)


def generator_record(seed: int, argv: Sequence[str], settings: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest's ``generator``: this package's version, the seed, the command line and its options."""
    return {"version": generation.__version__, "seed": seed, "argv": list(argv), "options": dict(settings)}


def dataset_records(datasets: Mapping[str, DatasetInputs],
                    wording: Mapping[str, tuple[str, str, str | None]]) -> list[dict[str, Any]]:
    """The manifest's ``datasets``: key, title, task phrase and class names of each."""
    return [{"key": key, "title": wording[key][0], "task": wording[key][1],
             "class_names": list(d.reference.class_names)} for key, d in datasets.items()]


def provenance_record(files: Sequence[Explanations]) -> dict[str, Any]:
    """The manifest's ``provenance``: each explanations file's sha256 and its own provenance."""
    return {"explanations": {str(ex.path): ex.sha256 for ex in files},
            "explanation_provenance": {str(ex.path): ex.provenance for ex in files}}


def stamped_manifest(body: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest: schema version, a bundle id digested from the body, the build time, then the body."""
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32]
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"schema_version": SCHEMA_VERSION, "bundle_id": digest, "created_at": created, **body}


def _pair_entry(plan: PairPlan, files: PairFiles, render: RenderSettings) -> dict[str, Any]:
    reference = plan.dataset.reference
    source = plan.random_source_row
    return {
        "pair_id": files.pair_id,
        "question_type": plan.question_type,
        "dataset": plan.dataset.key,
        "image_id": reference.image_ids[plan.row],
        "true_class": reference.class_names[reference.labels[plan.row]],
        "predicted_class": reference.class_names[plan.sides[0].source.preds[plan.row]],
        "stimuli": [_stimulus_entry(side.method, side.source, side.row, name)
                    for side, name in zip(plan.sides, files.sides)],
        "random_source_image_id": None if source is None else reference.image_ids[source],
        "image_file": files.image,
        "render_id": render.render_id,
    }


def _stimulus_entry(method: str, source: Explanations, row: int, name: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"method": method, "file": name}
    if source.is_hard:
        entry["explanation_size"] = int(np.count_nonzero(source.maps[row]))
    return entry
