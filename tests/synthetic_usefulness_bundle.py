"""A small synthetic usefulness bundle (docs/formats.md, "Usefulness bundles") for tests.

Like ``tests/synthetic_bundle.py`` it needs no model: every image is a tiny seeded-noise PNG. One
bundle holds one task of ``contracts.usefulness``: distinction (k panels, one per top-k class, the
first explaining the prediction), agreement (one panel, correct and incorrect predictions mixed) or
forward simulation (pre / learn / post trials, one learning trial per image and arm).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from contracts.usefulness import DISTINCTION, FORWARD_SIMULATION, LEARN, NO_EXPLANATION, POST, PRE
from tests.synthetic_bundle import _png

DATASETS = (
    {
        "key": "mnist38",
        "title": "Handwritten digits 3 and 8",
        "task": "to tell handwritten 3s from 8s",
        "class_names": ["3", "8"],
    },
    {
        "key": "shapes",
        "title": "Shapes",
        "task": "tell circles, squares and triangles apart",
        "class_names": ["circle", "square", "triangle"],
    },
)
METHODS = ("bla_t", "cam")
ARMS = (*METHODS, NO_EXPLANATION)


class _Writer:
    """Writes the images of one bundle under opaque names and builds its trials."""

    def __init__(self, root: Path, rng: random.Random, image_size: int) -> None:
        self.root, self.rng, self.size = root, rng, image_size
        self.trials: list[dict] = []
        (root / "images").mkdir(parents=True, exist_ok=True)

    def image(self) -> str:
        name = f"images/{self.rng.getrandbits(128):032x}.png"
        _png(self.root / name, self.rng, self.size)
        return name

    def trial(
        self,
        dataset: dict,
        image_no: int,
        *,
        method: str | None,
        phase: str | None,
        panels: list[str],
        predicted: str,
        true: str,
    ) -> None:
        self.trials.append(
            {
                "trial_id": f"{dataset['key']}-t{len(self.trials)}",  # opaque: names no method
                "dataset": dataset["key"],
                "image_id": f"{dataset['key']}-img{image_no}",
                "true_class": true,
                "predicted_class": predicted,
                "model_correct": predicted == true,
                "method": method,
                "phase": phase,
                "image_file": self.image(),
                "panels": [{"class": name, "file": self.image()} for name in panels],
            }
        )


def write_usefulness_bundle(
    folder: str | Path,
    task: str,
    *,
    trials_per_cell: int = 3,
    seed: int = 0,
    bundle_id: str | None = None,
    image_size: int = 8,
    correct_share: float = 0.5,
    pre: int = 2,
    learn: int = 2,
    post: int = 2,
) -> Path:
    """Write a bundle of ``task`` over two datasets (2 and 3 classes) and the methods bla_t and cam.

    distinction / agreement: ``trials_per_cell`` trials per method × dataset. Forward simulation:
    per dataset ``pre`` pre-test, ``learn`` learning images (one trial per arm: bla_t, cam,
    none) and
    ``post`` post-test images, no image in two phases.
    """
    rng = random.Random(seed)
    root = Path(folder)
    writer = _Writer(root, rng, image_size)
    for dataset in DATASETS:
        classes = dataset["class_names"]
        if task == FORWARD_SIMULATION:
            image_no = 0
            for phase, count in ((PRE, pre), (LEARN, learn), (POST, post)):
                for _ in range(count):
                    predicted, true = rng.choice(classes), rng.choice(classes)
                    for arm in ARMS if phase == LEARN else (None,):
                        writer.trial(
                            dataset,
                            image_no,
                            method=arm,
                            phase=phase,
                            predicted=predicted,
                            true=true,
                            panels=[predicted] if arm not in (None, NO_EXPLANATION) else [],
                        )
                    image_no += 1
            continue
        for method in METHODS:
            for i in range(trials_per_cell):
                ranked = rng.sample(
                    classes, len(classes)
                )  # the model's top-k order; ranked[0] is its prediction
                correct = rng.random() < correct_share
                true = ranked[0] if correct else ranked[1]
                panels = ranked if task == DISTINCTION else ranked[:1]
                writer.trial(
                    dataset,
                    i,
                    method=method,
                    phase=None,
                    panels=panels,
                    predicted=ranked[0],
                    true=true,
                )
    manifest = {
        "schema_version": 1,
        "bundle_id": bundle_id or f"synthetic-{task}-{seed}",
        "created_at": "2026-01-01T00:00:00Z",
        "generator": {"version": "tests.synthetic_usefulness_bundle", "seed": seed, "argv": []},
        "datasets": [dict(d) for d in DATASETS],
        "task": task,
        "arms": list(ARMS) if task == FORWARD_SIMULATION else None,
        "trials": writer.trials,
        "provenance": {"explanations": {"synthetic.npz": "0" * 64}},
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return root
