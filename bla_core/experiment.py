"""Repeated-run experiments (paper §4.1/§4.2): every run trains a baseline, then each explanation
model from that run's baseline; results, statistics and a Figure-3-style plot; resumable."""
from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from .classifier import check_method  # noqa: E402
from .datasets import load_dataset  # noqa: E402
from .errors import BLAError  # noqa: E402
from .statistics import summarise  # noqa: E402
from .training import (  # noqa: E402
    TrainConfig, evaluate, extract, load_run, prepare_output_dir, save_run, train_baseline,
    train_explainer, validate_config, write_atomic, write_json,
)

RESULT_COLUMNS = ["method", "run", "seed", "accuracy", "loss", "soft_accuracy", "soft_loss", "mean_explanation_size"]


def parse_methods(text: str) -> list[str]:
    """``baseline,bla_t`` → ["baseline", "bla_t"], each checked."""
    methods = [m.strip() for m in text.split(",") if m.strip()]
    if not methods:
        raise BLAError("--methods is empty; give e.g. baseline,bla,bla_t,l2x_f")
    for method in methods:
        check_method(method)
    return methods


def check_experiment_config(out_dir: Path, config: dict) -> None:
    """Record the experiment's settings, or refuse to resume one made with other settings."""
    path = out_dir / "experiment.json"
    if path.exists():
        stored = json.loads(path.read_text())
        if stored != config:
            changed = sorted(k for k in set(stored) | set(config) if stored.get(k) != config.get(k))
            raise BLAError(f"{out_dir} holds an experiment with other settings ({', '.join(changed)}); "
                           "use a new --out folder or the same settings to resume")
    else:
        write_json(path, config)


def run_dir(out_dir: Path, run: int, method: str) -> Path:
    return out_dir / "runs" / f"run-{run:03d}" / method


def is_done(path: Path) -> bool:
    return (path / "metrics.json").is_file() and (path / "checkpoint.pt").is_file()


def run_experiment(
    base: TrainConfig, methods: list[str], runs: int, out_dir: Path, device: torch.device, first_seed: int = 0
) -> pd.DataFrame:
    """Train ``runs`` repetitions of every method (seed = first_seed + run) and write the results.

    A run's finished models are skipped when the command is started again, so a killed experiment
    resumes where it stopped.
    """
    if runs < 1:
        raise BLAError(f"--runs must be at least 1, got {runs}")
    splits = load_dataset(base.dataset, base.data_seed, base.val_fraction)
    for method in methods:
        validate_config(replace(base, method=method), splits)
    out_dir = prepare_output_dir(Path(out_dir))
    check_experiment_config(out_dir, {"config": asdict(base), "methods": methods, "runs": runs, "first_seed": first_seed})
    explainers = [m for m in methods if m != "baseline"]
    progress = tqdm(total=runs * len(methods), desc="experiment", unit="model")
    for run in range(runs):
        seed = first_seed + run
        todo = [m for m in methods if not is_done(run_dir(out_dir, run, m))]
        if not todo:
            progress.update(len(methods))
            continue
        baseline_config = replace(base, method="baseline", seed=seed)
        baseline_path = prepare_output_dir(run_dir(out_dir, run, "baseline"))
        if is_done(baseline_path):
            baseline = load_run(baseline_path, device).model
            features = extract(baseline, splits, device)
        else:
            baseline, features = train_baseline(baseline_config, splits, device)
            save_run(baseline_path, baseline, baseline_config, splits,
                     evaluate(baseline, features.val, features.val_labels, device))
        progress.update(1 if "baseline" in todo else 0)
        for method in explainers:
            path = run_dir(out_dir, run, method)
            if method in todo:
                config = replace(base, method=method, seed=seed)
                model = train_explainer(config, splits, baseline, features, device)
                save_run(prepare_output_dir(path), model, config, splits,
                         evaluate(model, features.val, features.val_labels, device))
            progress.update(1)
    progress.close()
    results = collect_results(out_dir, methods, runs)
    write_reports(results, out_dir)
    return results


def collect_results(out_dir: Path, methods: list[str], runs: int) -> pd.DataFrame:
    """One row per (method, run) from the runs' ``metrics.json`` files."""
    rows = []
    for method in methods:
        for run in range(runs):
            metrics = json.loads((run_dir(out_dir, run, method) / "metrics.json").read_text())
            rows.append({"run": run, **metrics})
    return pd.DataFrame(rows)[RESULT_COLUMNS]


def summary_markdown(results: pd.DataFrame, dataset: str) -> str:
    """``summary.md``: mean ± SE per method and p-values against the baseline."""
    table = summarise(results)
    lines = [
        f"# Experiment on {dataset}: {results['run'].nunique()} runs",
        "",
        "Accuracy and loss of the hard explanation on the validation split, mean ± standard error "
        "over runs. p-values against the baseline: Mann–Whitney U (runs as independent samples, "
        "paper §4.1) and Wilcoxon signed-rank paired by run (paper §4.2), both two-sided.",
        "",
        "| method | runs | accuracy | loss | Mann–Whitney U p | Wilcoxon p |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in table.itertuples():
        mw = f"{row.mann_whitney_p:.3g}" if pd.notna(getattr(row, "mann_whitney_p", None)) else "—"
        wx = f"{row.wilcoxon_p:.3g}" if pd.notna(getattr(row, "wilcoxon_p", None)) else "—"
        lines.append(
            f"| {row.method} | {row.runs} | {row.accuracy_mean:.4f} ± {row.accuracy_sem:.4f} "
            f"| {row.loss_mean:.4f} ± {row.loss_sem:.4f} | {mw} | {wx} |"
        )
    return "\n".join(lines) + "\n"


def plot_results(results: pd.DataFrame, path: Path) -> None:
    """Figure 3 of the paper: error rate and loss per method, dashed line at the baseline median."""
    methods = list(dict.fromkeys(results["method"]))
    figure, axes = plt.subplots(1, 2, figsize=(4 + 1.2 * len(methods), 3.5))
    for axis, column, label in ((axes[0], "accuracy", "error rate"), (axes[1], "loss", "loss")):
        values = [(1 - results[results.method == m][column]) if column == "accuracy"
                  else results[results.method == m][column] for m in methods]
        axis.boxplot(values, tick_labels=methods)
        if "baseline" in methods:
            axis.axhline(values[methods.index("baseline")].median(), linestyle="--", color="grey", linewidth=1)
        axis.set_ylabel(label)
        axis.tick_params(axis="x", rotation=30)
    figure.tight_layout()
    write_atomic(path, lambda tmp: figure.savefig(tmp, format="png", dpi=150))
    plt.close(figure)


def write_reports(results: pd.DataFrame, out_dir: Path) -> None:
    """``results.csv``, ``summary.md`` and ``figure3.png`` of a finished experiment."""
    dataset = json.loads((out_dir / "experiment.json").read_text())["config"]["dataset"]
    write_atomic(out_dir / "results.csv", lambda tmp: results.to_csv(tmp, index=False))
    write_atomic(out_dir / "summary.md", lambda tmp: tmp.write_text(summary_markdown(results, dataset)))
    plot_results(results, out_dir / "figure3.png")
