"""The bla_core benchmarks run end to end at a tiny size and print every figure they promise.

A GPU session has one try at ``bench/gpu_check.sh``; these runs keep it and the head-training
bench working on the CPU. Speeds are not asserted here (see the benchmarks themselves).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RATE = r"([\d,]+(?:\.\d+)?)"


def run(command: list[str], tmp_path: Path) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "BLA_CORE_CACHE": str(tmp_path / "cache"), "PYTHON": sys.executable}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def number(text: str) -> float:
    return float(text.replace(",", ""))


@pytest.mark.slow
def test_head_training_bench_times_one_process_and_one_per_core(tmp_path):
    out = run([sys.executable, "bench/head_training.py", "--samples", "600", "--classes", "10", "--methods",
               "baseline,bla_t", "--uncached-images", "2", "--processes", "2", "--device", "cpu"], tmp_path)
    for method in ("baseline", "bla_t"):
        line = re.search(rf"cached {method} +1 process +{RATE} samples/s; 2 processes × 1 thread +{RATE} samples/s"
                         rf" +\(([\d,]+)× uncached", out)
        assert line, out
        one, together, speedup = (number(g) for g in line.groups())
        assert one > 0 and together > 0 and speedup >= 1
    uncached = re.search(rf"uncached bla_t .* {RATE} samples/s", out)
    assert uncached and number(uncached.group(1)) > 0, out


@pytest.mark.slow
def test_gpu_check_small_runs_every_step_on_the_cpu(tmp_path):
    out = run(["bash", "bench/gpu_check.sh", "--small", "--keep", str(tmp_path / "work")], tmp_path)
    assert re.search(r"feature extraction \(efficientnet_b0, fp32\): [\d,]+ images/s", out), out
    one = re.search(r"protocol, 1 process: ([\d.]+) s per run", out)
    two = re.search(r"protocol, 2 processes sharing the device: ([\d.]+) s per run", out)
    total = re.search(r"total +([\d.]+) min \((within|over) the 10-minute target\)", out)
    assert one and two and total, out
    assert float(one.group(1)) > 0 and float(two.group(1)) > 0 and float(total.group(1)) > 0
    results = tmp_path / "work" / "exp1" / "results.csv"
    assert results.read_text() == (tmp_path / "work" / "exp2" / "results.csv").read_text()  # torchrun: same results


@pytest.mark.slow
def test_explain_overhead_bench_prints_both_ratios_for_both_models(tmp_path):
    out = run([sys.executable, "bench/explain_overhead.py", "--small"], tmp_path)
    for model in ("MNIST CNN", "EfficientNet-Lite0"):
        section = out[out.index(model):]
        whole = re.search(r"BLA-T explanation / plain forward = ([\d.]+) \(median of \d+ ABBA rounds, IQR [\d.]+–[\d.]+; "
                          r"target ≤ 1.02: (met|NOT met)\)", section)
        own = re.search(r"explanation's own cost: [+-][\d.]+ ms = ([\d.]+) × the plain forward", section)
        assert whole and own, out
        assert float(whole.group(1)) > 0 and float(own.group(1)) > 0
