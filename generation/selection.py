"""Choose the images and explanation sides of every pair, including the random-swap control."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from contracts.vocabulary import RANDOM_METHOD, paper_question_types, validate_method_key
from generation.design import Comparison, Design, comparisons, named_question_types
from generation.errors import GenerationError
from generation.explanations import Explanations

# The paper's three question types (BLA-T against CAM or Grad-CAM, L2X-F and a random swap).
QUESTION_TYPES: dict[str, Comparison] = {key: Comparison.of(key) for key in paper_question_types()}


@dataclass(frozen=True)
class DatasetInputs:
    """All explanation files of one dataset, one per method, rows aligned to the first file's image order."""

    key: str
    by_method: dict[str, Explanations]

    @property
    def reference(self) -> Explanations:
        """The first file given: its image ids, paths, labels and class names stand for every file's."""
        return next(iter(self.by_method.values()))

    def side(self, methods: Sequence[str]) -> Explanations | None:
        """The file of the first of ``methods`` this dataset has, or None."""
        return next((self.by_method[m] for m in methods if m in self.by_method), None)

    def supports(self, comparison: Comparison) -> bool:
        """True when this dataset has a file for every side of ``comparison``."""
        return self.side(comparison.first) is not None and (
            comparison.is_random_swap or self.side(comparison.second) is not None)


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
        check_method_key(ex)
        methods = grouped.setdefault(ex.dataset, {})
        if ex.method in methods:
            raise GenerationError(
                f"{methods[ex.method].path} and {ex.path} are both '{ex.method}' explanations "
                f"of dataset '{ex.dataset}'; pass one file per method"
            )
        methods[ex.method] = ex
    return {key: _aligned(key, methods) for key, methods in sorted(grouped.items())}


def check_method_key(ex: Explanations) -> None:
    """A file's method is a method key, and not the one reserved for the random-swap control."""
    try:
        validate_method_key(ex.method)
    except ValueError as exc:
        raise GenerationError(f"{ex.path}: field 'method': {exc}") from None
    if ex.method == RANDOM_METHOD:
        raise GenerationError(f"{ex.path}: field 'method' is {RANDOM_METHOD!r}, which is reserved for the random-swap "
                              "control (build one with --controls METHOD, not with a file)")


def _aligned(key: str, methods: dict[str, Explanations]) -> DatasetInputs:
    reference = next(iter(methods.values()))
    index = {image_id: row for row, image_id in enumerate(reference.image_ids)}
    aligned = {reference.method: reference}
    for method, ex in list(methods.items())[1:]:
        if set(ex.image_ids) != set(index):
            only = sorted(set(ex.image_ids) ^ set(index))
            raise GenerationError(
                f"{reference.path} and {ex.path} cover different images of dataset '{key}' "
                f"({len(only)} ids in one but not the other, e.g. {only[0]!r}); every file of a dataset "
                "must explain the same images"
            )
        if ex.class_names != reference.class_names:
            raise GenerationError(f"{reference.path} and {ex.path} list different class_names for dataset '{key}'")
        own = {image_id: row for row, image_id in enumerate(ex.image_ids)}
        other = ex.reordered(np.array([own[i] for i in reference.image_ids], dtype=np.intp))
        disagree = np.flatnonzero(other.labels != reference.labels)
        if disagree.size:
            raise GenerationError(
                f"{reference.path} and {ex.path} disagree on the true label of image "
                f"{reference.image_ids[disagree[0]]!r}"
            )
        aligned[method] = other
    return DatasetInputs(key, aligned)


def _sides_text(comparison: Comparison, dataset: DatasetInputs) -> str:
    lacking = [side for side in (comparison.first, comparison.second) if side and dataset.side(side) is None]
    return " or ".join(lacking[0])


def resolve_comparisons(datasets: dict[str, DatasetInputs], design: Design) -> tuple[list[Comparison], list[str]]:
    """The comparisons to build and notes on skipped ones.

    A comparison the researcher named must be buildable for every dataset; one that comes from a
    design (the paper's, all pairs) is built for the datasets that have its files and skipped elsewhere.
    """
    methods = list(dict.fromkeys(m for d in datasets.values() for m in d.by_method))
    notes: list[str] = []
    chosen: list[Comparison] = []
    designed = comparisons(design, methods)
    named = named_question_types(design)
    for comparison in designed:
        lacking = [d for d in datasets.values() if not d.supports(comparison)]
        if lacking and comparison.key in named:
            raise GenerationError(
                f"question type {comparison.key} needs a {_sides_text(comparison, lacking[0])} explanations file "
                f"for dataset '{lacking[0].key}', but none of the given files has one"
            )
        if len(lacking) == len(datasets):
            notes.append(f"skipping {comparison.key}: no {_sides_text(comparison, lacking[0])} file for dataset "
                         f"'{lacking[0].key}'")
            continue
        notes += [f"building {comparison.key} without dataset '{d.key}': it has no {_sides_text(comparison, d)} file"
                  for d in lacking]
        chosen.append(comparison)
    if not chosen:
        raise GenerationError("the given explanation files support none of the design's comparisons")
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


def eligible_rows(first: Explanations, second: Explanations | None, include_misclassified: bool) -> np.ndarray:
    """Rows whose image both sides' models classify the same (and correctly, unless admitted)."""
    ok = np.ones(len(first.image_ids), dtype=bool) if second is None else first.preds == second.preds
    if not include_misclassified:
        ok &= first.preds == first.labels
    return np.flatnonzero(ok)


def seeded_rng(seed: int, *names: str) -> np.random.Generator:
    """A generator for one named stream, so adding a question type or dataset never shifts another."""
    return np.random.default_rng([seed, *(zlib.crc32(name.encode()) for name in names)])


def select_pairs(
    datasets: dict[str, DatasetInputs],
    chosen: Sequence[Comparison],
    per_type: int,
    seed: int,
    include_misclassified: bool,
) -> tuple[list[PairPlan], list[str]]:
    """Plan `per_type` pairs per comparison and dataset, spread over classes; notes on shortfalls."""
    plans: list[PairPlan] = []
    notes: list[str] = []
    rule = "agree on the class" if include_misclassified else "agree on the correct class"
    for comparison in chosen:
        cells = [d for d in datasets.values() if d.supports(comparison)]
        found = 0
        for dataset in cells:
            rows = _cell_rows(dataset, comparison, per_type, include_misclassified, seed)
            found += len(rows)
            if len(rows) < per_type:
                notes.append(f"{comparison.key}, dataset '{dataset.key}': only {len(rows)} of {per_type} pairs "
                             f"possible (each eligible image is used once; both systems must {rule})")
            plans.extend(_plan(comparison, dataset, row, seed) for row in rows)
        if found == 0:
            raise GenerationError(
                f"question type {comparison.key}: no image in dataset(s) {', '.join(d.key for d in cells)} where "
                f"both systems {rule}, so no pair is possible"
            )
    return plans, notes


def _cell_rows(dataset: DatasetInputs, comparison: Comparison, count: int, include_misclassified: bool,
               seed: int) -> list[int]:
    """Up to `count` eligible rows of one (comparison, dataset) cell, spread evenly over predicted classes."""
    rng = seeded_rng(seed, comparison.key, dataset.key)
    first = dataset.side(comparison.first)
    assert first is not None  # only supported cells are planned
    second = None if comparison.is_random_swap else dataset.side(comparison.second)
    rows = eligible_rows(first, second, include_misclassified)
    pools = [rng.permutation(rows[first.preds[rows] == c]) for c in range(len(first.class_names))]
    class_order = rng.permutation(len(pools))
    per_class = spread(count, [len(pools[c]) for c in class_order])
    return [int(r) for c, n in zip(class_order, per_class) for r in pools[c][:n]]


def _plan(comparison: Comparison, dataset: DatasetInputs, row: int, seed: int) -> PairPlan:
    first = dataset.side(comparison.first)
    assert first is not None  # only supported cells are planned
    side_a = Side(first.method, first, row)
    if not comparison.is_random_swap:
        second = dataset.side(comparison.second)
        assert second is not None
        return PairPlan(comparison.key, dataset, row, (side_a, Side(second.method, second, row)), None)
    source = random_source_row(first, row, seeded_rng(seed, comparison.key, dataset.key, first.image_ids[row]))
    return PairPlan(comparison.key, dataset, row, (side_a, Side(RANDOM_METHOD, first, source)), source)


def random_source_row(explanations: Explanations, row: int, rng: np.random.Generator) -> int:
    """Draw another image of the same dataset whose map (of the same method) differs from this image's map."""
    own = explanations.maps[row]
    # `row` itself is never a candidate: its map equals its own.
    candidates = np.flatnonzero(np.any(explanations.maps != own, axis=(1, 2)))
    if candidates.size == 0:
        raise GenerationError(
            f"{explanations.path}: no other image of dataset '{explanations.dataset}' has a '{explanations.method}' "
            f"map different from image {explanations.image_ids[row]!r}, so the random-swap control is impossible"
        )
    return int(rng.choice(candidates))
