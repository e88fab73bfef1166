"""The repeated-run experiment: its files, its statistics and resuming after a kill."""
import json
from pathlib import Path

import numpy as np
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
    # one-epoch runs may leave a BLA module dead; the flag then exists per run, never on the baseline
    assert not results[results.method == "baseline"].dead_explainer.any()
    assert (results[results.method == "l2x_f"].mean_explanation_size == 8).all()
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


def constructed(values: dict[str, list[float]], sizes: dict[str, list[float]] | None = None) -> pd.DataFrame:
    """Results with the given accuracies per method over len(values) runs (loss = 1 - accuracy) and
    mean explanation sizes (default 49, ranging 1–49 over images); a run of size 49 is dead."""
    sizes = sizes or {}
    rows = []
    for method, accuracies in values.items():
        for run, accuracy in enumerate(accuracies):
            size = sizes.get(method, [49.0] * len(accuracies))[run]
            rows.append({"method": method, "run": run, "seed": run, "accuracy": accuracy, "loss": 1 - accuracy,
                         "mean_explanation_size": size, "min_explanation_size": 1 if size < 49 else 49,
                         "max_explanation_size": 49, "dead_explainer": method != "baseline" and size == 49})
    return pd.DataFrame(rows)


def test_table1_marks_on_constructed_results():
    from bla_core.statistics import table1_marks

    runs = 8
    base = [0.90 + 0.001 * r for r in range(runs)]
    results = constructed({
        "baseline": base,
        "l2x_f": [b - 0.10 for b in base],                         # every run worse: p = 2/2^8 < 0.05
        "bla": [b - 0.02 for b in base],                           # worse than BL
        "bla_t": [b - 0.02 + (0.001 if r % 2 else -0.001) for r, b in enumerate(base)],  # ≈ BLA, below BL
        "bla_ph": [b + (0.003 if r % 2 else -0.003) - 0.0001 * r for r, b in enumerate(base)],  # ≈ BL, ≠ BLA-T
    })
    table = table1_marks(results, ["baseline", "l2x_f", "bla", "bla_t", "bla_ph"]).set_index(["metric", "method"])
    acc = table.loc["accuracy"]
    assert acc.loc["l2x_f", "p_reference"] == pytest.approx(2 / 2 ** 8)
    assert not acc.loc["l2x_f", "dagger"] and not acc.loc["l2x_f", "star"] and np.isnan(acc.loc["l2x_f", "p_left"])
    assert not acc.loc["bla", "dagger"] and not acc.loc["bla", "star"]  # BLA vs L2X-F differ every run
    assert not acc.loc["bla_t", "dagger"] and acc.loc["bla_t", "star"]  # ∗: like BLA
    assert acc.loc["bla_ph", "dagger"] and not acc.loc["bla_ph", "star"]  # †: like BL, unlike BLA-T
    assert acc.loc["baseline", "mean"] == pytest.approx(np.mean(base))
    assert not acc.loc["baseline", "dagger"] and not acc.loc["baseline", "star"]


def test_table1_markdown_has_the_paper_format():
    from bla_core.experiment import table1_markdown

    base = [0.90, 0.92, 0.91, 0.93, 0.94, 0.95]
    sizes = [2.0, 3.0, 4.0, 5.0, 6.0, 49.0]  # the last run is dead
    results = {"A": constructed({"baseline": base, "bla_t": base}, {"bla_t": sizes}),
               "B": constructed({"baseline": base, "bla_t": [b - 0.1 for b in base]}, {"bla_t": [3.0] * 6})}
    text = table1_markdown(results)
    sem = 100 * pd.Series(base).sem()
    size_sd = pd.Series(sizes).std()  # SD over runs of the runs' mean sizes
    assert "| | dataset | BL | BLA-T |" in text
    assert (f"| Accuracy | A | {np.mean(base):.4f} ± {sem:.2f} [49.0 ± 0.0 (49–49)] "
            f"| {np.mean(base):.4f}† ± {sem:.2f} [{np.mean(sizes):.1f} ± {size_sd:.1f} (1–49)] ‡ 1 dead |") in text
    assert (f"| Accuracy | B | {np.mean(base):.4f} ± {sem:.2f} [49.0 ± 0.0 (49–49)] "
            f"| {np.mean(base) - 0.1:.4f} ± {sem:.2f} [3.0 ± 0.0 (1–49)] |") in text
    assert f"| Loss | B | {1 - np.mean(base):.4f} ± {sem:.2f} | {1.1 - np.mean(base):.4f} ± {sem:.2f} |" in text
    assert "zsplit" in text and "‡" in text


def test_summary_reports_sizes_dead_runs_and_the_wilcoxon_zero_handling():
    from bla_core.experiment import summary_markdown

    results = constructed({"baseline": [0.9, 0.9, 0.9], "bla_t": [0.9, 0.8, 0.9]}, {"bla_t": [4.0, 49.0, 6.0]})
    text = summary_markdown(results, "mnist38")
    # sizes 4, 49, 6: mean 19.67, SD √((15.67² + 29.33² + 13.67²) / 2) = 25.42
    assert "| bla_t | 3 | 0.8667 ± 0.0333 ‡ 1 dead | 19.7 ± 25.4 (1–49) |" in text
    assert text.count("| 1 |\n") == 1 and "| baseline | 3 | 0.9000 ± 0.0000 | 49.0 ± 0.0 (49–49) |" in text
    assert "`zsplit`" in text and "split evenly between positive and negative ranks" in text


def test_the_paper_protocol_on_photos_from_the_feature_cache(photo_folder, tmp_path, isolated_cache):
    root, _ = photo_folder
    out = tmp_path / "exp"
    args = ["experiment", "--dataset", f"imagefolder:{root}", "--val-fraction", "0.5", "--backbone",
            "mobilenetv3_small_050", "--weights", "none", "--runs", "2", "--epochs", "1", "--batch-size", "4",
            "--out", str(out)]
    assert main(args) == 0
    results = pd.read_csv(out / "results.csv")
    assert sorted(set(results.method)) == sorted(["baseline", "l2x_f", "bla", "bla_t", "bla_ph"])
    assert len(results) == 10 and results.accuracy.between(0, 1).all()
    assert (results[results.method == "l2x_f"].mean_explanation_size == 8).all()
    entries = sorted(p.name for p in (isolated_cache / "features").iterdir())
    assert len(entries) == 2  # train and val features, computed once for every head of every run
    table = (out / "table1.md").read_text()
    assert "| | dataset | BL | L2X-F | BLA | BLA-T | BLA-PH |" in table and "| Loss | imagefolder (photos) |" in table
    assert (out / "figure3.png").stat().st_size > 1000
    assert pd.read_csv(out / "table1.csv").shape[0] == 10
    config = json.loads((out / "experiment.json").read_text())["config"]
    assert config["backbone"] == "mobilenetv3_small_050" and config["epochs"] == 1
    checkpoint = out / "runs" / "run-001" / "bla_t" / "checkpoint.pt"
    assert not any(k.startswith("backbone.") for k in __import__("torch").load(checkpoint, weights_only=False)["state_dict"])

    explanations = tmp_path / "expl" / "photos_bla_t.npz"
    assert main(["explain", "--run", str(checkpoint.parent), "--out", str(explanations)]) == 0
    data = np.load(explanations)
    assert data["maps"].shape == (6, 7, 7) and str(data["method"]) == "bla_t"
    assert all(path.startswith(str(root)) and Path(path).is_file() for path in data["image_paths"])


def test_datasets_option_writes_one_combined_table(photo_folder, tmp_path):
    root, _ = photo_folder
    out = tmp_path / "abc"
    args = ["experiment", "--datasets", f"imagefolder:{root},imagefolder:{root}", "--methods", "baseline,bla_t",
            "--val-fraction", "0.5", "--runs", "2", "--epochs", "1", "--backbone", "mobilenetv3_small_050",
            "--weights", "none", "--out", str(out)]
    assert main(args) == 0
    table = (out / "table1.md").read_text()
    assert "| Accuracy | imagefolder (photos) 1 |" in table and "| Accuracy | imagefolder (photos) 2 |" in table
    assert (out / "imagefolder_photos_1" / "results.csv").is_file() and (out / "figure3.png").is_file()
