"""The frozen-feature cache end to end on a photo folder: miss, hit, and an epoch with and without it.

Writes a small synthetic photo folder, then measures side by side in one run:

* miss — decoding, resizing and running the backbone over every image, written to the cache;
* hit — finding the entry again and reading every row of the memory map;
* one BLA-T training epoch from the cache against one that recomputes F(x) for each batch
  (what training would cost every epoch without the cache); prints the speed-up.

    .venv/bin/python bench/feature_cache.py [--images 64] [--backbone efficientnet_b0]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from gpu_check import synthetic_folder  # noqa: E402  (same folder)

from bla_core.datasets import load_dataset  # noqa: E402
from bla_core.feature_cache import cached_features  # noqa: E402
from bla_core.config import TrainConfig, resolve_config  # noqa: E402
from bla_core.feature_split import extract  # noqa: E402
from bla_core.features import stack_labels  # noqa: E402
from bla_core.loop import fit, fit_head  # noqa: E402
from bla_core.model_building import build_model, for_backbone  # noqa: E402


def seconds(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=64, help="photos in the folder (default: %(default)s)")
    parser.add_argument("--backbone", default="efficientnet_b0", help="timm backbone (default: %(default)s)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory(prefix="bla-cache-bench-") as tmp:
        os.environ["BLA_CORE_CACHE"] = str(Path(tmp) / "cache")
        synthetic_folder(Path(tmp) / "photos", args.images, classes=4)
        spec = f"imagefolder:{Path(tmp) / 'photos'}"
        splits = load_dataset(spec)
        config = resolve_config(TrainConfig(dataset=spec, method="bla_t", backbone=args.backbone, weights="none",
                                            epochs=1), splits)
        baseline = build_model(config, splits, "baseline", device)
        miss = seconds(lambda: extract(baseline, splits, device))
        train = for_backbone(splits.train, baseline.backbone)

        def read_everything() -> None:
            hit = cached_features(baseline.backbone, train, device)
            hit.maps.float().sum()

        hit = seconds(read_everything)
        features = extract(baseline, splits, device)
        model = build_model(config, splits, "bla_t", device)
        model.backbone = baseline.backbone
        model.freeze_backbone()
        model.train()
        parameters = [p for p in model.parameters() if p.requires_grad]
        cached_epoch = seconds(lambda: fit_head(model, parameters, features.train, config, 1, device, "cached"))

        def recomputed_epoch() -> None:
            def images(index: torch.Tensor) -> torch.Tensor:
                return torch.stack([train[i][0] for i in index.tolist()]).to(device)

            fit(model, parameters, images, stack_labels(train), config, 1, device, "recomputed")

        uncached_epoch = seconds(recomputed_epoch)
    n = len(splits.train) + len(splits.val)
    print(f"{args.backbone} on {device}, {n} photos ({len(train)} train)")
    print(f"cache miss (decode + resize + F + write): {miss:8.2f} s  ({n / miss:,.1f} images/s)")
    print(f"cache hit (find + read every row):        {hit:8.3f} s  ({miss / hit:,.0f}× faster than the miss)")
    print(f"BLA-T epoch from the cache:               {cached_epoch:8.3f} s")
    print(f"BLA-T epoch recomputing F(x):             {uncached_epoch:8.2f} s  "
          f"→ the cache is {uncached_epoch / cached_epoch:,.0f}× faster per epoch")


if __name__ == "__main__":
    main()
