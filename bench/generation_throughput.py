"""Stimuli rendered and written per second by `generation build` at 224×224 (target: ≥ 100/s).

Builds a bundle from synthetic explanation files — 28×28 grayscale digits (upscaled as for MNIST)
and 320×240 RGB photos — in every render style, with one and with two rendering processes, side by
side in one run, and prints each rate and its ratio to the target.

    .venv/bin/python bench/generation_throughput.py [--images 200] [--per-type 150]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from generation.build import BuildOptions, build_bundle
from generation.render import RENDER_STYLES, RenderSettings

TARGET_PER_SECOND = 100.0
GRID = 7


def write_dataset(folder: Path, key: str, count: int, shape: tuple[int, ...], rng: np.random.Generator) -> list[Path]:
    """Write `count` images of `shape` and bla_t / l2x_f / cam explanation files; return the files."""
    (folder / key).mkdir(parents=True)
    ids = [f"{key}-{i:05d}" for i in range(count)]
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    for i, image_id in enumerate(ids):
        smooth = 127 + 100 * np.sin((xx + 7 * i) / 17.0) * np.cos((yy - 3 * i) / 23.0)
        noisy = smooth + rng.normal(0, 12, size=yy.shape)
        pixels = np.clip(noisy if len(shape) == 2 else noisy[..., None] * [1.0, 0.8, 0.6], 0, 255)
        Image.fromarray(pixels.astype(np.uint8)).save(folder / key / f"{image_id}.png")
    labels = rng.integers(0, 2, count)
    logits = rng.normal(size=(count, GRID, GRID))
    hard = {
        "bla_t": (logits >= np.quantile(logits, 0.9, axis=(1, 2), keepdims=True)).astype(np.float32),
        "l2x_f": (logits >= np.sort(logits.reshape(count, -1), axis=1)[:, -8, None, None]).astype(np.float32),
        "cam": logits.astype(np.float32),
    }
    files = []
    for method, maps in hard.items():
        path = folder / f"{key}_{method}.npz"
        np.savez_compressed(
            path, image_ids=np.array(ids), image_paths=np.array([f"{key}/{i}.png" for i in ids]),
            labels=labels, preds=labels, maps=maps, method=np.array(method),
            class_names=np.array(["a", "b"]), dataset=np.array(key),
            provenance=np.array(json.dumps({"bench": True})),
            dataset_title=np.array(key), dataset_task=np.array("tell a from b"),
        )
        files.append(path)
    return files


def measure(files: list[Path], out: Path, per_type: int, style: str, workers: int) -> tuple[int, float, float]:
    """Build one bundle; return (stimuli written, wall seconds, CPU seconds of this process and its workers)."""
    options = BuildOptions(explanation_files=tuple(files), out=out, per_type=per_type, seed=0,
                           render=RenderSettings(style=style, size=224), workers=workers)
    start, cpu_start = time.perf_counter(), _cpu_seconds()
    result = build_bundle(options)
    return result.stimulus_count, time.perf_counter() - start, _cpu_seconds() - cpu_start


def _cpu_seconds() -> float:
    """CPU time of this process plus its finished worker processes."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    """Run the benchmark and print one line per configuration."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200, help="images per synthetic dataset")
    parser.add_argument("--per-type", type=int, default=150, help="pairs per question type")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = write_dataset(folder, "digits", args.images, (28, 28), rng)
        files += write_dataset(folder, "photos", args.images, (240, 320), rng)
        for style in RENDER_STYLES:
            for workers in (1, 2):
                stimuli, seconds, cpu = measure(files, folder / f"bundle-{style}-{workers}", args.per_type, style, workers)
                _report(style, workers, stimuli, seconds, cpu)


def _report(style: str, workers: int, stimuli: int, seconds: float, cpu: float) -> None:
    rate = stimuli / seconds
    print(f"generation build, 224x224, style {style}, {workers} process(es): {stimuli} stimuli in {seconds:.2f} s = "
          f"{rate:.0f} stimuli/s, {rate / TARGET_PER_SECOND:.2f}x the target of {TARGET_PER_SECOND:.0f}/s "
          f"({stimuli / cpu:.0f} stimuli per CPU-second; wall rates drop when other work shares the cores)")


if __name__ == "__main__":
    main()
