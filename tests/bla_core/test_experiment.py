"""The repeated-run experiment: its files, its statistics and resuming after a kill."""
import json

import pandas as pd
import pytest

from bla_core.cli import main
from bla_core.experiment import RESULT_COLUMNS
from bla_core.statistics import summarise


def test_summary_statistics_on_constructed_results():
    results = pd.DataFrame({
        "method": ["baseline"] * 6 + ["bla_t"] * 6,
        "run": list(range(6)) * 2,
        "accuracy": [0.90, 0.91, 0.92, 0.93, 0.94, 0.95, 0.80, 0.81, 0.82, 0.83, 0.84, 0.85],
        "loss": [0.1] * 12,
    })
    table = summarise(results).set_index("method")
    assert table.loc["baseline", "accuracy_mean"] == pytest.approx(0.925)
    # SE = sd/√n with sd of 0.90..0.95 = 0.018708
    assert table.loc["baseline", "accuracy_sem"] == pytest.approx(0.018708 / 6 ** 0.5, rel=1e-4)
    # every bla_t run is below every baseline run: exact two-sided U p = 2/C(12,6) = 2/924
    assert table.loc["bla_t", "mann_whitney_p"] == pytest.approx(2 / 924)
    # all six paired differences negative: exact two-sided signed-rank p = 2/2^6
    assert table.loc["bla_t", "wilcoxon_p"] == pytest.approx(2 / 64)


def test_experiment_writes_results_and_resumes_where_it_stopped(tmp_path):
    out = tmp_path / "exp"
    args = ["experiment", "--methods", "baseline,bla_t,l2x_f", "--runs", "2", "--epochs", "1", "--out", str(out)]
    assert main(args) == 0
    results = pd.read_csv(out / "results.csv")
    assert list(results.columns) == RESULT_COLUMNS
    assert sorted(zip(results.method, results.run)) == sorted(
        (m, r) for m in ("baseline", "bla_t", "l2x_f") for r in (0, 1))
    assert results.seed.tolist() == [0, 1] * 3
    summary = (out / "summary.md").read_text()
    assert "| bla_t | 2 |" in summary and "Wilcoxon" in summary and "Mann–Whitney" in summary
    assert (out / "figure3.png").stat().st_size > 1000

    # Simulate a kill after run 0: run 1's BLA-T model is lost, everything else stays.
    kept = out / "runs" / "run-000" / "bla_t" / "checkpoint.pt"
    kept_mtime = kept.stat().st_mtime_ns
    lost = out / "runs" / "run-001" / "bla_t"
    before = json.loads((lost / "metrics.json").read_text())
    (lost / "metrics.json").unlink()
    assert main(args) == 0
    assert kept.stat().st_mtime_ns == kept_mtime
    assert json.loads((lost / "metrics.json").read_text()) == before
    assert pd.read_csv(out / "results.csv").equals(results)


def test_experiment_refuses_to_resume_with_other_settings(tmp_path, capsys):
    out = tmp_path / "exp"
    assert main(["experiment", "--methods", "baseline", "--runs", "1", "--epochs", "1", "--out", str(out)]) == 0
    assert main(["experiment", "--methods", "baseline", "--runs", "1", "--epochs", "2", "--out", str(out)]) == 2
    assert "other settings (config)" in capsys.readouterr().err
