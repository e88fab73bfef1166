"""Head training from the frozen-feature cache against recomputing features every epoch.

Builds a memory-mapped cache entry of N × 7×7×1280 random features (the shape of EfficientNet-B0
on 224×224 photos; default N = 12,000 as Stanford Dogs' training split), trains heads from it with
the real training loop (batch 32, Adam) and, side by side, measures one training step that first
runs the backbone on the images — what every epoch costs without a cache. Prints samples/s of each
and the speed-up. Target: ≥ 10,000 samples/s for the cached BLA-T head on this 2-core machine.

Each head is timed in one process (all cores as torch threads) and, on the CPU, as the protocol
runs under ``torchrun --nproc_per_node P``: P processes of one thread each, every one training its
own run's head from the same memory-mapped cache at the same time; their samples/s are summed over
the wall time from the first start to the last finish. One process leaves a core idle while Python
dispatches each small operation; P processes fill those gaps.

    .venv/bin/python bench/head_training.py [--samples 12000] [--methods baseline,bla_t] [--processes 2]
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

import numpy as np
import torch

from bla_core.backbones import build_backbone
from bla_core.classifier import ExplainedClassifier, PoolingConfig
from bla_core.methods import build_pooling
from bla_core.feature_cache import CachedFeatures
from bla_core.config import TrainConfig
from bla_core.feature_split import FeatureSplit
from bla_core.loop import fit, fit_head
from bla_core.model_building import glorot_init


def synthetic_cache(folder: Path, samples: int, channels: int, dtype: str, seed: int) -> CachedFeatures:
    """A cache entry like the real one (N, 7, 7, C) + pooled, filled with uniform random features in [0, 1)."""
    rng = np.random.default_rng(seed)
    maps = np.lib.format.open_memmap(folder / "features.npy", mode="w+", dtype=dtype, shape=(samples, 7, 7, channels))
    pooled = np.lib.format.open_memmap(folder / "pooled.npy", mode="w+", dtype=np.float32, shape=(samples, channels))
    for start in range(0, samples, 1000):
        block = rng.random(size=(min(1000, samples - start), 7, 7, channels), dtype=np.float32).astype(dtype)
        maps[start:start + len(block)] = block
        pooled[start:start + len(block)] = block.astype(np.float32).mean(axis=(1, 2))
    maps.flush()
    pooled.flush()
    del maps, pooled
    (folder / "key.json").write_text("{}")
    return CachedFeatures(folder)


class Features(torch.nn.Module):
    """Stand-in F for heads trained from cached features (never called)."""

    trainable = False

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.out_channels = channels


def head_model(method: str, channels: int, classes: int, device: torch.device) -> ExplainedClassifier:
    torch.manual_seed(0)
    pooling = build_pooling(PoolingConfig(method, gamma=0.98 / 49), channels, 49)
    model = ExplainedClassifier(Features(channels), pooling, classes)
    glorot_init(model.head)
    glorot_init(model.pooling)
    return model.to(device).train()


def timed_epochs(method: str, split: FeatureSplit, classes: int, device: torch.device, epochs: int,
                 seed: int = 0, ready=None) -> tuple[float, float]:
    """(start, end) perf-counter times of ``epochs`` epochs of head training from ``split`` after a
    warm-up (and, given a barrier ``ready``, after every other process has warmed up too)."""
    model = head_model(method, split.maps.shape[3], classes, device)
    config = TrainConfig(method=method, batch_size=32, epochs=epochs, seed=seed)
    warm_up = FeatureSplit(split.maps[:512], split.pooled[:512], split.labels[:512])
    fit_head(model, list(model.parameters()), warm_up, config, 1, device, "warm-up")  # one-off lazy set-up
    if ready is not None:
        ready.wait()
    start = time.perf_counter()
    fit_head(model, list(model.parameters()), split, config, epochs, device, method)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return start, time.perf_counter()


def cached_rate(method: str, split: FeatureSplit, classes: int, device: torch.device, epochs: int) -> float:
    """Samples per second of ``epochs`` epochs of head training from the memory-mapped cache."""
    start, end = timed_epochs(method, split, classes, device, epochs)
    return epochs * len(split) / (end - start)


def cached_split(folder: Path, classes: int) -> FeatureSplit:
    """The synthetic cache entry in ``folder`` with its labels (the same in every process)."""
    cache = CachedFeatures(folder)
    labels = torch.from_numpy(np.random.default_rng(1).integers(0, classes, len(cache.pooled)))
    return FeatureSplit(cache.maps, cache.pooled, labels)


def parallel_worker(folder: Path, method: str, classes: int, epochs: int, seed: int,
                    ready) -> tuple[float, float, int]:
    """One single-thread process of :func:`parallel_rate`: its own run's head, timed once all are ready."""
    torch.set_num_threads(1)
    split = cached_split(folder, classes)
    start, end = timed_epochs(method, split, classes, torch.device("cpu"), epochs, seed=seed, ready=ready)
    return start, end, epochs * len(split)


def parallel_rate(folder: Path, method: str, classes: int, epochs: int, processes: int) -> float:
    """Summed samples/s of ``processes`` single-thread processes training heads at the same time."""
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(processes, mp_context=context) as pool:
        ready = manager.Barrier(processes)
        jobs = [pool.submit(parallel_worker, folder, method, classes, epochs, seed, ready) for seed in range(processes)]
        timings = [job.result() for job in jobs]
    return sum(samples for _, _, samples in timings) / (max(t[1] for t in timings) - min(t[0] for t in timings))


def uncached_rate(backbone_name: str, classes: int, device: torch.device, images: int) -> float:
    """Samples per second of training steps that run the backbone on the images first (no cache)."""
    backbone = build_backbone(backbone_name, "none").to(device)
    pooling = build_pooling(PoolingConfig("bla_t", gamma=0.98 / 49), backbone.out_channels, 49)
    model = ExplainedClassifier(backbone, pooling, classes).to(device)
    model.freeze_backbone()
    model.train()
    pixels = torch.rand(images, 3, 224, 224, device=device)
    labels = torch.randint(0, classes, (images,))
    config = TrainConfig(method="bla_t", batch_size=32)
    start = time.perf_counter()
    fit(model, [p for p in model.parameters() if p.requires_grad], pixels.__getitem__, labels,
        config, 1, device, "uncached")
    if device.type == "cuda":
        torch.cuda.synchronize()
    return images / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=12000, help="cached samples (default: %(default)s)")
    parser.add_argument("--channels", type=int, default=1280, help="feature channels (default: %(default)s)")
    parser.add_argument("--classes", type=int, default=120, help="classes (default: %(default)s, Stanford Dogs)")
    parser.add_argument("--methods", default="baseline,bla_t", help="heads to time (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per timed head (default: %(default)s)")
    parser.add_argument("--dtype", default="float16", choices=("float16", "float32"), help="cache storage")
    parser.add_argument("--uncached-images", type=int, default=64, help="images for the uncached step (default: %(default)s)")
    parser.add_argument("--backbone", default="efficientnet_b0", help="backbone of the uncached step")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's choice)")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1,
                        help="single-thread processes timed together on the CPU; 1 skips it (default: %(default)s)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    parallel = device.type == "cpu" and args.processes > 1
    print(f"device {device}, {torch.get_num_threads()} threads; cache {args.samples} × 7×7×{args.channels} {args.dtype}")
    methods = args.methods.split(",")
    with tempfile.TemporaryDirectory(prefix="bla-bench-") as tmp:
        synthetic_cache(Path(tmp), args.samples, args.channels, args.dtype, seed=0)
        split = cached_split(Path(tmp), args.classes)
        rates = {m: cached_rate(m, split, args.classes, device, args.epochs) for m in methods}
        del split
        together = {m: parallel_rate(Path(tmp), m, args.classes, args.epochs, args.processes) for m in methods} \
            if parallel else {}
    uncached = uncached_rate(args.backbone, args.classes, device, args.uncached_images)
    for method in methods:
        best = max(rates[method], together.get(method, 0.0))
        verdict = "meets" if best >= 10_000 else "misses"
        line = f"cached {method:<8} 1 process {rates[method]:>8,.0f} samples/s"
        if parallel:
            line += f"; {args.processes} processes × 1 thread {together[method]:>8,.0f} samples/s"
        print(f"{line}  ({best / uncached:,.0f}× uncached; {verdict} the 10,000/s target)")
    print(f"uncached bla_t ({args.backbone} forward every epoch) {uncached:>8,.1f} samples/s")


if __name__ == "__main__":
    main()
