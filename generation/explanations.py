"""Load and check one explanations file (the bla_core → generation contract; fields in contracts/explanations.py,
described in docs/formats.md)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from contracts import explanations as fields
from contracts.explanations import MAP_KINDS, REQUIRED_FIELDS
from generation.errors import GenerationError

_KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True, eq=False)
class Explanations:
    """One (dataset, method) explanations file, checked and with image paths resolved."""

    path: Path
    sha256: str
    dataset: str
    method: str
    image_ids: tuple[str, ...]
    image_paths: tuple[Path, ...]
    labels: np.ndarray
    preds: np.ndarray
    maps: np.ndarray
    class_names: tuple[str, ...]
    map_kind: str
    title: str | None
    task: str | None
    provenance: Any
    selectivity: dict[str, Any] | None = None  # the run's verdict; None: unknown (older file, post-hoc maps)
    class_ids: np.ndarray | None = None  # N×k: the model's top-k classes, the first its prediction; None: not written
    class_maps: np.ndarray | None = None  # N×k×h×w: the method's map of each class of class_ids

    @property
    def unselective(self) -> bool:
        """True only when the file says its run's hard explanations are not selective."""
        return self.selectivity is not None and self.selectivity.get("selective") is False

    @property
    def top_k(self) -> int:
        """How many classes per image the file explains (0 without class maps)."""
        return 0 if self.class_ids is None else int(self.class_ids.shape[1])

    @property
    def is_hard(self) -> bool:
        """True when every map is a 0/1 selection of cells."""
        return self.map_kind == fields.HARD

    def reordered(self, rows: np.ndarray) -> Explanations:
        """The same explanations with rows taken in the given order (to align files by image id)."""
        return dataclasses.replace(
            self,
            image_ids=tuple(self.image_ids[i] for i in rows),
            image_paths=tuple(self.image_paths[i] for i in rows),
            labels=self.labels[rows],
            preds=self.preds[rows],
            maps=self.maps[rows],
            class_ids=None if self.class_ids is None else self.class_ids[rows],
            class_maps=None if self.class_maps is None else self.class_maps[rows],
        )


def load_explanations(path: str | Path) -> Explanations:
    """Read an explanations .npz and check every field; raise GenerationError naming the problem."""
    path = Path(path)
    if not path.is_file():
        raise GenerationError(f"{path}: explanations file does not exist")
    raw = path.read_bytes()
    arrays = _read_npz(path, raw)
    missing = [name for name in REQUIRED_FIELDS if name not in arrays]
    if missing:
        raise GenerationError(f"{path}: missing field(s) {', '.join(missing)}")

    dataset = _string_scalar(path, arrays, fields.DATASET)
    method = _string_scalar(path, arrays, fields.METHOD)
    for field, value in ((fields.DATASET, dataset), (fields.METHOD, method)):
        if not _KEY_PATTERN.match(value):
            raise GenerationError(f"{path}: field '{field}' has an unusable key {value!r}")
    image_ids = _string_vector(path, arrays, fields.IMAGE_IDS)
    count = len(image_ids)
    if count == 0:
        raise GenerationError(f"{path}: field 'image_ids' is empty")
    duplicates = sorted({i for i in image_ids if image_ids.count(i) > 1})
    if duplicates:
        raise GenerationError(f"{path}: field 'image_ids' repeats {duplicates[0]!r}")
    image_paths = _string_vector(path, arrays, fields.IMAGE_PATHS, count)
    class_names = _string_vector(path, arrays, fields.CLASS_NAMES)
    if len(class_names) < 2 or len(set(class_names)) != len(class_names):
        raise GenerationError(f"{path}: field 'class_names' must hold at least two distinct names")
    labels = _class_vector(path, arrays, fields.LABELS, count, len(class_names))
    preds = _class_vector(path, arrays, fields.PREDS, count, len(class_names))
    maps = _maps(path, arrays[fields.MAPS], count)
    map_kind = _map_kind(path, arrays, maps)
    class_ids, class_maps = _class_maps(path, arrays, preds, maps, len(class_names), map_kind)
    return Explanations(
        path=path,
        sha256=hashlib.sha256(raw).hexdigest(),
        dataset=dataset,
        method=method,
        image_ids=image_ids,
        image_paths=tuple(_resolve(path, p) for p in image_paths),
        labels=labels,
        preds=preds,
        maps=maps,
        class_names=class_names,
        map_kind=map_kind,
        title=_optional_string(path, arrays, fields.DATASET_TITLE),
        task=_optional_string(path, arrays, fields.DATASET_TASK),
        provenance=_provenance(arrays[fields.PROVENANCE]),
        selectivity=_selectivity(path, arrays),
        class_ids=class_ids,
        class_maps=class_maps,
    )


def _class_maps(path: Path, arrays: dict[str, np.ndarray], preds: np.ndarray, maps: np.ndarray, classes: int,
                map_kind: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The optional ``class_ids`` (N×k, distinct classes, the first the prediction) and ``class_maps``
    (N×k×h×w, finite, 0/1 for a hard file): both or neither."""
    present = [name for name in (fields.CLASS_IDS, fields.CLASS_MAPS) if name in arrays]
    if not present:
        return None, None
    if len(present) == 1:
        other = fields.CLASS_MAPS if present[0] == fields.CLASS_IDS else fields.CLASS_IDS
        raise GenerationError(f"{path}: field '{present[0]}' is present but '{other}' is missing; they come together")
    ids = _class_ids(path, arrays[fields.CLASS_IDS], preds, classes)
    return ids, _class_map_values(path, arrays[fields.CLASS_MAPS], ids.shape, maps.shape[1:], map_kind)


def _class_ids(path: Path, ids: np.ndarray, preds: np.ndarray, classes: int) -> np.ndarray:
    """``class_ids``: N×k distinct class indices per image, the first one the prediction."""
    count = len(preds)
    if ids.ndim != 2 or ids.dtype.kind not in "iu" or ids.shape[0] != count or not 1 <= ids.shape[1] <= classes:
        raise GenerationError(f"{path}: field 'class_ids' must be integers of shape ({count}, k) with 1 <= k <= "
                              f"{classes}, got {ids.dtype} of shape {ids.shape}")
    ids = ids.astype(np.int64)
    if ((ids < 0) | (ids >= classes)).any():
        raise GenerationError(f"{path}: field 'class_ids' holds a class index outside 0..{classes - 1}")
    if any(len(set(row)) != len(row) for row in ids.tolist()):
        raise GenerationError(f"{path}: field 'class_ids' repeats a class within an image's top-k")
    wrong = np.flatnonzero(ids[:, 0] != preds)
    if wrong.size:
        raise GenerationError(f"{path}: field 'class_ids' of image {int(wrong[0])} does not start with its "
                              "prediction ('preds')")
    return ids


def _class_map_values(path: Path, values: np.ndarray, ids_shape: tuple[int, ...], grid: tuple[int, ...],
                      map_kind: str) -> np.ndarray:
    """``class_maps``: one finite map (of the grid of ``maps``) per class of ``class_ids``."""
    expected = (*ids_shape, *grid)
    if values.shape != expected or values.dtype.kind not in "fiub":
        raise GenerationError(f"{path}: field 'class_maps' must be numbers of shape {expected}, "
                              f"got {values.dtype} of shape {values.shape}")
    values = values.astype(np.float32)
    if not np.isfinite(values).all():
        raise GenerationError(f"{path}: field 'class_maps' holds NaN or infinite values")
    if map_kind == fields.HARD and not np.isin(values, (0.0, 1.0)).all():
        raise GenerationError(f"{path}: field 'map_kind' says 'hard' but 'class_maps' holds values other than 0 and 1")
    return values


def _selectivity(path: Path, arrays: dict[str, np.ndarray]) -> dict[str, Any] | None:
    if fields.SELECTIVITY not in arrays:
        return None
    value = _provenance(arrays[fields.SELECTIVITY])
    if not isinstance(value, dict) or value.get("selective") not in (True, False, None):
        raise GenerationError(f"{path}: field 'selectivity' must be a JSON object with 'selective' true or false")
    return value


def _read_npz(path: Path, raw: bytes) -> dict[str, np.ndarray]:
    try:
        loaded = np.load(io.BytesIO(raw), allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise GenerationError(f"{path}: is a single .npy array, not an .npz explanations file")
        with loaded:
            return {name: loaded[name] for name in loaded.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise GenerationError(f"{path}: not a readable .npz explanations file ({exc})") from None


def _string_scalar(path: Path, arrays: dict[str, np.ndarray], name: str) -> str:
    value = arrays[name]
    if value.ndim != 0 or value.dtype.kind not in "US":
        raise GenerationError(
            f"{path}: field '{name}' must be a string scalar, got {value.dtype} of shape {value.shape}"
        )
    text = value.item()
    return text.decode() if isinstance(text, bytes) else str(text)


def _optional_string(path: Path, arrays: dict[str, np.ndarray], name: str) -> str | None:
    if name not in arrays:
        return None
    return _string_scalar(path, arrays, name).strip() or None


def _string_vector(
    path: Path, arrays: dict[str, np.ndarray], name: str, length: int | None = None
) -> tuple[str, ...]:
    value = arrays[name]
    if value.ndim != 1 or value.dtype.kind not in "US":
        raise GenerationError(
            f"{path}: field '{name}' must be a 1-D string array, got {value.dtype} of shape {value.shape}"
        )
    if length is not None and len(value) != length:
        raise GenerationError(f"{path}: field '{name}' has {len(value)} entries, expected {length}")
    return tuple(v.decode() if isinstance(v, bytes) else str(v) for v in value.tolist())


def _class_vector(
    path: Path, arrays: dict[str, np.ndarray], name: str, length: int, classes: int
) -> np.ndarray:
    value = arrays[name]
    if value.ndim != 1 or value.dtype.kind not in "iu" or len(value) != length:
        raise GenerationError(
            f"{path}: field '{name}' must be {length} integers, got {value.dtype} of shape {value.shape}"
        )
    bad = value[(value < 0) | (value >= classes)]
    if bad.size:
        raise GenerationError(
            f"{path}: field '{name}' holds class index {int(bad[0])}, outside 0..{classes - 1}"
        )
    return value.astype(np.int64)


def _maps(path: Path, value: np.ndarray, count: int) -> np.ndarray:
    if value.ndim != 3 or value.shape[0] != count or value.dtype.kind not in "fiub":
        raise GenerationError(
            f"{path}: field 'maps' must be numbers of shape ({count}, h, w), "
            f"got {value.dtype} of shape {value.shape}"
        )
    if min(value.shape[1:]) < 1:
        raise GenerationError(f"{path}: field 'maps' has an empty grid of shape {value.shape}")
    maps = value.astype(np.float32)
    if not np.isfinite(maps).all():
        raise GenerationError(f"{path}: field 'maps' holds NaN or infinite values")
    return maps


def _map_kind(path: Path, arrays: dict[str, np.ndarray], maps: np.ndarray) -> str:
    binary = bool(np.isin(maps, (0.0, 1.0)).all())
    if fields.MAP_KIND not in arrays:
        return fields.HARD if binary else fields.CONTINUOUS
    kind = _string_scalar(path, arrays, fields.MAP_KIND)
    if kind not in MAP_KINDS:
        raise GenerationError(f"{path}: field 'map_kind' is {kind!r}, expected 'hard' or 'continuous'")
    if kind == fields.HARD and not binary:
        raise GenerationError(f"{path}: field 'map_kind' says 'hard' but 'maps' holds values other than 0 and 1")
    return kind


def _resolve(npz_path: Path, image_path: str) -> Path:
    candidate = Path(image_path)
    return candidate if candidate.is_absolute() else npz_path.parent / candidate


def _provenance(value: np.ndarray) -> Any:
    text = str(value.item()) if value.ndim == 0 else str(value.tolist())
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
