"""Choose the images and explanation sides of every pair, including the random-swap control."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from contracts.vocabulary import ANCHOR_METHOD, RANDOM_METHOD
from contracts.vocabulary import QUESTION_TYPES as CONTRACT_TYPES
from generation.errors import GenerationError
from generation.explanations import Explanations



@dataclass(frozen=True)
class QuestionType:
    """A question comparing BLA-T with `rivals` (accepted method keys, preferred first)."""

    key: str
    rivals: tuple[str, ...]

    @property
    def is_random_swap(self) -> bool:
        """True for the sanity control whose other side is another image's BLA-T map."""
        return not self.rivals


# The random-swap control has no rival file: its other side is another image's BLA-T map.
QUESTION_TYPES: dict[str, QuestionType] = {
    key: QuestionType(key, () if rivals == (RANDOM_METHOD,) else rivals) for key, rivals in CONTRACT_TYPES.items()
}


@dataclass(frozen=True)
class DatasetInputs:
    """All explanation files of one dataset, rows aligned to the BLA-T file's image order."""

    key: str
    by_method: dict[str, Explanations]

    @property
    def anchor(self) -> Explanations:
        """The BLA-T explanations every question type compares against."""
        return self.by_method[ANCHOR_METHOD]

    def rival(self, question: QuestionType) -> Explanations | None:
        """The file that supplies the other side of `question`, or None if none is present."""
        return next((self.by_method[m] for m in question.rivals if m in self.by_method), None)


@dataclass(frozen=True)
class Side:
    """One stimulus: the map in row `row` of `source`, shown under the manifest key `method`."""

    method: str
    source: Explanations
    row: int


@dataclass(frozen=True)
class PairPlan:
    """One pair to render: image `row` of `dataset` with two sides."""

    question_type: str
    dataset: DatasetInputs
    row: int
    sides: tuple[Side, Side]
    random_source_row: int | None


def group_by_dataset(files: Sequence[Explanations]) -> dict[str, DatasetInputs]:
    """Group files by dataset, check they describe the same images, and align their rows."""
    grouped: dict[str, dict[str, Explanations]] = {}
    for ex in files:
        methods = grouped.setdefault(ex.dataset, {})
        if ex.method in methods:
            raise GenerationError(
                f"{methods[ex.method].path} and {ex.path} are both '{ex.method}' explanations "
                f"of dataset '{ex.dataset}'; pass one file per method"
            )
        methods[ex.method] = ex
    return {key: _aligned(key, methods) for key, methods in sorted(grouped.items())}


def _aligned(key: str, methods: dict[str, Explanations]) -> DatasetInputs:
    if ANCHOR_METHOD not in methods:
        names = ", ".join(str(ex.path) for ex in methods.values())
        raise GenerationError(
            f"dataset '{key}' has no '{ANCHOR_METHOD}' explanations file (got {names}); "
            "every question type compares against BLA-T"
        )
    anchor = methods[ANCHOR_METHOD]
    index = {image_id: row for row, image_id in enumerate(anchor.image_ids)}
    aligned = {ANCHOR_METHOD: anchor}
    for method, ex in methods.items():
        if method == ANCHOR_METHOD:
            continue
        if set(ex.image_ids) != set(index):
            only = sorted(set(ex.image_ids) ^ set(index))
            raise GenerationError(
                f"{anchor.path} and {ex.path} cover different images of dataset '{key}' "
                f"({len(only)} ids in one but not the other, e.g. {only[0]!r})"
            )
        if ex.class_names != anchor.class_names:
            raise GenerationError(f"{anchor.path} and {ex.path} list different class_names for dataset '{key}'")
        own = {image_id: row for row, image_id in enumerate(ex.image_ids)}
        other = ex.reordered(np.array([own[i] for i in anchor.image_ids], dtype=np.intp))
        disagree = np.flatnonzero(other.labels != anchor.labels)
        if disagree.size:
            raise GenerationError(
                f"{anchor.path} and {ex.path} disagree on the true label of image "
                f"{anchor.image_ids[disagree[0]]!r}"
            )
        aligned[method] = other
    return DatasetInputs(key, aligned)


def resolve_question_types(
    datasets: dict[str, DatasetInputs], requested: Sequence[str] | None
) -> tuple[list[QuestionType], list[str]]:
    """The question types to build and notes on skipped ones.

    Requested types must be buildable for every dataset; without a request, every type whose
    methods all datasets have is built.
    """
    notes: list[str] = []
    chosen: list[QuestionType] = []
    for key in requested if requested is not None else QUESTION_TYPES:
        if key not in QUESTION_TYPES:
            raise GenerationError(f"unknown question type {key!r}; choose from {', '.join(QUESTION_TYPES)}")
        question = QUESTION_TYPES[key]
        lacking = [d.key for d in datasets.values() if not question.is_random_swap and d.rival(question) is None]
        if not lacking:
            chosen.append(question)
        elif requested is not None:
            raise GenerationError(
                f"question type {key} needs a {' or '.join(question.rivals)} explanations file for "
                f"dataset '{lacking[0]}', but none of the given files has one"
            )
        else:
            notes.append(f"skipping {key}: no {' or '.join(question.rivals)} file for dataset '{lacking[0]}'")
    if not chosen:
        raise GenerationError("the given explanation files support none of the question types")
    return chosen, notes


def spread(total: int, capacities: Sequence[int]) -> list[int]:
    """Split `total` over bins as evenly as their capacities allow; earlier bins take any remainder."""
    counts = [0] * len(capacities)
    left = total
    while left > 0:
        open_bins = [i for i, cap in enumerate(capacities) if counts[i] < cap]
        if not open_bins:
            break
        for i in open_bins[:left]:
            counts[i] += 1
        left -= min(left, len(open_bins))
    return counts


def eligible_rows(anchor: Explanations, rival: Explanations | None, include_misclassified: bool) -> np.ndarray:
    """Rows whose image both systems classify the same (and correctly, unless admitted)."""
    ok = np.ones(len(anchor.image_ids), dtype=bool) if rival is None else anchor.preds == rival.preds
    if not include_misclassified:
        ok &= anchor.preds == anchor.labels
    return np.flatnonzero(ok)


def seeded_rng(seed: int, *names: str) -> np.random.Generator:
    """A generator for one named stream, so adding a question type or dataset never shifts another."""
    return np.random.default_rng([seed, *(zlib.crc32(name.encode()) for name in names)])


def select_pairs(
    datasets: dict[str, DatasetInputs],
    questions: Sequence[QuestionType],
    per_type: int,
    seed: int,
    include_misclassified: bool,
) -> tuple[list[PairPlan], list[str]]:
    """Plan `per_type` pairs per question type, spread over datasets then classes; notes on shortfalls."""
    plans: list[PairPlan] = []
    notes: list[str] = []
    for question in questions:
        rng = seeded_rng(seed, question.key)
        pools = {
            key: _class_pools(d, question, include_misclassified, seeded_rng(seed, question.key, key))
            for key, d in datasets.items()
        }
        available = sum(len(rows) for pool in pools.values() for rows in pool)
        if available == 0:
            rule = "agree on the class" if include_misclassified else "agree on the correct class"
            raise GenerationError(
                f"question type {question.key}: no image in dataset(s) {', '.join(datasets)} where both "
                f"systems {rule}, so no pair is possible"
            )
        if available < per_type:
            notes.append(
                f"{question.key}: only {available} of {per_type} pairs possible "
                "(each eligible image is used once)"
            )
        for key, rows in _allocate(pools, per_type, rng).items():
            plans.extend(_plan(question, datasets[key], row, seed) for row in rows)
    return plans, notes


def _class_pools(
    dataset: DatasetInputs, question: QuestionType, include_misclassified: bool, rng: np.random.Generator
) -> list[np.ndarray]:
    """Eligible rows of each predicted class, in seeded random order."""
    anchor = dataset.anchor
    rows = eligible_rows(anchor, dataset.rival(question), include_misclassified)
    return [rng.permutation(rows[anchor.preds[rows] == c]) for c in range(len(anchor.class_names))]


def _allocate(pools: dict[str, list[np.ndarray]], total: int, rng: np.random.Generator) -> dict[str, list[int]]:
    """Take rows evenly over datasets, then evenly over classes within each dataset."""
    keys = list(pools)
    dataset_order = rng.permutation(len(keys))
    capacities = [sum(len(rows) for rows in pools[keys[i]]) for i in dataset_order]
    chosen: dict[str, list[int]] = {}
    for i, count in zip(dataset_order, spread(total, capacities)):
        classes = pools[keys[i]]
        class_order = rng.permutation(len(classes))
        per_class = spread(count, [len(classes[c]) for c in class_order])
        chosen[keys[i]] = [int(r) for c, n in zip(class_order, per_class) for r in classes[c][:n]]
    return {key: chosen[key] for key in keys if chosen[key]}


def _plan(question: QuestionType, dataset: DatasetInputs, row: int, seed: int) -> PairPlan:
    anchor = dataset.anchor
    first = Side(ANCHOR_METHOD, anchor, row)
    if not question.is_random_swap:
        rival = dataset.rival(question)
        assert rival is not None  # guaranteed by resolve_question_types
        return PairPlan(question.key, dataset, row, (first, Side(rival.method, rival, row)), None)
    source = random_source_row(anchor, row, seeded_rng(seed, question.key, dataset.key, anchor.image_ids[row]))
    return PairPlan(question.key, dataset, row, (first, Side(RANDOM_METHOD, anchor, source)), source)


def random_source_row(anchor: Explanations, row: int, rng: np.random.Generator) -> int:
    """Draw another image of the same dataset whose BLA-T map differs from this image's map."""
    own = anchor.maps[row]
    # `row` itself is never a candidate: its map equals its own.
    candidates = np.flatnonzero(np.any(anchor.maps != own, axis=(1, 2)))
    if candidates.size == 0:
        raise GenerationError(
            f"{anchor.path}: no other image of dataset '{anchor.dataset}' has a BLA-T map different from "
            f"image {anchor.image_ids[row]!r}, so the random-swap control is impossible"
        )
    return int(rng.choice(candidates))
