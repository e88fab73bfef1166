"""Build a usefulness bundle (docs/formats.md "Usefulness bundles"): distinction, agreement or forward
simulation trials from the same explanations files as the preference study, misclassified images kept.

Images are chosen once per dataset from one seeded order and shared by every method where the task
allows (distinction: the same images for all; agreement: images every model gets right, or every model
gets wrong, first), so that between methods only the explanation differs. Every panel of every trial is
drawn by the one pipeline of ``generation.render`` with the bundle's one setting.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from contracts.bundle import IMAGES_DIR
from contracts.usefulness import (
    AGREEMENT,
    DEFAULT_CORRECT_SHARE,
    DISTINCTION,
    FORWARD_SIMULATION,
    LEARN,
    MAX_PANELS,
    MIN_PANELS,
    NO_EXPLANATION,
    POST,
    PRE,
    USEFULNESS_TASKS,
)
from generation.atomic import atomic_directory, check_writable
from generation.build import (
    BundleSettings,
    DisplayImages,
    RenderJob,
    TokenSource,
    check_images_exist,
    check_wording_keys,
    dataset_records,
    dataset_wording,
    generator_record,
    load_inputs,
    provenance_record,
    run_render_jobs,
    stamped_manifest,
    write_checked_manifest,
)
from generation.errors import GenerationError
from generation.explanations import Explanations
from generation.render import RenderSettings
from generation.selection import DatasetInputs, seeded_rng, spread

TASK_FLAG = "--dataset-task"  # the "trained to" phrase; --task names the usefulness task here
DEFAULT_SHARES: dict[str, float] = {AGREEMENT: DEFAULT_CORRECT_SHARE}  # other tasks: the images as drawn


@dataclass(frozen=True, kw_only=True)
class UsefulnessOptions(BundleSettings):
    """Everything `python -m generation usefulness` needs; mirrors its flags."""

    task: str
    per_method: int = 12
    k: int | None = None
    correct_share: float | None = None
    pre: int = 6
    learn: int = 6
    post: int = 6

    @property
    def share(self) -> float | None:
        """The share of trials whose prediction is correct: the flag, else the task's default (None: as drawn)."""
        return self.correct_share if self.correct_share is not None else DEFAULT_SHARES.get(self.task)


@dataclass(frozen=True)
class Panel:
    """One explanation of a trial: the class it explains and the map drawn for it."""

    class_index: int
    explanation: np.ndarray
    hard: bool


@dataclass(frozen=True)
class TrialPlan:
    """One trial to render: image ``row`` of ``dataset``, the model's prediction and the panels shown."""

    dataset: DatasetInputs
    row: int
    method: str | None
    phase: str | None
    predicted: int
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class TrialFiles:
    """The opaque names of one trial: its id, its plain image and its panels' files."""

    trial_id: str
    image: str
    panels: tuple[str, ...]


@dataclass(frozen=True)
class UsefulnessResult:
    """What a usefulness build wrote and what the user should know about it."""

    bundle: Path
    manifest: dict[str, Any]
    notes: list[str]


def build_usefulness_bundle(options: UsefulnessOptions, progress: bool = False) -> UsefulnessResult:
    """Write the usefulness bundle described by ``options``; raise GenerationError (writing nothing) on bad input."""
    _check_options(options)
    check_writable(options.out, options.overwrite, "bundle")
    files, datasets = load_inputs(options.explanation_files, options.allow_unselective)
    check_wording_keys(datasets, options.titles, options.dataset_tasks, TASK_FLAG)
    wording = {key: dataset_wording(d, options.titles, options.dataset_tasks, TASK_FLAG) for key, d in datasets.items()}
    plans, arms, notes = plan_trials(datasets, options)
    notes += [f"dataset '{key}': {note}" for key, (_, _, note) in wording.items() if note]
    check_images_exist((plan.dataset.reference, plan.row) for plan in plans)
    tokens = TokenSource(options.seed, [ex.sha256 for ex in files] + [_task_digest(options.task)])
    names = _name_files(plans, tokens)
    with atomic_directory(options.out, options.overwrite) as folder:
        (folder / IMAGES_DIR).mkdir()
        _render_trials(plans, names, folder, options, progress)
        body = {
            "generator": generator_record(options.seed, options.argv, _settings_record(options, datasets)),
            "datasets": dataset_records(datasets, wording),
            "render": options.render.as_manifest(),
            "task": options.task,
            "arms": arms,
            "trials": [_trial_entry(plan, name, options.render) for plan, name in zip(plans, names)],
            "provenance": provenance_record(files),
        }
        manifest = stamped_manifest(body)
        write_checked_manifest(folder, manifest)
    return UsefulnessResult(options.out, manifest, notes)


def _check_options(options: UsefulnessOptions) -> None:
    """One sentence for a task, count or share the build cannot use."""
    if options.task not in USEFULNESS_TASKS:
        raise GenerationError(f"--task {options.task!r} is not a usefulness task; choose one of "
                              f"{', '.join(USEFULNESS_TASKS)} (preference bundles: python -m generation build)")
    counts = (("--per-method", options.per_method), ("--pre", options.pre), ("--learn", options.learn),
              ("--post", options.post), ("--workers", options.workers))
    for flag, value in counts:
        if value < 1:
            raise GenerationError(f"{flag} {value} must be at least 1")
    if options.k is not None and not MIN_PANELS <= options.k <= MAX_PANELS:
        raise GenerationError(f"--k {options.k} must be between {MIN_PANELS} and {MAX_PANELS} panels")
    share = options.correct_share
    if share is not None and not 0.0 <= share <= 1.0:
        raise GenerationError(f"--correct-share {share:g} must be between 0 and 1")


def _task_digest(task: str) -> str:
    """A digest that keeps a usefulness bundle's file names apart from a preference bundle's of the same files."""
    return hashlib.sha256(f"usefulness:{task}".encode()).hexdigest()


def plan_trials(datasets: Mapping[str, DatasetInputs],
                options: UsefulnessOptions) -> tuple[list[TrialPlan], list[str] | None, list[str]]:
    """The trials of the bundle, its arms (forward simulation only, else None) and notes for the user."""
    if options.task == FORWARD_SIMULATION:
        arms = forward_simulation_arms(datasets)
        plans, notes = [], []
        for dataset in datasets.values():
            found, note = _forward_trials(dataset, arms, options)
            plans += found
            notes += [note] if note else []
        return plans, arms, notes
    plans, notes = [], []
    for dataset in datasets.values():
        found, more = _explained_trials(dataset, options)
        plans += found
        notes += more
    return plans, None, notes


def _explained_trials(dataset: DatasetInputs, options: UsefulnessOptions) -> tuple[list[TrialPlan], list[str]]:
    """One dataset's distinction or agreement trials, ``--per-method`` per method, and notes on them."""
    k = panel_count(dataset, options.k) if options.task == DISTINCTION else 1
    plans, notes = [], []
    for ex in dataset.by_method.values():
        plans += [_explained_trial(options.task, dataset, ex, row, k) for row in method_rows(dataset, ex, options)]
        if options.task == DISTINCTION and _class_agnostic(ex, k):
            notes.append(f"{ex.path}: method '{ex.method}' draws one map for every class, so its {k} panels "
                         "look alike and its distinction trials can only be answered at chance")
    return plans, notes


def panel_count(dataset: DatasetInputs, requested: int | None) -> int:
    """Panels per distinction trial: ``--k``, else min(classes, 4); every file must explain that many classes."""
    classes = len(dataset.reference.class_names)
    k = requested if requested is not None else min(classes, MAX_PANELS)
    if k > classes:
        raise GenerationError(f"--k {k} asks for {k} panels, but dataset '{dataset.key}' has only {classes} classes")
    for ex in dataset.by_method.values():
        if ex.class_maps is None:
            raise GenerationError(f"{ex.path}: the file has no class_maps (one map per top-k class), which the "
                                  "distinction task shows; write them with python -m bla_core explain (--top-k)")
        if ex.top_k < k:
            raise GenerationError(f"{ex.path}: the file explains only the top {ex.top_k} classes of each image; "
                                  f"{k} panels need {k} (lower --k or re-run bla_core explain --top-k {k})")
    return k


def _class_agnostic(ex: Explanations, k: int) -> bool:
    """True when the file's k class maps of every image are one map (BLA family, L2X-F)."""
    assert ex.class_maps is not None
    maps = ex.class_maps[:, :k]
    return bool(np.all(maps == maps[:, :1]))


def _order(options: UsefulnessOptions, dataset: DatasetInputs) -> np.ndarray:
    """The one seeded order of a dataset's images that every method's choice follows."""
    return seeded_rng(options.seed, "usefulness", options.task, dataset.key).permutation(
        len(dataset.reference.image_ids))


def strata(count: int, share: float | None) -> list[tuple[bool | None, int]]:
    """How many trials must show a correct (True) or incorrect (False) prediction; (None, count): as drawn."""
    if share is None:
        return [(None, count)]
    correct = int(round(count * share))
    return [(True, correct), (False, count - correct)]


def pick_rows(order: np.ndarray, allowed: np.ndarray, preferred: np.ndarray, labels: np.ndarray,
              count: int) -> list[int]:
    """Up to ``count`` allowed rows: ``preferred`` ones first (the images every method can show), then the
    others, each group spread evenly over true classes and taken in ``order``."""
    first = _spread_rows(order, allowed & preferred, labels, count)
    return first + _spread_rows(order, allowed & ~preferred, labels, count - len(first))


def _spread_rows(order: np.ndarray, allowed: np.ndarray, labels: np.ndarray, count: int) -> list[int]:
    """Up to ``count`` allowed rows spread evenly over true classes (classes in order of first appearance)."""
    classes = list(dict.fromkeys(int(labels[r]) for r in order))
    pools = [[int(r) for r in order if allowed[r] and labels[r] == c] for c in classes]
    taken = spread(max(count, 0), [len(pool) for pool in pools])
    return [r for pool, n in zip(pools, taken) for r in pool[:n]]


def method_rows(dataset: DatasetInputs, ex: Explanations, options: UsefulnessOptions) -> list[int]:
    """The rows one method's distinction or agreement trials show, in the dataset's order."""
    order, labels = _order(options, dataset), dataset.reference.labels
    right = {m: other.preds == labels for m, other in dataset.by_method.items()}
    rows: list[int] = []
    for correct, count in strata(options.per_method, options.share):
        if count == 0:
            continue
        allowed = np.ones(len(labels), bool) if correct is None else right[ex.method] == correct
        shared = np.logical_and.reduce([allowed if correct is None else r == correct for r in right.values()])
        picked = pick_rows(order, allowed, shared, labels, count)
        if len(picked) < count:
            raise GenerationError(_shortage(options, dataset, ex, correct, count, int(allowed.sum())))
        rows += picked
    position = {int(r): i for i, r in enumerate(order)}
    return sorted(rows, key=position.__getitem__)


def _shortage(options: UsefulnessOptions, dataset: DatasetInputs, ex: Explanations, correct: bool | None,
              needed: int, available: int) -> str:
    """The sentence for a method whose file has too few images of one kind for the trials asked for."""
    total = len(ex.image_ids)
    if correct is None:
        return (f"{ex.path}: {options.task} needs {needed} images of dataset '{dataset.key}' for --per-method "
                f"{options.per_method}, but the file explains only {total}; lower --per-method")
    kind = "correctly classified" if correct else "misclassified"
    fix = "raise" if correct is False else "lower"
    return (f"{ex.path}: {options.task} needs {needed} {kind} images of dataset '{dataset.key}' for --per-method "
            f"{options.per_method} at --correct-share {options.share:g}, but the '{ex.method}' model has only "
            f"{available} {kind} of its {total} images; lower --per-method or {fix} --correct-share")


def _explained_trial(task: str, dataset: DatasetInputs, ex: Explanations, row: int, k: int) -> TrialPlan:
    """A distinction trial (k panels, the model's top-k order) or an agreement trial (the prediction's map)."""
    predicted = int(ex.preds[row])
    if task == DISTINCTION:
        assert ex.class_ids is not None and ex.class_maps is not None
        panels = tuple(Panel(int(ex.class_ids[row, j]), ex.class_maps[row, j], ex.is_hard) for j in range(k))
    else:
        panels = (Panel(predicted, ex.maps[row], ex.is_hard),)
    return TrialPlan(dataset, row, ex.method, None, predicted, panels)


def forward_simulation_arms(datasets: Mapping[str, DatasetInputs]) -> list[str]:
    """The arms: every method (each dataset must have them all) and the no-explanation control."""
    methods = list(dict.fromkeys(m for d in datasets.values() for m in d.by_method))
    for dataset in datasets.values():
        lacking = [m for m in methods if m not in dataset.by_method]
        if lacking:
            raise GenerationError(f"forward simulation: dataset '{dataset.key}' has no '{lacking[0]}' explanations "
                                  "file; every arm learns from every dataset, so give each dataset every method")
    if NO_EXPLANATION in methods:
        raise GenerationError(f"a file's method is {NO_EXPLANATION!r}, the name of the no-explanation arm")
    return [*methods, NO_EXPLANATION]


def _forward_trials(dataset: DatasetInputs, arms: Sequence[str],
                    options: UsefulnessOptions) -> tuple[list[TrialPlan], str | None]:
    """Pre, learn and post trials of one dataset on disjoint images that every method's model predicts alike."""
    reference = dataset.reference
    agree = np.logical_and.reduce([ex.preds == reference.preds for ex in dataset.by_method.values()])
    order, free = _order(options, dataset), agree.copy()
    plans: list[TrialPlan] = []
    for phase, count in ((PRE, options.pre), (LEARN, options.learn), (POST, options.post)):
        rows = _phase_rows(dataset, order, free, count, options, phase)
        free[rows] = False
        plans += [trial for row in rows for trial in _phase_trials(dataset, row, phase, arms)]
    left_out = int((~agree).sum())
    note = (f"dataset '{dataset.key}': {left_out} image(s) left out of forward simulation because the methods' models "
            "predict them differently (one model's output is simulated)") if left_out else None
    return plans, note


def _phase_rows(dataset: DatasetInputs, order: np.ndarray, free: np.ndarray, count: int,
                options: UsefulnessOptions, phase: str) -> list[int]:
    """The rows of one forward-simulation phase among the images no earlier phase took."""
    labels = dataset.reference.labels
    right = dataset.reference.preds == labels
    rows: list[int] = []
    for correct, n in strata(count, options.share):
        allowed = free if correct is None else free & (right == correct)
        picked = pick_rows(order, allowed, allowed, labels, n)
        if len(picked) < n:
            kind = "" if correct is None else ("correctly classified " if correct else "misclassified ")
            raise GenerationError(
                f"forward simulation needs {n} {kind}images of dataset '{dataset.key}' for --{phase} {count} "
                f"(--pre {options.pre}, --learn {options.learn}, --post {options.post}, no image in two phases, "
                f"every method's model predicting it alike), but only {int(allowed.sum())} are left; lower the counts")
        rows += picked
    return rows


def _phase_trials(dataset: DatasetInputs, row: int, phase: str, arms: Sequence[str]) -> list[TrialPlan]:
    """A pre or post trial (the image alone), or one learn trial per arm (the method's map; none: no panel)."""
    predicted = int(dataset.reference.preds[row])
    if phase != LEARN:
        return [TrialPlan(dataset, row, None, phase, predicted, ())]
    trials = []
    for arm in arms:
        ex = dataset.by_method.get(arm)
        panels = () if ex is None else (Panel(predicted, ex.maps[row], ex.is_hard),)
        trials.append(TrialPlan(dataset, row, arm, phase, predicted, panels))
    return trials


def _name_files(plans: Sequence[TrialPlan], tokens: TokenSource) -> list[TrialFiles]:
    """Opaque names for every trial; trials of the same image share its plain image file."""
    plain: dict[tuple[str, int], str] = {}
    names = []
    for plan in plans:
        trial_id = tokens.next()
        image = plain.setdefault((plan.dataset.key, plan.row), f"{IMAGES_DIR}/{tokens.next()}.png")
        names.append(TrialFiles(trial_id, image, tuple(f"{IMAGES_DIR}/{tokens.next()}.png" for _ in plan.panels)))
    return names


def _render_trials(plans: Sequence[TrialPlan], names: Sequence[TrialFiles], folder: Path,
                   options: UsefulnessOptions, progress: bool) -> None:
    """Draw every trial's plain image and panels with the bundle's one render setting."""
    images = DisplayImages(options.render)
    jobs = []
    for plan, files in zip(plans, names):
        sides = tuple((panel.explanation, panel.hard, folder / name) for panel, name in zip(plan.panels, files.panels))
        path = plan.dataset.reference.image_paths[plan.row]
        jobs.append(RenderJob(images.pixels(path), images.plain_target(folder, files.image), sides, options.render))
    run_render_jobs(jobs, options.workers, progress, "trial")


def _settings_record(options: UsefulnessOptions, datasets: Mapping[str, DatasetInputs]) -> dict[str, Any]:
    """The generator's effective options: the task, its methods and the counts that made its trials."""
    record: dict[str, Any] = {
        "task": options.task,
        "methods": list(dict.fromkeys(m for d in datasets.values() for m in d.by_method)),
        "correct_share": options.share,
    }
    if options.task == FORWARD_SIMULATION:
        record.update(pre=options.pre, learn=options.learn, post=options.post)
    else:
        record["per_method"] = options.per_method
    if options.task == DISTINCTION:
        record["k"] = {key: panel_count(d, options.k) for key, d in datasets.items()}
    return record


def _trial_entry(plan: TrialPlan, files: TrialFiles, render: RenderSettings) -> dict[str, Any]:
    """One trial of the manifest (docs/formats.md "Usefulness bundles")."""
    reference = plan.dataset.reference
    names = reference.class_names
    true = int(reference.labels[plan.row])
    return {
        "trial_id": files.trial_id,
        "dataset": plan.dataset.key,
        "image_id": reference.image_ids[plan.row],
        "true_class": names[true],
        "predicted_class": names[plan.predicted],
        "model_correct": plan.predicted == true,
        "method": plan.method,
        "phase": plan.phase,
        "image_file": files.image,
        "panels": [{"class": names[panel.class_index], "file": name} for panel, name in zip(plan.panels, files.panels)],
        "render_id": render.render_id,
    }
