"""Whether a run's hard explanation is *selective*: the one definition of "unselective" that
``train``, ``experiment``, ``explain`` and ``generation build`` share.

An explanation that selects most of the grid, or whose hard prediction is far worse than the soft
one, does not say what the classifier looked at; a user study of such explanations measures the
wrong thing (issue 25). The verdict lists every reason that applies, by key (:data:`REASONS`).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

LARGE_MASK_SHARE = 0.5
"""A mask is *large* when it selects more than this share of the grid's cells: it then shows more
background than evidence on any object smaller than half the image, and says little about where."""

MOST_IMAGES = 0.5
"""A run has large masks when more than this share of its images have a large mask ("most images"):
a few large masks on cluttered images are fine, a majority means the module does not select."""

ACCURACY_GAP = 0.10
"""Largest tolerated soft − hard accuracy. The hard explanation is the one shown and the one whose
prediction is reported; a gap above 10 points (a mnist38 BLA-T run of seed 17 ended at hard 0.52 /
soft 0.995) means the selected cells do not carry the evidence the soft attention used."""

DEAD, LARGE_MASKS, HARD_BELOW_SOFT = "dead", "large_masks", "hard_below_soft"
REASONS: tuple[str, ...] = (DEAD, LARGE_MASKS, HARD_BELOW_SOFT)
"""Reason keys, in the order they are reported (metrics.json, results.csv, explanations files)."""


@dataclass(frozen=True)
class Selectivity:
    """Mask sizes of a run's hard explanations and the verdict on them.

    ``selective`` is None when there is no explanation module to judge (a baseline's average pooling).
    """

    grid_cells: int
    mean_explanation_size: float
    median_explanation_size: float
    mean_explanation_share: float
    median_explanation_share: float
    large_mask_images: float
    hard_accuracy: float
    soft_accuracy: float
    selective: bool | None
    unselective_reasons: tuple[str, ...]

    def reason_texts(self) -> list[str]:
        """One phrase per reason, with the numbers that triggered it."""
        texts = {
            DEAD: "its explanation module is dead (every cell of every image, or no gradient at the first step)",
            LARGE_MASKS: (f"{self.large_mask_images:.0%} of images select more than half of the {self.grid_cells} "
                          f"cells (median {self.median_explanation_size:g}, mean {self.mean_explanation_size:.1f})"),
            HARD_BELOW_SOFT: (f"hard accuracy {self.hard_accuracy:.3f} is "
                              f"{self.soft_accuracy - self.hard_accuracy:.3f} below soft accuracy "
                              f"{self.soft_accuracy:.3f}"),
        }
        return [texts[reason] for reason in self.unselective_reasons]


def from_metrics(metrics: dict) -> Selectivity:
    """The verdict stored in a run's ``metrics.json`` (or a results.csv row, reasons space-separated)."""
    reasons = metrics.get("unselective_reasons") or ()
    if isinstance(reasons, str):
        reasons = reasons.split()
    return Selectivity(
        grid_cells=int(metrics["grid_cells"]), mean_explanation_size=float(metrics["mean_explanation_size"]),
        median_explanation_size=float(metrics["median_explanation_size"]),
        mean_explanation_share=float(metrics["mean_explanation_share"]),
        median_explanation_share=float(metrics["median_explanation_share"]),
        large_mask_images=float(metrics["large_mask_images"]), hard_accuracy=float(metrics["accuracy"]),
        soft_accuracy=float(metrics["soft_accuracy"]), selective=metrics.get("selective"),
        unselective_reasons=tuple(reasons),
    )


def assess(sizes: np.ndarray, grid_cells: int, hard_accuracy: float, soft_accuracy: float, dead: bool,
           has_module: bool = True) -> Selectivity:
    """Judge hard explanations of ``sizes`` cells each (one per image) on a grid of ``grid_cells``.

    ``dead`` is :func:`bla_core.liveness.is_dead`'s flag; ``has_module`` False (average pooling) gives
    the sizes and no verdict.
    """
    sizes = np.asarray(sizes, dtype=float).ravel()
    if grid_cells < 1 or sizes.size == 0:
        raise ValueError(f"need at least one image and one grid cell, got {sizes.size} images, {grid_cells} cells")
    large = float(np.mean(sizes > LARGE_MASK_SHARE * grid_cells))
    reasons = []
    if has_module:
        if dead:
            reasons.append(DEAD)
        if large > MOST_IMAGES:
            reasons.append(LARGE_MASKS)
        if round(soft_accuracy - hard_accuracy, 9) > ACCURACY_GAP:
            reasons.append(HARD_BELOW_SOFT)
    mean, median = float(sizes.mean()), float(np.median(sizes))
    return Selectivity(
        grid_cells=int(grid_cells), mean_explanation_size=mean, median_explanation_size=median,
        mean_explanation_share=mean / grid_cells, median_explanation_share=median / grid_cells,
        large_mask_images=large, hard_accuracy=float(hard_accuracy), soft_accuracy=float(soft_accuracy),
        selective=(not reasons) if has_module else None, unselective_reasons=tuple(reasons),
    )


def unselective_warning(method: str, seed: int, where: str, verdict: Selectivity) -> str:
    """The one warning line of an unselective run: method, seed, where it lives, and every reason."""
    return (f"warning: the {method} explanation of seed {seed} ({where}) is not selective: "
            + "; ".join(verdict.reason_texts()))


def is_unselective(value: object) -> bool:
    """A stored ``selective`` value (metrics.json bool, or results.csv text) that says "not selective";
    missing or empty means unknown, never unselective."""
    return value is False or value == "False" or (isinstance(value, (bool, np.bool_)) and not value)


def warn(line: str) -> None:
    """Print a warning line on stderr, where it is seen even when the summary goes to a file."""
    print(line, file=sys.stderr, flush=True)
