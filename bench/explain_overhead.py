"""How much does the built-in BLA-T explanation cost? Side-by-side timing in one run.

Times, interleaved and repeated, (a) a plain forward pass of the baseline (average pooling),
(b) a forward pass of the BLA-T model that also yields its hard explanation δ and soft weights q,
and (c) Grad-CAM of the baseline (forward + backward to the feature map). Prints the ratios
b/a (target ≤ 1.02) and c/a for the paper's MNIST CNN and for EfficientNet-Lite0 at 224×224.

By default the bench runs torch on one thread and reads that thread's CPU clock
(``time.thread_time``): the work a pass does, which other processes on a shared machine do not
inflate (``--clock wall --threads N`` times wall-clock instead). The headline ratio is paired: every round times plain, explained, explained, plain back to back
(ABBA) and takes (b₁ + b₂) / (a₁ + a₂), so both sides of one ratio see the same machine load; the
median over the rounds is reported with its interquartile range. Grad-CAM is timed in rotated order
(fastest of the repeats). The bench also times the two poolings alone on the backbone's feature map
(average pooling + head against BLA-T pooling + head, thousands of paired repeats): their difference
over the plain forward is the explanation's own cost, where the backbone's noise cannot hide it.

    .venv/bin/python bench/explain_overhead.py [--repeats 15] [--rounds 40] [--clock thread|wall] [--threads 1] [--small]
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



CLOCKS = {"thread": time.thread_time, "wall": time.perf_counter}
clock = CLOCKS["thread"]


def _once(fn) -> float:
    start = clock()
    fn()
    return clock() - start


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


def paired_ratios(plain, explained, rounds: int) -> list[float]:
    """Per-round time ratio explained / plain, each round timed ABBA so both share the same load."""
    plain(), explained()  # warm-up
    ratios = []
    for _ in range(rounds):
        a1, b1, b2, a2 = _once(plain), _once(explained), _once(explained), _once(plain)
        ratios.append((b1 + b2) / (a1 + a2))
    return ratios


def quartiles(values: list[float]) -> tuple[float, float, float]:
    """Lower quartile, median and upper quartile."""
    q = torch.quantile(torch.tensor(values, dtype=torch.float64), torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64))
    return tuple(float(v) for v in q)


TARGET = 1.02


def compare(name: str, backbone: torch.nn.Module, x: torch.Tensor, repeats: int, rounds: int) -> float:
    """Paired explained/plain ratio (median of ABBA rounds), Grad-CAM, and the poolings alone."""
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

    fast = fastest({"plain forward": plain, "Grad-CAM": gradcam}, repeats)
    plain_s = fast["plain forward"]
    print(f"\n{name}: batch {tuple(x.shape)}")
    print(f"  plain forward {plain_s * 1000:9.2f} ms, Grad-CAM {fast['Grad-CAM'] * 1000:9.2f} ms "
          f"(ratio {fast['Grad-CAM'] / plain_s:5.3f}; fastest of {repeats} rotated repeats)")
    low, ratio, high = quartiles(paired_ratios(plain, explained, rounds))
    print(f"  forward + BLA-T explanation / plain forward = {ratio:.4f} "
          f"(median of {rounds} ABBA rounds, IQR {low:.4f}–{high:.4f}; target ≤ {TARGET}: {verdict(ratio)})")

    with torch.no_grad():
        features = backbone(x)
    head_rounds = 50 * rounds
    low_h, head_ratio, high_h = quartiles(paired_ratios(lambda: pooled(baseline, features),
                                                        lambda: pooled(bla_t, features), head_rounds))
    heads = fastest({"average": lambda: pooled(baseline, features), "bla_t": lambda: pooled(bla_t, features)},
                    head_rounds)
    own = heads["bla_t"] - heads["average"]
    print(f"  poolings alone: average {heads['average'] * 1000:.3f} ms, BLA-T {heads['bla_t'] * 1000:.3f} ms "
          f"(paired ratio {head_ratio:.3f}, IQR {low_h:.3f}–{high_h:.3f}, {head_rounds} rounds)")
    print(f"  explanation's own cost: {own * 1000:+.3f} ms = {1 + own / plain_s:.4f} × the plain forward "
          f"(target ≤ {TARGET}: {verdict(1 + own / plain_s)})")
    return ratio


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
    parser.add_argument("--rounds", type=int, default=40, help="ABBA rounds of the paired whole-model ratio")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="thread",
                        help="thread: this thread's CPU time (robust to other processes); wall: elapsed time")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (thread clock needs 1)")
    parser.add_argument("--small", action="store_true", help="smoke run: batches of 32 and 2 images, 2 repeats")
    args = parser.parse_args()
    if args.clock == "thread" and args.threads != 1:
        parser.error("--clock thread measures one thread's CPU time: use --threads 1, or --clock wall")
    global clock
    clock = CLOCKS[args.clock]
    torch.set_num_threads(args.threads)
    print(f"clock: {args.clock}, torch threads: {args.threads}")
    mnist_batch, lite0_batch, lite0_repeats = (32, 2, 2) if args.small else (512, 16, max(9, args.repeats // 2))
    repeats, rounds = (2, 3) if args.small else (args.repeats, args.rounds)
    torch.manual_seed(0)
    compare("MNIST CNN (paper §4.1)", MnistCNN(), torch.rand(mnist_batch, 1, 28, 28), repeats, rounds)
    compare("EfficientNet-Lite0 (224×224)", lite0_backbone(), torch.rand(lite0_batch, 3, 224, 224),
            lite0_repeats, max(rounds // 2, 3))


if __name__ == "__main__":
    main()
