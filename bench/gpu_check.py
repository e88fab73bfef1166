"""GPU check of the paper-scale path: feature extraction rate, then the §4.2 protocol from the cache.

1. Writes a synthetic photo folder (default 10,000 JPEGs, 120 classes, 224×224) and extracts its
   efficientnet_b0 features into the cache (random weights: the timing is that of pretrained ones),
   reporting images/s.
2. Runs the 5-method protocol (baseline, l2x_f, bla, bla_t, bla_ph; batch 32, Adam) for a few runs
   from the cache and reports seconds per run, once in one process and, with --processes K > 1, with
   K torchrun processes sharing the device.
3. Projects the paper's 3 datasets × 5 methods × 20 runs from the measured cost per sample-epoch
   (A: 18,609 × 2 epochs, B: 12,000 × 5, C: 5,994 × 5 training samples), next to the 10-minute target,
   and the one-time extraction of their 55,630 images.

    bench/gpu_check.sh            # on a GPU machine, fits in 8 minutes
    bench/gpu_check.sh --small    # a CPU-sized smoke run of the same steps
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

PAPER = {"A (cats vs dogs)": (18_609, 4_653, 2), "B (Stanford dogs)": (12_000, 8_580, 5),
         "C (CUB birds)": (5_994, 5_794, 5)}
METHODS = "baseline,l2x_f,bla,bla_t,bla_ph"


def write_images(job: tuple[str, int, int]) -> None:
    """Smooth random colour photos (JPEG, quality 90) for one class folder."""
    from PIL import Image

    folder, count, seed = job
    rng = np.random.default_rng(seed)
    Path(folder).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        small = rng.integers(0, 256, size=(14, 14, 3), dtype=np.uint8)
        Image.fromarray(small).resize((224, 224), Image.Resampling.BICUBIC).save(f"{folder}/{i:05d}.jpg", quality=90)


def synthetic_folder(root: Path, images: int, classes: int) -> None:
    per_class = [images // classes + (1 if c < images % classes else 0) for c in range(classes)]
    jobs = [(str(root / f"class{c:03d}"), n, c) for c, n in enumerate(per_class)]
    with ProcessPoolExecutor(min(16, os.cpu_count() or 1)) as pool:
        list(pool.map(write_images, jobs))


def timed(label: str, command: list[str], env: dict) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{label} failed:\n{done.stderr[-4000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="CPU smoke run: 64 images, 8 classes, 1 run, 1 epoch")
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--classes", type=int, default=120)
    parser.add_argument("--runs", type=int, default=3, help="protocol runs timed (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per model, as B and C (default: %(default)s)")
    parser.add_argument("--processes", type=int, default=2, help="torchrun processes sharing the device for a second "
                        "protocol timing; 1 skips it (default: %(default)s)")
    parser.add_argument("--backbone", default="efficientnet_b0")
    parser.add_argument("--keep", default=None, help="keep the work folder here instead of a temporary one")
    args = parser.parse_args()
    if args.small:
        args.images, args.classes, args.runs, args.epochs = 64, 8, 1, 1

    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    name = torch.cuda.get_device_name(0) if device == "cuda" else f"CPU ({os.cpu_count()} cores)"
    work = Path(args.keep or tempfile.mkdtemp(prefix="bla-gpu-check-"))
    env = {**os.environ, "BLA_CORE_CACHE": str(work / "cache"), "PYTHONPATH": os.environ.get("PYTHONPATH", ".")}
    os.environ["BLA_CORE_CACHE"] = env["BLA_CORE_CACHE"]
    print(f"device: {name}; torch {torch.__version__}; work folder {work}", flush=True)
    try:
        start = time.perf_counter()
        synthetic_folder(work / "photos", args.images, args.classes)
        print(f"wrote {args.images} JPEGs in {time.perf_counter() - start:.1f} s", flush=True)

        from bla_core.datasets import load_dataset
        from bla_core.config import TrainConfig, resolve_config
        from bla_core.devices import resolve_device
        from bla_core.feature_split import extract
        from bla_core.model_building import build_model

        spec = f"imagefolder:{work / 'photos'}"
        start = time.perf_counter()
        splits = load_dataset(spec)
        print(f"listed and decode-checked {len(splits.train) + len(splits.val)} images in "
              f"{time.perf_counter() - start:.1f} s", flush=True)
        config = resolve_config(TrainConfig(dataset=spec, backbone=args.backbone, weights="none"), splits)
        model = build_model(config, splits, "baseline", resolve_device(device))
        start = time.perf_counter()
        extract(model, splits, resolve_device(device))
        if device == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        rate = args.images / seconds
        print(f"feature extraction ({args.backbone}, {'fp16 autocast' if device == 'cuda' else 'fp32'}): "
              f"{rate:,.0f} images/s ({seconds:.1f} s for {args.images})", flush=True)

        common = ["experiment", "--dataset", spec, "--backbone", args.backbone, "--weights", "none", "--methods",
                  METHODS, "--runs", str(args.runs), "--epochs", str(args.epochs), "--device", device]
        one = timed("protocol", [sys.executable, "-m", "bla_core", *common, "--out", str(work / "exp1")], env)
        per_run = one / args.runs
        train = len(splits.train)
        print(f"protocol, 1 process: {per_run:.1f} s per run (5 methods, {train} train × {args.epochs} epochs, "
              f"{len(splits.val)} val; {one:.1f} s for {args.runs} runs incl. start-up)", flush=True)
        per_run_best = per_run
        if args.processes > 1:
            launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                        f"--nproc_per_node={args.processes}", "-m", "bla_core"]
            many = timed("protocol under torchrun", [*launcher, *common, "--out", str(work / "exp2")], env)
            per_run_best = min(per_run, many / args.runs)
            print(f"protocol, {args.processes} processes sharing the device: {many / args.runs:.1f} s per run",
                  flush=True)

        cost = per_run_best / (train * args.epochs + len(splits.val))
        total = 0.0
        print("projection for the paper's §4.2 protocol (20 runs × 5 methods), from the cache:")
        for label, (n_train, n_val, epochs) in PAPER.items():
            seconds = 20 * cost * (n_train * epochs + n_val)
            total += seconds
            print(f"  {label:<18} {seconds / 60:6.1f} min")
        verdict = "within" if total <= 600 else "over"
        images = sum(a + b for a, b, _ in PAPER.values())
        print(f"  total              {total / 60:6.1f} min ({verdict} the 10-minute target); one-time feature "
              f"extraction of the {images:,} images: {images / rate / 60:.1f} min", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
