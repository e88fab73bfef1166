"""A small synthetic stimulus bundle (DESIGN.md schema 1) for tests, benchmarks and load tests.

Real bundles come from ``python -m generation``; this one needs no model: every stimulus is a tiny
seeded-noise PNG, so a study can be set up in a second anywhere.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

from PIL import Image

QUESTION_TYPES = {"bla_t_vs_cam": "cam", "bla_t_vs_l2x_f": "l2x_f", "bla_t_vs_random": "random"}
DATASETS = (
    {"key": "mnist38", "title": "Handwritten digits 3 and 8", "task": "to tell handwritten 3s from 8s",
     "class_names": ["3", "8"]},
    {"key": "catsdogs", "title": "Cats vs. dogs", "task": "tell cats from dogs", "class_names": ["cat", "dog"]},
)  # fmt: skip


def _png(path: Path, rng: random.Random, size: int) -> None:
    image = Image.new("RGB", (size, size))
    image.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(size * size)])
    image.save(path, "PNG")


def write_synthetic_bundle(
    folder: str | Path,
    *,
    pairs_per_cell: int = 6,
    images_per_dataset: int = 8,
    seed: int = 0,
    bundle_id: str | None = None,
    image_size: int = 8,
) -> Path:
    """Write a bundle with 2 datasets × 3 question types and ``pairs_per_cell`` pairs per cell."""
    rng = random.Random(seed)
    root = Path(folder)
    (root / "images").mkdir(parents=True, exist_ok=True)
    originals: dict[str, str] = {}
    pairs = []
    for dataset in DATASETS:
        for type_no, (question_type, other) in enumerate(QUESTION_TYPES.items()):
            for i in range(pairs_per_cell):
                image_no = (i + 2 * type_no) % images_per_dataset  # cells share some images
                stimuli = []
                for method in ("bla_t", other):
                    name = f"images/{rng.getrandbits(64):032x}.png"
                    _png(root / name, rng, image_size)
                    stimuli.append({"method": method, "file": name})
                stimuli[0]["explanation_size"] = rng.randrange(1, 10)
                if rng.random() < 0.5:
                    stimuli.reverse()
                predicted = rng.choice(dataset["class_names"])
                image_id = f"{dataset['key']}-img{image_no}"
                if image_id not in originals:
                    originals[image_id] = f"images/{rng.getrandbits(64):032x}.png"
                    _png(root / originals[image_id], rng, image_size)
                pairs.append({
                    "pair_id": f"{dataset['key']}-q{type_no}-{i}",  # opaque: a pair id must not name a method
                    "question_type": question_type,
                    "dataset": dataset["key"],
                    "image_id": image_id,
                    "true_class": rng.choice(dataset["class_names"]),
                    "predicted_class": predicted,
                    "stimuli": stimuli,
                    "random_source_image_id": f"{dataset['key']}-img{(image_no + 1) % images_per_dataset}"
                    if other == "random" else None,
                    "image_file": originals[image_id],
                })  # fmt: skip
    manifest = {
        "schema_version": 1,
        "bundle_id": bundle_id or f"synthetic-{seed}",
        "created_at": "2026-01-01T00:00:00Z",
        "generator": {"version": "tests.synthetic_bundle", "seed": seed, "argv": []},
        "datasets": [dict(d) for d in DATASETS],
        "pairs": pairs,
        "provenance": {"explanations": {"synthetic.npz": "0" * 64}},
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return root
