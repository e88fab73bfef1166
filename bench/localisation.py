"""Localisation benchmark: do the explanations point at the object that decides the class?

Writes synthetic image folders whose evidence box is known (``bla_core.synthetic``: object on
clutter, object at random positions, evidence object beside a distractor present in both classes;
the class is decidable only from the evidence object), trains each seed with the project's own train
path (``training.train_baseline`` / ``train_explainer``: the frozen bundled ``tf_efficientnet_lite0``
and head training, the photo regime) and scores every method's explanation of the validation images
against the box, per seed:

* accuracy — the hard explanation's for BLA-T and L2X-F, the baseline's for the post-hoc maps;
* mask size — cells of the hard explanation (BLA-T's δ, L2X-F's top-k);
* precision — share of the selected cells that lie inside the box;
* pointing — the pointing game: the map's maximum lies inside the box (ties share the hit: the
  share of the tied maxima inside, i.e. a random tie-break). BLA-T and L2X-F point with their
  module's unbounded 1×1-conv score (the order of the cells in their explanation), the others with
  their map; ``pointing, worse class`` is the pointing of the class where it is lower (a binary task
  can be decided by one object's presence alone, and then the other class's maps point elsewhere);
* energy — share of the map's positive mass inside the box (BLA-T: q, L2X-F: softmax(τ·ℓ)).

A cell (of a 7×7 map, or a pixel of an input-resolution map) is inside the box when at least half of
its area lies in it (``synthetic.cells_inside``). Per method and BLA start the table gives the median
and range over the seeds; ``object share`` is the share of the grid inside the box (the precision of
a mask drawn at random). Library methods (``bla_core.library_methods``) run on the first
``--library-images`` validation images of every seed only, to fit CPU time.

    .venv/bin/python bench/localisation.py [--kinds clutter,positions,distractor] [--seeds 5] [--classes 4]
        [--per-class 500] [--starts small,centred,paper] [--library all|none|a,b] [--out results.csv]
    .venv/bin/python bench/localisation.py --quick   # the test suite's size: 1 kind, 2 seeds, tiny folders
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
from torch import nn

from bla_core.backbones import LITE0
from bla_core.classifier import ExplainedClassifier
from bla_core.config import TrainConfig, resolve_config
from bla_core.datasets import load_dataset
from bla_core.feature_split import batches
from bla_core.features import stack_images
from bla_core.library_methods import LIBRARY_METHODS, library_maps
from bla_core.liveness import BLA_STARTS
from bla_core.model_building import for_backbone
from bla_core.pooling import position_scores
from bla_core.posthoc import cam, grad_cam
from bla_core.synthetic import (
    DEFAULT_CLASSES,
    KINDS,
    EvidenceFolder,
    cells_inside,
    write_evidence_folder,
)
from bla_core.training import train_baseline, train_explainer

COLUMNS = ("kind", "method", "start", "seed", "images", "accuracy", "mask_size", "precision", "pointing",
           "pointing_worst_class", "energy", "object_share")
SCORES = ("accuracy", "mask_size", "precision", "pointing", "pointing_worst_class", "energy")


class FeatureInput(nn.Identity):
    """A backbone whose input already is F's feature map, so CAM and Grad-CAM run on cached features."""

    trainable = False

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.out_channels = channels


def on_features(model: ExplainedClassifier) -> ExplainedClassifier:
    """``model``'s pooling and head behind :class:`FeatureInput` (shares their parameters)."""
    view = ExplainedClassifier(FeatureInput(model.backbone.out_channels), model.pooling, model.classifier.out_features)
    view.head = model.head
    return view.eval()


def pointing(maps: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    """Per image: share of the map's maxima that lie inside (1 or 0 without ties); (B, h, w) → (B,)."""
    flat, box = maps.flatten(1).float(), inside.flatten(1)
    peak = flat == flat.max(dim=1, keepdim=True).values
    return (peak & box).sum(1) / peak.sum(1)


def energy(maps: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    """Per image: share of the map's positive mass inside (NaN for a map without positive mass)."""
    positive = maps.flatten(1).float().clamp(min=0)
    total = positive.sum(1)
    return torch.where(total > 0, (positive * inside.flatten(1)).sum(1) / total, torch.nan)


def precision(masks: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    """Per image: share of the selected cells that lie inside; (B, h, w) bool → (B,)."""
    selected = masks.flatten(1)
    return (selected & inside.flatten(1)).sum(1) / selected.sum(1).clamp(min=1)


@dataclass
class Scored:
    """One method's explanations of a seed's validation images, and whether it classified them right."""

    correct: torch.Tensor
    pointing_map: torch.Tensor  # (B, h, w): the map whose maximum points
    energy_map: torch.Tensor  # (B, h, w): the map whose positive mass is shared out
    masks: torch.Tensor | None = None


def inside_masks(folder: EvidenceFolder, image_ids: list[str], grid: tuple[int, int]) -> torch.Tensor:
    """(N, h, w) bool: the cells of each image's box at the map's resolution."""
    size = (folder.size, folder.size)
    return torch.stack([cells_inside(folder.boxes[i], size, grid) for i in image_ids])


def row(kind: str, method: str, start: str, seed: int, scored: Scored, inside: torch.Tensor,
        labels: torch.Tensor) -> dict:
    """The CSV row of one method on one seed (means over the images; the worst class's pointing too)."""
    hits = pointing(scored.pointing_map, inside)
    values = {"kind": kind, "method": method, "start": start, "seed": seed, "images": len(scored.correct),
              "accuracy": scored.correct.float().mean().item(), "mask_size": np.nan, "precision": np.nan,
              "pointing": hits.mean().item(),
              "pointing_worst_class": min(hits[labels == c].mean().item() for c in labels.unique()),
              "energy": float(np.nanmean(energy(scored.energy_map, inside).cpu().numpy())),
              "object_share": inside.flatten(1).float().mean().item()}
    if scored.masks is not None:
        values["mask_size"] = scored.masks.flatten(1).sum(1).float().mean().item()
        values["precision"] = precision(scored.masks, inside).mean().item()
    return values


@torch.no_grad()
def explained(model: ExplainedClassifier, maps: torch.Tensor, labels: torch.Tensor) -> Scored:
    """BLA-T / L2X-F on feature maps: hard mask, unbounded module score (pointing) and soft weights (energy)."""
    model.eval()
    hard = model.forward_features(maps, hard=True)
    soft = model.forward_features(maps, hard=False).explanation.weights
    scores = position_scores(maps, model.pooling.score)
    return Scored(hard.logits.argmax(1) == labels, scores, soft, hard.explanation.mask)


def posthoc(baseline: ExplainedClassifier, maps: torch.Tensor, labels: torch.Tensor, method: str) -> Scored:
    """CAM or Grad-CAM of the baseline for its predicted class, from the feature maps."""
    view = on_features(baseline)
    with torch.no_grad():
        preds = view(maps, hard=True).logits.argmax(1)
    result = cam(view, maps, preds) if method == "cam" else grad_cam(view, maps, preds)
    return Scored(preds == labels, result, result)


def seed_rows(folder: EvidenceFolder, config: TrainConfig, seed: int, starts: list[str], library: list[str],
              library_images: int, device: torch.device, splits, features) -> tuple[list[dict], object]:
    """Every method's row for one seed; returns the rows and the frozen features (computed once)."""
    config = replace(config, seed=seed)
    baseline, features = train_baseline(replace(config, method="baseline"), splits, device, features)
    val = features.val
    maps = torch.cat([val.gather(i, device, pooled=False).clone() for i in batches(len(val), 128, None)])
    labels = val.labels.to(device)
    grid = tuple(maps.shape[2:])
    inside = inside_masks(folder, splits.val.image_ids, grid).to(device)
    rows = [row(folder.kind, m, "", seed, posthoc(baseline, maps, labels, m), inside, labels) for m in ("cam", "grad_cam")]
    for start in starts:
        trained = train_explainer(replace(config, method="bla_t", bla_start=start), splits, baseline, features, device)
        rows.append(row(folder.kind, "bla_t", start, seed, explained(trained.model, maps, labels), inside, labels))
    l2x = train_explainer(replace(config, method="l2x_f"), splits, baseline, features, device)
    rows.append(row(folder.kind, "l2x_f", "", seed, explained(l2x.model, maps, labels), inside, labels))
    if library:
        count = min(library_images, len(val))
        images = stack_images(torch.utils.data.Subset(for_backbone(splits.val, baseline.backbone), range(count)))
        images = images.to(device)
        for method in library:
            preds, result = library_maps(baseline, images, method)
            box = inside_masks(folder, splits.val.image_ids[:count], tuple(result.shape[1:])).to(device)
            rows.append(row(folder.kind, method, "", seed, Scored(preds == labels[:count], result, result), box,
                            labels[:count]))
    return rows, features


def run(kinds: list[str], seeds: int, per_class: int, starts: list[str], library: list[str], library_images: int,
        work: Path, epochs: int | None, device: torch.device, classes: int = DEFAULT_CLASSES) -> list[dict]:
    """All rows: every kind × seed × method (BLA-T once per start)."""
    rows = []
    for kind in kinds:
        folder = write_evidence_folder(work / kind, kind, per_class, seed=0, classes=classes)
        splits = load_dataset(folder.spec)
        config = resolve_config(TrainConfig(dataset=folder.spec, backbone=LITE0, weights="bundled", epochs=epochs),
                                splits)
        features = None
        for seed in range(seeds):
            seed_result, features = seed_rows(folder, config, seed, starts, library, library_images, device, splits,
                                              features)
            rows += seed_result
            print(f"{kind} seed {seed}: done", file=sys.stderr, flush=True)
    return rows


def summary(rows: list[dict]) -> str:
    """The printed table: median (min–max) over seeds per kind, method and start."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["kind"], r["method"], r["start"]), []).append(r)
    lines = ["| kind | method | start | seeds | images/seed | accuracy | mask size | precision | pointing | "
             "pointing, worse class | energy | object share |", "|" + "---|" * 12]
    for (kind, method, start), members in groups.items():
        cells = []
        for score in (*SCORES, "object_share"):
            values = np.array([m[score] for m in members], dtype=float)
            if np.isnan(values).all():
                cells.append("—")
            else:
                cells.append(f"{np.nanmedian(values):.2f} ({np.nanmin(values):.2f}–{np.nanmax(values):.2f})")
        lines.append(f"| {kind} | {method} | {start or '—'} | {len(members)} | {members[0]['images']} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_list(text: str, allowed: tuple[str, ...] | list[str], what: str) -> list[str]:
    """Comma-separated names, each one of ``allowed`` (clear error otherwise)."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise SystemExit(f"error: unknown {what} {', '.join(unknown)}; choose from {', '.join(allowed)}")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinds", default=",".join(KINDS), help="synthetic folder kinds (default: all)")
    parser.add_argument("--seeds", type=int, default=5, help="training seeds 0..N-1 (default: %(default)s)")
    parser.add_argument("--per-class", type=int, default=500, help="images per class (default: %(default)s)")
    parser.add_argument("--classes", type=int, default=4,
                        help="object classes per folder, 2-4 (default: %(default)s, many classes as photo datasets have)")
    parser.add_argument("--starts", default=",".join(BLA_STARTS), help="BLA-T starts side by side (default: all)")
    parser.add_argument("--library", default="all", help="library methods: all, none or a comma list (default: all)")
    parser.add_argument("--library-images", type=int, default=8,
                        help="validation images per seed for the library methods (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=None, help="head epochs (default: the dataset's, 5)")
    parser.add_argument("--work", default=None, help="folder for the synthetic images (default: a temporary one)")
    parser.add_argument("--out", default=None, help="also write one row per kind, method, start and seed to this CSV")
    parser.add_argument("--quick", action="store_true",
                        help="test size: clutter only, 2 seeds, 12 images per class, 2 library images, no Score-CAM")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.quick:
        args.kinds, args.seeds, args.per_class, args.library_images = "clutter", 2, 12, 2
        if args.library == "all":
            args.library = ",".join(m for m in LIBRARY_METHODS if m != "score_cam")
    kinds = parse_list(args.kinds, KINDS, "kind")
    starts = parse_list(args.starts, BLA_STARTS, "start")
    library = [] if args.library == "none" else (
        list(LIBRARY_METHODS) if args.library == "all" else parse_list(args.library, list(LIBRARY_METHODS), "method"))
    if args.seeds < 1 or args.per_class < 5:
        raise SystemExit("error: --seeds must be at least 1 and --per-class at least 5")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        rows = run(kinds, args.seeds, args.per_class, starts, library, args.library_images, work, args.epochs,
                   torch.device("cpu"), args.classes)
    print(summary(rows))
    if args.out:
        with open(args.out, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
