"""How much does the built-in BLA-T explanation cost? Side-by-side timing in one run.

Times, interleaved and repeated, (a) a plain forward pass of the baseline (average pooling),
(b) a forward pass of the BLA-T model that also yields its hard explanation δ and soft weights q,
and (c) Grad-CAM of the baseline (forward + backward to the feature map). Prints the ratios
b/a (target ≤ 1.02) and c/a for the paper's MNIST CNN and for EfficientNet-Lite0 at 224×224.

Every repeat runs the passes in a rotated order, so no pass always follows the allocation-heavy
Grad-CAM. On a shared machine the whole-model ratio moves by several per cent from run to run, so
the bench also times the two poolings alone on the backbone's feature map (average pooling + head
against BLA-T pooling + head, thousands of interleaved repeats): their difference over the plain
forward is the explanation's own cost, measured where the backbone's noise cannot hide it.

    .venv/bin/python bench/explain_overhead.py [--repeats 15] [--small]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bla_core.attention import BoundedLogitAttention  # noqa: E402
from bla_core.backbones import MnistCNN  # noqa: E402
from bla_core.classifier import ExplainedClassifier  # noqa: E402
from bla_core.pooling import AveragePooling  # noqa: E402
from bla_core.posthoc import grad_cam  # noqa: E402


def lite0_backbone() -> torch.nn.Module:
    """EfficientNet-Lite0 feature extractor (random weights: only the timing matters here)."""
    import timm

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)

    class Features(torch.nn.Module):
        out_channels = model.num_features

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model.forward_features(x)

    return Features()



def _once(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def fastest(passes: dict, repeats: int) -> dict[str, float]:
    """Fastest time of each pass over ``repeats`` rounds, each round in a rotated order.

    The minimum is the least noisy estimate of a deterministic workload on a busy machine.
    """
    for fn in passes.values():
        fn()  # warm-up
    keys = list(passes)
    samples = {key: [] for key in keys}
    for round_ in range(repeats):
        shift = round_ % len(keys)
        for key in keys[shift:] + keys[:shift]:
            samples[key].append(_once(passes[key]))
    return {key: min(values) for key, values in samples.items()}


TARGET = 1.02


def compare(name: str, backbone: torch.nn.Module, x: torch.Tensor, repeats: int) -> dict[str, float]:
    """Fastest time of the three passes and of the two poolings alone, measured interleaved."""
    channels = backbone.out_channels
    baseline = ExplainedClassifier(backbone, AveragePooling(), 2).eval()
    bla_t = ExplainedClassifier(backbone, BoundedLogitAttention(channels, gamma=0.02), 2).eval()

    def plain():
        with torch.no_grad():
            baseline(x)

    def explained():
        with torch.no_grad():
            out = bla_t(x)
            return out.explanation.mask, out.explanation.weights

    def gradcam():
        grad_cam(baseline, x)

    passes = {"plain forward": plain, "forward + BLA-T explanation": explained, "Grad-CAM": gradcam}
    medians = fastest(passes, repeats)
    plain_s = medians["plain forward"]
    print(f"\n{name}: batch {tuple(x.shape)}, fastest of {repeats} interleaved repeats")
    for key, seconds in medians.items():
        print(f"  {key:<30} {seconds * 1000:9.2f} ms   ratio {seconds / plain_s:5.3f}")
    ratio = medians["forward + BLA-T explanation"] / plain_s
    print(f"  BLA-T explanation / plain forward = {ratio:.3f} (target ≤ {TARGET}: {verdict(ratio)})")

    with torch.no_grad():
        features = backbone(x)
    heads = fastest({"average pooling + head": lambda: pooled(baseline, features),
                     "BLA-T pooling + head": lambda: pooled(bla_t, features)}, 50 * repeats)
    own = heads["BLA-T pooling + head"] - heads["average pooling + head"]
    print(f"  poolings alone, fastest of {50 * repeats}: average {heads['average pooling + head'] * 1000:.3f} ms, "
          f"BLA-T {heads['BLA-T pooling + head'] * 1000:.3f} ms")
    print(f"  explanation's own cost: {own * 1000:+.3f} ms = {1 + own / plain_s:.4f} × the plain forward "
          f"(target ≤ {TARGET}: {verdict(1 + own / plain_s)})")
    return medians


def pooled(model: ExplainedClassifier, features: torch.Tensor) -> None:
    """Pooling and head of ``model`` on a precomputed feature map, as its forward pass runs them."""
    with torch.no_grad():
        out = model.forward_features(features)
        return out.explanation.mask, out.explanation.weights


def verdict(ratio: float) -> str:
    return "met" if ratio <= TARGET else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--small", action="store_true", help="smoke run: batches of 32 and 2 images, 2 repeats")
    args = parser.parse_args()
    mnist_batch, lite0_batch, lite0_repeats = (32, 2, 2) if args.small else (512, 16, max(9, args.repeats // 2))
    repeats = 2 if args.small else args.repeats
    torch.manual_seed(0)
    compare("MNIST CNN (paper §4.1)", MnistCNN(), torch.rand(mnist_batch, 1, 28, 28), repeats)
    compare("EfficientNet-Lite0 (224×224)", lite0_backbone(), torch.rand(lite0_batch, 3, 224, 224), lite0_repeats)


if __name__ == "__main__":
    main()
