"""The one definition of an unselective explanation: verdicts on hand-made sizes and accuracies, and
what train writes and warns for a run whose module is forced unselective."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

from bla_core.attention import BoundedLogitAttention
from bla_core.cli import main
from contracts.explanations import SELECTIVITY
from bla_core.selectivity import (ACCURACY_GAP, DEAD, HARD_BELOW_SOFT, LARGE_MASKS, assess, from_metrics,
                                  unselective_warning)

GRID = 49


def sizes(large: int, small: int = 0) -> np.ndarray:
    """``large`` masks of 25 cells (more than half of 49) and ``small`` masks of 24 (exactly under half)."""
    return np.array([25] * large + [24] * small)


def test_a_small_mask_run_with_hard_close_to_soft_is_selective():
    verdict = assess(np.array([4, 6, 8, 10]), GRID, 0.95, 0.96, dead=False)
    assert verdict.selective is True and verdict.unselective_reasons == ()
    assert verdict.mean_explanation_size == 7 and verdict.median_explanation_size == 7
    assert verdict.mean_explanation_share == pytest.approx(7 / 49) and verdict.large_mask_images == 0


def test_large_masks_on_most_images_is_unselective_and_half_of_them_is_not():
    assert assess(sizes(3, 2), GRID, 0.9, 0.9, dead=False).unselective_reasons == (LARGE_MASKS,)
    half = assess(sizes(2, 2), GRID, 0.9, 0.9, dead=False)  # exactly half the images: not "most"
    assert half.selective and half.large_mask_images == 0.5
    # 24 of 49 cells is not more than half the grid, on every image
    assert assess(sizes(0, 5), GRID, 0.9, 0.9, dead=False).selective


def test_hard_accuracy_far_below_soft_is_unselective_at_the_gap_and_not_below_it():
    seed17 = assess(np.full(200, 5), GRID, 0.52, 0.995, dead=False)
    assert seed17.unselective_reasons == (HARD_BELOW_SOFT,)
    assert "hard accuracy 0.520 is 0.475 below soft accuracy 0.995" in seed17.reason_texts()[0]
    assert assess(np.full(200, 5), GRID, 0.895, 0.895 + ACCURACY_GAP, dead=False).selective
    assert not assess(np.full(200, 5), GRID, 0.89, 0.895 + ACCURACY_GAP, dead=False).selective
    assert assess(np.full(200, 5), GRID, 0.99, 0.5, dead=False).selective  # hard better than soft is fine


def test_a_dead_module_is_unselective_with_every_reason_that_applies():
    verdict = assess(np.full(10, GRID), GRID, 0.5, 0.5, dead=True)
    assert verdict.unselective_reasons == (DEAD, LARGE_MASKS)
    line = unselective_warning("bla_t", 3, "runs/x", verdict)
    assert line.startswith("warning: the bla_t explanation of seed 3 (runs/x) is not selective: ")
    assert "dead" in line and "100% of images select more than half of the 49 cells" in line
    assert "\n" not in line


def test_a_baseline_has_sizes_but_no_verdict():
    verdict = assess(np.full(10, GRID), GRID, 0.5, 0.9, dead=False, has_module=False)
    assert verdict.selective is None and verdict.unselective_reasons == () and verdict.mean_explanation_share == 1


def test_no_images_is_refused():
    with pytest.raises(ValueError, match="at least one image"):
        assess(np.array([]), GRID, 0.5, 0.5, dead=False)


def plant_dead_module(pooling, features, spread=1.0):
    """Instead of the liveness start, lift every BLA logit far above the bound: the module selects every cell."""
    if isinstance(pooling, BoundedLogitAttention):
        with torch.no_grad():
            pooling.score.bias.fill_(1e6)


def test_train_records_sizes_and_the_verdict_and_warns_on_stderr(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("bla_core.liveness.centre_bounded_logits", plant_dead_module)
    torch.set_num_threads(1)
    out = tmp_path / "unselective"
    assert main(["train", "--method", "bla_t", "--epochs", "1", "--seed", "4", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["selective"] is False and metrics["unselective_reasons"] == [DEAD, LARGE_MASKS]
    assert metrics["grid_cells"] == 49 and metrics["median_explanation_size"] == 49
    assert metrics["mean_explanation_share"] == 1.0 and metrics["large_mask_images"] == 1.0
    assert from_metrics(metrics).unselective_reasons == (DEAD, LARGE_MASKS)
    err = capsys.readouterr().err.strip().splitlines()
    assert [line for line in err if line.startswith("warning:")] == [
        unselective_warning("bla_t", 4, str(out), from_metrics(metrics))]
    baseline = json.loads((out / "baseline" / "metrics.json").read_text())
    assert baseline["selective"] is None and baseline["unselective_reasons"] == []

    # explain records the verdict on the explained images, and generation build refuses the file
    npz = tmp_path / "bla_t.npz"
    assert main(["explain", "--run", str(out), "--out", str(npz)]) == 0
    with np.load(npz) as arrays:
        verdict = json.loads(str(arrays[SELECTIVITY]))
    assert verdict["selective"] is False and verdict["reasons"] == [DEAD, LARGE_MASKS] and verdict["seed"] == 4
    assert verdict["run"] == str(out.resolve()) and verdict["mean_explanation_share"] == 1.0
    assert any(line.startswith("warning: the bla_t explanation of seed 4") for line in capsys.readouterr().err.splitlines())
    cam = tmp_path / "cam.npz"
    assert main(["explain", "--run", str(out / "baseline"), "--out", str(cam)]) == 0
    with np.load(cam) as arrays:
        assert SELECTIVITY not in arrays.files  # post-hoc maps: no verdict (unknown)


def test_experiment_flags_an_unselective_run_in_results_summary_and_stderr(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("bla_core.liveness.centre_bounded_logits", plant_dead_module)
    torch.set_num_threads(1)
    out = tmp_path / "exp"
    assert main(["experiment", "--methods", "baseline,bla_t", "--runs", "1", "--epochs", "1", "--first-seed", "17",
                 "--out", str(out)]) == 0
    results = pd.read_csv(out / "results.csv").set_index("method")
    assert not results.loc["bla_t", "selective"] and results.loc["bla_t", "unselective_reasons"] == "dead large_masks"
    assert pd.isna(results.loc["baseline", "selective"]) and results.loc["bla_t", "mean_explanation_share"] == 1.0
    summary = (out / "summary.md").read_text()
    assert "## Unselective runs: 1" in summary and "- bla_t, run 0 (seed 17): its explanation module is dead" in summary
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and warnings[0].startswith(
        f"warning: the bla_t explanation of seed 17 ({out / 'runs' / 'run-000' / 'bla_t'}) is not selective: ")


def test_statistics_count_unselective_runs_and_unknown_is_not_unselective():
    from bla_core.statistics import explanation_sizes

    results = pd.DataFrame({"method": ["bla_t"] * 3 + ["l2x_f"], "mean_explanation_size": [4.0, 30.0, 5.0, 8.0],
                            "min_explanation_size": [1, 20, 2, 8], "max_explanation_size": [9, 40, 9, 8],
                            "dead_explainer": [False] * 4, "selective": [True, False, None, "False"]})
    assert explanation_sizes(results)["unselective_runs"].to_dict() == {"bla_t": 1, "l2x_f": 1}
    assert explanation_sizes(results.drop(columns="selective"))["unselective_runs"].to_dict() == {"bla_t": 0, "l2x_f": 0}
