"""Write the explanations file (docs/formats.md) of a trained run for one dataset split."""
from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from contracts import explanations as fields
from contracts.usefulness import MAX_PANELS

from .checkpoints import LoadedRun, load_run, versions
from .errors import BLAError
from .features import stack_labels
from .files import prepare_output_dir, write_atomic
from .methods import CLASSIFIER, TRAINED, Method, keys, lookup
from .model_building import for_backbone
from .selectivity import assess, unselective_warning, warn


def explanation_method(run_method: str, requested: str | None) -> str:
    """The method a run explains with: its own module, CAM for a baseline, or any gradient/library
    method (bla_core.methods says which method explains which runs)."""
    run = lookup(run_method)
    if requested is None:
        return run.default_explanation or run_method
    entry = lookup(requested)
    if (requested == run_method and run.kind == TRAINED) or entry.any_run or (
            entry.baseline_runs_only and run.kind == CLASSIFIER):
        return requested
    only_baseline = ", ".join(f"{key} from a baseline run"
                              for key in keys(lambda m: m.baseline_runs_only))
    raise BLAError(f"a {run_method!r} run cannot give {requested!r} explanations; use its own "
                   f"method, {only_baseline}, or one of {', '.join(keys(lambda m: m.any_run))}")


def run_selectivity(run_dir: Path, run: LoadedRun, labels: np.ndarray, preds: np.ndarray, soft_preds: np.ndarray,
                    masks: np.ndarray) -> dict:
    """The selectivity verdict of the run's own hard explanations of these images (the explanations
    file's ``selectivity`` field); the dead flag comes from the run's metrics.json, False when absent."""
    metrics_path = Path(run_dir) / "metrics.json"
    dead = bool(json.loads(metrics_path.read_text()).get("dead_explainer")) if metrics_path.is_file() else False
    verdict = assess(masks.reshape(len(masks), -1).sum(1), masks[0].size, float((preds == labels).mean()),
                     float((soft_preds == labels).mean()), dead)
    if verdict.selective is False:
        warn(unselective_warning(run.config.method, run.config.seed, str(run_dir), verdict))
    return {"selective": verdict.selective, "reasons": list(verdict.unselective_reasons),
            "reason_texts": verdict.reason_texts(), "run": str(Path(run_dir).resolve()), "seed": run.config.seed,
            **{key: value for key, value in asdict(verdict).items() if key not in ("selective", "unselective_reasons")}}


def image_paths(run: LoadedRun, split: str, out: Path) -> list[str]:
    """The image file of each explanation; images without a file are written as PNG beside ``out``."""
    dataset = run.splits.split(split)
    if dataset.paths is not None:
        return [str(Path(p).resolve()) for p in dataset.paths]
    folder = prepare_output_dir(out.parent / "images" / run.splits.key)
    paths = []
    for index, image_id in enumerate(dataset.image_ids):
        target = folder / f"{image_id}.png"
        if not target.exists():
            write_atomic(target, lambda tmp, i=index: dataset.pil_image(i).save(tmp, format="PNG"))
        paths.append(os.path.relpath(target, out.parent))
    return paths


def top_k_for(requested: int | None, classes: int) -> int:
    """How many classes get their own map: ``requested`` (0: none), by default min(classes, 4)."""
    if requested is None:
        return min(classes, MAX_PANELS)
    if requested < 0 or requested > classes:
        raise BLAError(f"--top-k {requested} must lie between 0 (no class maps) and the {classes} classes "
                       "of the run's dataset")
    return requested


def top_classes(logits: torch.Tensor, preds: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k`` classes of highest score of each image (B, k), the prediction ``preds`` first even
    where scores tie."""
    scores = logits.detach().float().clone()
    scores.scatter_(1, preds.view(-1, 1), float("inf"))
    return scores.topk(k, dim=1).indices


def class_maps(entry: Method, model: torch.nn.Module, images: torch.Tensor, maps: torch.Tensor,
               ids: torch.Tensor) -> torch.Tensor:
    """The maps (B, k, h, w) explaining each class of ``ids``; the first is ``maps`` (the prediction's).

    A class-agnostic method (no ``explain_class``) has one map per image, repeated for every class.
    """
    if entry.explain_class is None:
        return maps.unsqueeze(1).expand(-1, ids.shape[1], *maps.shape[1:])
    others = [entry.explain_class(model, images, ids[:, j]).float() for j in range(1, ids.shape[1])]
    return torch.stack([maps, *others], dim=1)


def _explain_batches(run: LoadedRun, entry: Method, loader: DataLoader, device: torch.device,
                     top_k: int) -> dict[str, list[torch.Tensor]]:
    """Predictions, maps, soft predictions (hard-mask methods) and top-k class ids and maps per batch."""
    out: dict[str, list[torch.Tensor]] = {"preds": [], "maps": [], "soft_preds": [], "ids": [], "class_maps": []}
    for images, _ in tqdm(loader, desc=f"explain {entry.key}", leave=False):
        images = images.to(device)
        p, m = entry.explain(run.model, images)
        if entry.hard_masks:
            with torch.no_grad():
                out["soft_preds"].append(run.model(images, hard=False).logits.argmax(1).cpu())
        if top_k:
            with torch.no_grad():
                ids = top_classes(run.model(images, hard=True).logits, p, top_k)
            out["ids"].append(ids.cpu())
            out["class_maps"].append(class_maps(entry, run.model, images, m.float(), ids).cpu())
        out["preds"].append(p.cpu())
        out["maps"].append(m.float().cpu())
    return out


def explain_run(run_dir: Path, split: str, out: Path, device: torch.device, method: str | None = None,
                batch_size: int = 128, top_k: int | None = None) -> Path:
    """Explain every image of ``split`` with the run's model and write ``out`` (.npz), with the maps
    of the model's ``top_k`` classes (default min(classes, 4); 0: none) for the usefulness tasks."""
    out = Path(out)
    if out.suffix != ".npz":
        raise BLAError(f"the explanations file must end in .npz, got {out}")
    run = load_run(Path(run_dir), device)
    method = explanation_method(run.config.method, method)
    entry = lookup(method)
    top_k = top_k_for(top_k, len(run.splits.class_names))
    dataset = for_backbone(run.splits.split(split), run.model.backbone)
    prepare_output_dir(out.parent)
    workers = min(8, os.cpu_count() or 1) if dataset.paths is not None else 0
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers)
    batches = _explain_batches(run, entry, loader, device, top_k)
    preds, maps = torch.cat(batches["preds"]).numpy(), torch.cat(batches["maps"]).numpy()
    labels = stack_labels(dataset).numpy().astype(np.int64)
    extra = {}
    if entry.hard_masks:
        extra[fields.SELECTIVITY] = np.array(json.dumps(run_selectivity(
            run_dir, run, labels, preds, torch.cat(batches["soft_preds"]).numpy(), maps)))
    if top_k:
        extra[fields.CLASS_IDS] = torch.cat(batches["ids"]).numpy().astype(np.int64)
        extra[fields.CLASS_MAPS] = torch.cat(batches["class_maps"]).numpy().astype(np.float32)
    arrays = {
        fields.IMAGE_IDS: np.array(dataset.image_ids, dtype=str),
        fields.IMAGE_PATHS: np.array(image_paths(run, split, out), dtype=str),
        fields.LABELS: labels,
        fields.PREDS: preds.astype(np.int64),
        fields.MAPS: maps.astype(np.float32),
        fields.METHOD: np.array(method),
        fields.CLASS_NAMES: np.array(run.splits.class_names, dtype=str),
        fields.DATASET: np.array(run.splits.key),
        fields.DATASET_TITLE: np.array(run.splits.title),
        fields.DATASET_TASK: np.array(run.splits.task),
        fields.MAP_KIND: np.array(fields.HARD if entry.hard_masks else fields.CONTINUOUS),
        fields.PROVENANCE: np.array(json.dumps({
            "checkpoint_sha256": run.checkpoint_sha256, "run": str(Path(run_dir).resolve()),
            "config": asdict(run.config), "split": split, "seed": run.config.seed, "versions": versions(),
            **({"explainer": entry.library.record(maps.shape[1:])} if entry.library else {}),
            **({fields.CLASS_AGNOSTIC: entry.explain_class is None} if top_k else {}),
        }, sort_keys=True)),
        **extra,
    }

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)

    write_atomic(out, write)
    return out
