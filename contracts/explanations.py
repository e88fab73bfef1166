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

CLASS_IDS = "class_ids"
"""int, N×k: the model's top-k classes of each image by score, the first one its prediction."""
CLASS_MAPS = "class_maps"
"""float32, N×k×h×w: the method's map explaining each class of ``class_ids`` (the first one is ``maps``).
A class-agnostic method (one map per image: BLA-family, L2X-F) repeats its map for every class and its
provenance says ``"class_agnostic": true``."""
CLASS_AGNOSTIC = "class_agnostic"  # the provenance key beside class maps: true when every class has one map

REQUIRED_FIELDS: tuple[str, ...] = (IMAGE_IDS, IMAGE_PATHS, LABELS, PREDS, MAPS, METHOD, CLASS_NAMES, DATASET, PROVENANCE)
OPTIONAL_FIELDS: tuple[str, ...] = (MAP_KIND, DATASET_TITLE, DATASET_TASK, SELECTIVITY, CLASS_IDS, CLASS_MAPS)
FIELDS: tuple[str, ...] = (*REQUIRED_FIELDS, *OPTIONAL_FIELDS)

HARD, CONTINUOUS = "hard", "continuous"
MAP_KINDS: tuple[str, ...] = (HARD, CONTINUOUS)
"""``map_kind``: a 0/1 mask (BLA's δ, L2X-F's top-k) or continuous weights (CAM, Grad-CAM)."""
