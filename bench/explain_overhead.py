"""How much does the built-in BLA-T explanation cost? Side-by-side timing in one run.

Times, interleaved and repeated, (a) a plain forward pass of the baseline (average pooling),
(b) a forward pass of the BLA-T model that also yields its hard explanation δ and soft weights q,
and (c) Grad-CAM of the baseline (forward + backward to the feature map). Prints the ratios
b/a (target ≤ 1.05) and c/a for the paper's MNIST CNN and for EfficientNet-Lite0 at 224×224.

    .venv/bin/python bench/explain_overhead.py [--repeats 15]
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


def compare(name: str, backbone: torch.nn.Module, x: torch.Tensor, repeats: int) -> dict[str, float]:
    """Fastest time of the three passes, measured interleaved so machine noise hits all alike.

    The minimum is the least noisy estimate of a deterministic workload on a busy machine.
    """
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
    for fn in passes.values():
        fn()  # warm-up
    samples = {key: [] for key in passes}
    for _ in range(repeats):
        for key, fn in passes.items():
            samples[key].append(_once(fn))
    medians = {key: min(values) for key, values in samples.items()}
    plain_s = medians["plain forward"]
    print(f"\n{name}: batch {tuple(x.shape)}, fastest of {repeats} interleaved repeats")
    for key, seconds in medians.items():
        print(f"  {key:<30} {seconds * 1000:9.2f} ms   ratio {seconds / plain_s:5.3f}")
    ratio = medians["forward + BLA-T explanation"] / plain_s
    print(f"  BLA-T explanation / plain forward = {ratio:.3f} (target ≤ 1.05: {'met' if ratio <= 1.05 else 'NOT met'})")
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.manual_seed(0)
    compare("MNIST CNN (paper §4.1)", MnistCNN(), torch.rand(512, 1, 28, 28), args.repeats)
    compare("EfficientNet-Lite0 (224×224)", lite0_backbone(), torch.rand(16, 3, 224, 224), max(9, args.repeats // 2))


if __name__ == "__main__":
    main()
