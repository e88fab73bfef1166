"""torchrun with two gloo processes gives the results of one process."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]


def run_cli(args: list[str], cache: Path, processes: int) -> None:
    env = {**os.environ, "BLA_CORE_CACHE": str(cache), "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1",
           "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    command = [*launcher, "-m", "bla_core", *args] if processes > 1 else [sys.executable, "-m", "bla_core", *args]
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def test_two_gloo_processes_equal_one_process(photo_folder, tmp_path):
    root, _ = photo_folder
    common = ["experiment", "--dataset", f"imagefolder:{root}", "--val-fraction", "0.5", "--backbone",
              "mobilenetv3_small_050", "--weights", "none", "--methods", "baseline,bla_t,l2x_f", "--runs", "3",
              "--epochs", "1", "--batch-size", "4", "--device", "cpu"]
    run_cli([*common, "--out", str(tmp_path / "one")], tmp_path / "cache-one", processes=1)
    run_cli([*common, "--out", str(tmp_path / "two")], tmp_path / "cache-two", processes=2)
    one = pd.read_csv(tmp_path / "one" / "results.csv")
    two = pd.read_csv(tmp_path / "two" / "results.csv")
    pd.testing.assert_frame_equal(one, two)
    assert len(one) == 9
    assert (tmp_path / "two" / "table1.md").read_text() == (tmp_path / "one" / "table1.md").read_text()
    features = {name: sorted((tmp_path / name / "features").glob("*/features.npy")) for name in ("cache-one", "cache-two")}
    assert len(features["cache-one"]) == len(features["cache-two"]) == 2
    for a, b in zip(features["cache-one"], features["cache-two"]):
        assert a.parent.name == b.parent.name  # same key
        assert np.array_equal(np.load(a), np.load(b))
