"""Field names of the explanations file (``bla_core explain`` writes it, ``generation`` reads it; docs/formats.md)."""
from __future__ import annotations

IMAGE_IDS = "image_ids"
IMAGE_PATHS = "image_paths"
LABELS = "labels"
PREDS = "preds"
MAPS = "maps"
METHOD = "method"
CLASS_NAMES = "class_names"
DATASET = "dataset"
PROVENANCE = "provenance"
MAP_KIND = "map_kind"
DATASET_TITLE = "dataset_title"
DATASET_TASK = "dataset_task"
SELECTIVITY = "selectivity"
"""JSON object: the verdict on a run's own hard explanations (bla_core/selectivity.py) — ``selective``
(true/false), ``reasons`` (keys), ``reason_texts``, ``run``, ``seed`` and the mask sizes. Absent (older
files, post-hoc maps such as CAM) means unknown, not unselective."""

REQUIRED_FIELDS: tuple[str, ...] = (IMAGE_IDS, IMAGE_PATHS, LABELS, PREDS, MAPS, METHOD, CLASS_NAMES, DATASET, PROVENANCE)
OPTIONAL_FIELDS: tuple[str, ...] = (MAP_KIND, DATASET_TITLE, DATASET_TASK, SELECTIVITY)
FIELDS: tuple[str, ...] = (*REQUIRED_FIELDS, *OPTIONAL_FIELDS)

HARD, CONTINUOUS = "hard", "continuous"
MAP_KINDS: tuple[str, ...] = (HARD, CONTINUOUS)
"""``map_kind``: a 0/1 mask (BLA's δ, L2X-F's top-k) or continuous weights (CAM, Grad-CAM)."""
