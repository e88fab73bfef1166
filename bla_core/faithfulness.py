"""Faithfulness (paper §4.3, Table 2): LIME on the 7×7 patch grid against BLA-T and CAM.

For an image x and the baseline model's predicted class ŷ, LIME draws random occlusion patterns
z ∈ {0, 1}^(7·7) (each patch of the 7×7 grid — 32×32 pixels at 224² — kept with probability ½;
the first pattern keeps all), replaces the hidden patches by a fill, records the baseline's
probability of ŷ and fits p ≈ z·w + b by least squares. The 7×7 coefficients w are the LIME
explanation. Its Spearman rank correlation with the BLA-T soft explanation q and with CAM (both 7×7)
is averaged over the images where it is defined (a constant map has none; those are counted).

The fill is black, as the paper describes occlusion (§2, §4.3); ``--fill mean`` uses the backbone's
normalisation mean colour (the neutral input, 0 after normalisation; grey 0.5 for a backbone that
does not normalise) and ``--fill cell`` each patch's own mean colour (LIME's superpixel default).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as nnf
from scipy import stats
from tqdm.auto import tqdm

from .errors import BLAError
from .posthoc import cam
from .files import prepare_output_dir, write_atomic
from .checkpoints import LoadedRun, load_run
from .model_building import for_backbone

FILLS = ("black", "mean", "cell")
CORRELATIONS = ("lime_cam", "lime_bla_t")


def occlusion_patterns(samples: int, cells: int, generator: torch.Generator) -> torch.Tensor:
    """(samples, cells) 0/1 patterns, each cell kept with probability ½; the first keeps every cell."""
    if samples < 2:
        raise BLAError(f"LIME needs at least 2 occlusion samples, got {samples}")
    patterns = torch.bernoulli(torch.full((samples, cells), 0.5), generator=generator)
    patterns[0] = 1.0
    return patterns


def neutral_colour(backbone: torch.nn.Module, channels: int) -> torch.Tensor:
    """The backbone's normalisation mean (grey 0.5 without one), averaged to one value for grey images."""
    mean = getattr(backbone, "mean", None)
    mean = torch.full((3,), 0.5) if mean is None else mean.flatten().float().cpu()
    return mean.mean().view(1) if channels == 1 else mean


def fill_image(image: torch.Tensor, grid: tuple[int, int], fill: str, mean: torch.Tensor) -> torch.Tensor:
    """What a hidden patch shows, shaped like ``image`` (C, H, W): black, the neutral colour ``mean``
    (C values), or each cell's own mean."""
    if fill == "mean":
        return mean.view(-1, 1, 1).expand_as(image)
    if fill == "black":
        return torch.zeros_like(image)
    if fill == "cell":
        cell_means = nnf.adaptive_avg_pool2d(image[None], grid)
        return nnf.interpolate(cell_means, size=image.shape[1:], mode="nearest")[0]
    raise BLAError(f"unknown LIME fill {fill!r}; use one of {', '.join(FILLS)}")


@torch.no_grad()
def lime_scores(
    predict: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, grid: tuple[int, int] = (7, 7),
    samples: int = 1000, generator: torch.Generator | None = None, fill: torch.Tensor | None = None,
    batch_size: int = 250,
) -> np.ndarray:
    """LIME coefficients (grid) of ``predict`` (images → (B,) scores) for one image (C, H, W).

    Least squares of the score on the keep/hide pattern of the grid's patches, with an intercept.
    """
    generator = generator or torch.Generator().manual_seed(0)
    patterns = occlusion_patterns(samples, grid[0] * grid[1], generator)
    fill = torch.zeros_like(image) if fill is None else fill.to(image)
    scores = []
    for chunk in patterns.split(batch_size):
        keep = nnf.interpolate(chunk.view(-1, 1, *grid), size=image.shape[1:], mode="nearest").to(image)
        scores.append(predict(image[None] * keep + fill[None] * (1 - keep)).double().cpu())
    design = torch.cat([patterns.double(), torch.ones(samples, 1, dtype=torch.float64)], dim=1).numpy()
    coefficients, *_ = np.linalg.lstsq(design, torch.cat(scores).numpy(), rcond=None)
    return coefficients[:-1].reshape(grid)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps (NaN when either is constant)."""
    a, b = np.ravel(a), np.ravel(b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(stats.spearmanr(a, b).statistic)


def class_probability(run: LoadedRun, target: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """images → the baseline's softmax probability of class ``target``."""
    def predict(images: torch.Tensor) -> torch.Tensor:
        return torch.softmax(run.model(images, hard=True).logits.float(), dim=1)[:, target]
    return predict


def check_run_folder(run_dir: Path) -> None:
    """Refuse a folder without the baseline/ and bla_t/ runs that Table 2 compares."""
    if not all((Path(run_dir) / name / "checkpoint.pt").is_file() for name in ("baseline", "bla_t")):
        raise BLAError(f"{run_dir} must hold a baseline/ and a bla_t/ run (an experiment's runs/run-NNN folder)")


def run_pair(run_dir: Path, device: torch.device) -> tuple[LoadedRun, LoadedRun]:
    """The baseline and BLA-T runs of an experiment run folder (``…/runs/run-000``)."""
    check_run_folder(run_dir)
    return load_run(Path(run_dir) / "baseline", device), load_run(Path(run_dir) / "bla_t", device)


def faithfulness_of_run(run_dir: Path, device: torch.device, images: int, samples: int, seed: int,
                        fill: str) -> pd.DataFrame:
    """Per validation image: Spearman of LIME with BLA-T's soft q and with CAM (one row per image)."""
    baseline, bla_t = run_pair(run_dir, device)
    if baseline.config.dataset != bla_t.config.dataset:
        raise BLAError(f"the baseline and BLA-T runs in {run_dir} were trained on different datasets")
    dataset = for_backbone(baseline.splits.val, baseline.model.backbone)
    chosen = np.sort(np.random.default_rng(seed).permutation(len(dataset))[:images]) if images else np.arange(len(dataset))
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for index in tqdm(chosen, desc=f"LIME {baseline.splits.key}", unit="image"):
        image = dataset[int(index)][0].to(device)
        with torch.no_grad():
            target = int(baseline.model(image[None], hard=True).logits.argmax(1))
            q = bla_t.model(image[None], hard=True).explanation.weights[0].float().cpu().numpy()
        grid = tuple(q.shape)
        cam_map = cam(baseline.model, image[None], torch.tensor([target], device=device))[0].float().cpu().numpy()
        mean = neutral_colour(baseline.model.backbone, image.shape[0])
        lime = lime_scores(class_probability(baseline, target), image, grid, samples, generator,
                           fill_image(image.cpu(), grid, fill, mean).to(device))
        rows.append({"dataset": baseline.splits.key, "image_id": dataset.image_ids[int(index)], "predicted": target,
                     "fill": fill, "lime_cam": spearman(lime, cam_map), "lime_bla_t": spearman(lime, q)})
    return pd.DataFrame(rows)


def table2_numbers(per_image: pd.DataFrame) -> pd.DataFrame:
    """Per dataset: images, mean of each correlation over the images where it is defined, and the
    number of images where it is undefined (``undefined_lime_cam``, ``undefined_lime_bla_t``)."""
    grouped = per_image.groupby("dataset", sort=False)
    table = grouped[list(CORRELATIONS)].mean().assign(images=grouped["image_id"].count())
    for column in CORRELATIONS:
        table[f"undefined_{column}"] = grouped[column].apply(lambda values: int(values.isna().sum()))
    return table


def table2_markdown(per_image: pd.DataFrame, samples: int, fill: str) -> str:
    """Table 2 of the paper: mean Spearman rank correlation per dataset, with the undefined ones counted."""
    lines = [
        "# Table 2: mean Spearman rank correlation (paper §4.3)",
        "",
        f"LIME of the baseline model ({samples} random occlusion patterns of the 7×7 grid, fill: {fill}, least "
        "squares) against CAM and against the BLA-T soft explanation, mean over the validation images where the "
        "correlation is defined; 'undefined' counts the images where one of the two maps is constant.",
        "",
        "| dataset | images | LIME/CAM | undefined | LIME/BLA-T | undefined |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {row.Index} | {row.images} | {row.lime_cam:.2f} | {row.undefined_lime_cam} | {row.lime_bla_t:.2f} "
              f"| {row.undefined_lime_bla_t} |" for row in table2_numbers(per_image).itertuples()]
    return "\n".join(lines) + "\n"


def faithfulness(run_dirs: list[Path], out_dir: Path, device: torch.device, images: int = 100, samples: int = 1000,
                 seed: int = 0, fill: str = "black") -> Path:
    """Table 2 for one run folder per dataset: writes ``table2.md`` and ``faithfulness.csv`` (per image)."""
    if fill not in FILLS:
        raise BLAError(f"unknown LIME fill {fill!r}; use one of {', '.join(FILLS)}")
    if images < 0:
        raise BLAError(f"--images must be 0 (all) or positive, got {images}")
    for run_dir in run_dirs:
        check_run_folder(run_dir)
    out_dir = prepare_output_dir(Path(out_dir))
    per_image = pd.concat([faithfulness_of_run(Path(r), device, images, samples, seed, fill) for r in run_dirs],
                          ignore_index=True)
    write_atomic(out_dir / "faithfulness.csv", lambda tmp: per_image.to_csv(tmp, index=False))
    write_atomic(out_dir / "table2.md", lambda tmp: tmp.write_text(table2_markdown(per_image, samples, fill)))
    undefined = table2_numbers(per_image)[[f"undefined_{c}" for c in CORRELATIONS]]
    write_atomic(out_dir / "faithfulness.json", lambda tmp: tmp.write_text(json.dumps(
        {"runs": [str(Path(r).resolve()) for r in run_dirs], "images": images, "samples": samples, "seed": seed,
         "fill": fill, "undefined": undefined.to_dict(orient="index")}, indent=2) + "\n"))
    return out_dir / "table2.md"
