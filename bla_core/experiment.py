"""Repeated-run experiments (paper §4.1/§4.2): every run trains a baseline, then each explanation
model from that run's baseline; results, statistics, Table 1 and Figure 3; resumable."""
from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from . import distributed  # noqa: E402
from .checkpoints import load_run, save_run  # noqa: E402
from .classifier import ExplainedClassifier  # noqa: E402
from .config import TrainConfig, resolve_config  # noqa: E402
from .datasets import load_dataset  # noqa: E402
from .errors import BLAError  # noqa: E402
from .feature_split import FeatureSets, extract  # noqa: E402
from .files import prepare_output_dir, write_atomic, write_json  # noqa: E402
from .loop import evaluate  # noqa: E402
from .methods import BASELINE, check_method, display_name, trained_keys  # noqa: E402
from .model_building import build_model, check_config  # noqa: E402
from .selectivity import from_metrics, is_unselective, unselective_warning, warn  # noqa: E402
from .statistics import (  # noqa: E402
    WILCOXON_ZERO_METHOD,
    WILCOXON_ZERO_REASON,
    explanation_sizes,
    summarise,
    table1_marks,
)
from .training import train_baseline, train_explainer  # noqa: E402

RESULT_COLUMNS = ["method", "run", "seed", "accuracy", "loss", "soft_accuracy", "soft_loss", "mean_explanation_size",
                  "sd_explanation_size", "min_explanation_size", "max_explanation_size", "dead_explainer",
                  "median_explanation_size", "grid_cells", "mean_explanation_share", "median_explanation_share",
                  "large_mask_images", "selective",
                  "unselective_reasons"]
DEAD_MARK = "‡"


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

    Paper §4.2: per run the baseline head first, then every explanation model from that run's
    baseline. A frozen pretrained F is run once for the whole experiment (feature cache); all heads
    train from the cached features. Under torchrun run r belongs to process r mod N. A run's
    finished models are skipped when the command is started again, so a killed experiment resumes
    where it stopped.
    """
    if runs < 1:
        raise BLAError(f"--runs must be at least 1, got {runs}")
    splits = load_dataset(base.dataset, base.data_seed, base.val_fraction)
    base = resolve_config(base, splits)
    reference = build_model(replace(base, method=BASELINE), splits, BASELINE, device)
    for method in methods:
        check_config(replace(base, method=method), splits, reference.backbone)
    out_dir = prepare_output_dir(Path(out_dir))
    if distributed.is_main():
        check_experiment_config(out_dir, {"config": asdict(base), "methods": methods, "runs": runs,
                                          "first_seed": first_seed})
    distributed.barrier()
    mine = [run for run in range(runs) if run % distributed.world_size() == distributed.rank()]
    progress = tqdm(total=len(mine) * len(methods), desc=f"experiment {splits.key}", unit="model",
                    disable=distributed.progress_disabled())
    # A frozen pretrained F's features, extracted by all processes together (F trained per run: none).
    shared_features = None if reference.backbone.trainable else extract(reference, splits, device, base.cache_dtype)
    for run in mine:
        todo = [m for m in methods if not is_done(run_dir(out_dir, run, m))]
        if todo:
            baseline, features = baseline_of_run(base, splits, out_dir, run, first_seed + run, device, shared_features)
            for method in todo:
                if check_method(method).needs_baseline:
                    config = replace(base, method=method, seed=first_seed + run)
                    trained = train_explainer(config, splits, baseline, features, device)
                    save_run(prepare_output_dir(run_dir(out_dir, run, method)), trained.model, config, splits,
                             evaluate(trained.model, trained.features.val, device, trained.module_gradient))
        progress.update(len(methods))
    progress.close()
    distributed.barrier()
    results = collect_results(out_dir, methods, runs)
    if distributed.is_main():
        write_reports(results, out_dir)
        for line in unselective_run_warnings(results, out_dir):
            warn(line)
    return results


def baseline_of_run(base: TrainConfig, splits, out_dir: Path, run: int, seed: int, device: torch.device,
                    features: FeatureSets | None) -> tuple[ExplainedClassifier, FeatureSets]:
    """The run's trained baseline (read back when done, else trained and saved) and the features."""
    path = prepare_output_dir(run_dir(out_dir, run, BASELINE))
    if is_done(path):
        baseline = load_run(path, device).model
        return baseline, features or extract(baseline, splits, device, base.cache_dtype)
    config = replace(base, method=BASELINE, seed=seed)
    baseline, features = train_baseline(config, splits, device, features)
    save_run(path, baseline, config, splits, evaluate(baseline, features.val, device))
    return baseline, features


def collect_results(out_dir: Path, methods: list[str], runs: int) -> pd.DataFrame:
    """One row per (method, run) from the runs' ``metrics.json`` files; the reasons of an unselective
    run space-separated, and columns a run of an older version did not record left empty (unknown)."""
    rows = []
    for method in methods:
        for run in range(runs):
            metrics = json.loads((run_dir(out_dir, run, method) / "metrics.json").read_text())
            if "unselective_reasons" in metrics:
                metrics["unselective_reasons"] = " ".join(metrics["unselective_reasons"])
            rows.append({"run": run, **metrics})
    return pd.DataFrame(rows).reindex(columns=RESULT_COLUMNS)


SIZE_NOTE = ("explanation size: cells of the hard explanation, mean over runs of each run's mean ± SD over "
             "runs (smallest–largest of any validation image)")
DEAD_NOTE = (f"{DEAD_MARK} n dead: n runs whose explanation module is dead (its hard explanation selects every "
             "cell of every validation image, or it got no gradient at the first step), so their numbers are "
             "those of average pooling")


def size_cell(sizes: pd.Series) -> str:
    """``3.2 ± 0.4 (1–12)``: mean size over runs ± SD over runs (smallest–largest explanation)."""
    return f"{sizes['size_mean']:.1f} ± {sizes['size_sd']:.1f} ({int(sizes['size_min'])}–{int(sizes['size_max'])})"


def dead_cell(sizes: pd.Series) -> str:
    """`` ‡ 2 dead`` after a method's accuracy when runs of it are dead, else nothing."""
    return f" {DEAD_MARK} {int(sizes['dead_runs'])} dead" if sizes["dead_runs"] else ""


def summary_markdown(results: pd.DataFrame, dataset: str) -> str:
    """``summary.md``: mean ± SE per method, explanation sizes, dead runs and p-values against the baseline."""
    table = summarise(results)
    sizes = explanation_sizes(results)
    lines = [
        f"# Experiment on {dataset}: {results['run'].nunique()} runs",
        "",
        "Accuracy and loss of the hard explanation on the validation split, mean ± standard error "
        "over runs. p-values against the baseline: Mann–Whitney U (runs as independent samples, "
        "paper §4.1) and Wilcoxon signed-rank paired by run (paper §4.2), both two-sided.",
        f"Wilcoxon zero differences: `{WILCOXON_ZERO_METHOD}` — {WILCOXON_ZERO_REASON}.",
        f"{SIZE_NOTE[0].upper()}{SIZE_NOTE[1:]}. {DEAD_NOTE}.",
        "",
        "| method | runs | accuracy | explanation size | loss | Mann–Whitney U p | Wilcoxon p | dead runs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in table.itertuples():
        mw = f"{row.mann_whitney_p:.3g}" if pd.notna(getattr(row, "mann_whitney_p", None)) else "—"
        wx = f"{row.wilcoxon_p:.3g}" if pd.notna(getattr(row, "wilcoxon_p", None)) else "—"
        size = sizes.loc[row.method]
        lines.append(
            f"| {row.method} | {row.runs} | {row.accuracy_mean:.4f} ± {row.accuracy_sem:.4f}{dead_cell(size)} "
            f"| {size_cell(size)} | {row.loss_mean:.4f} ± {row.loss_sem:.4f} | {mw} | {wx} | {int(size['dead_runs'])} |"
        )
    return "\n".join(lines + unselective_lines(results)) + "\n"


def unselective_runs(results: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``results`` whose explanation is judged not selective (bla_core.selectivity)."""
    if "selective" not in results:
        return results.iloc[0:0]
    return results[results["selective"].map(is_unselective)]


def unselective_run_warnings(results: pd.DataFrame, out_dir: Path) -> list[str]:
    """One warning line per unselective run of ``results``, naming its run folder."""
    return [unselective_warning(row["method"], int(row["seed"]), str(run_dir(out_dir, int(row["run"]), row["method"])),
                                from_metrics(row.to_dict()))
            for _, row in unselective_runs(results).iterrows()]


def unselective_lines(results: pd.DataFrame) -> list[str]:
    """summary.md's list of unselective runs and their reasons (nothing when every run is selective)."""
    flagged = unselective_runs(results)
    if flagged.empty:
        return []
    lines = ["", f"## Unselective runs: {len(flagged)}", "",
             "Their hard explanations do not select (bla_core/selectivity.py; `generation build` refuses their "
             "explanations without `--allow-unselective`):", ""]
    for _, row in flagged.iterrows():
        reasons = "; ".join(from_metrics(row.to_dict()).reason_texts())
        lines.append(f"- {row['method']}, run {int(row['run'])} (seed {int(row['seed'])}): {reasons}")
    return lines


def table_methods(methods: list[str]) -> list[str]:
    """Methods in the registry's order of trained methods (the paper's BL, L2X-F, BLA, BLA-T,
    BLA-PH first), others after."""
    order = trained_keys()
    return [m for m in order if m in methods] + [m for m in methods if m not in order]


def table1_markdown(results: dict[str, pd.DataFrame]) -> str:
    """Table 1 in the paper's format for one or more datasets (rows) and their methods (columns)."""
    methods = table_methods(list(dict.fromkeys(m for r in results.values() for m in r["method"])))
    marks = {name: table1_marks(frame, [m for m in methods if m in set(frame["method"])]).set_index(["metric", "method"])
             for name, frame in results.items()}
    sizes = {name: explanation_sizes(frame) for name, frame in results.items()}
    runs = sorted({int(frame["run"].nunique()) for frame in results.values()})
    lines = [
        "# Table 1: accuracy and loss (paper §4.2)",
        "",
        f"Hard-explanation validation accuracy and loss, mean over {'/'.join(map(str, runs))} runs; "
        "the value after ± is the standard error × 100. † no statistically significant difference to "
        "the baseline (BL) column; ∗ none to the column to its left (Wilcoxon signed-rank paired by run, "
        f"level 0.05, zero differences `{WILCOXON_ZERO_METHOD}`; the column right of BL carries no ∗, which "
        f"would repeat its †). In brackets after each accuracy: {SIZE_NOTE}. {DEAD_NOTE}.",
        "",
        "| | dataset | " + " | ".join(display_name(m) for m in methods) + " |",
        "|---|---|" + "---:|" * len(methods),
    ]
    for metric, title in (("accuracy", "Accuracy"), ("loss", "Loss")):
        for name, table in marks.items():
            cells = []
            for method in methods:
                if (metric, method) not in table.index:
                    cells.append("—")
                    continue
                row = table.loc[(metric, method)]
                sign = ("†" if row["dagger"] else "") + ("∗" if row["star"] else "")
                cell = f"{row['mean']:.4f}{sign} ± {100 * row['sem']:.2f}"
                if metric == "accuracy":
                    size = sizes[name].loc[method]
                    cell += f" [{size_cell(size)}]{dead_cell(size)}"
                cells.append(cell)
            lines.append(f"| {title} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def table1_csv(results: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Table 1's numbers, p-values and marks, one row per (dataset, metric, method)."""
    frames = []
    for name, frame in results.items():
        table = table1_marks(frame, table_methods(list(dict.fromkeys(frame["method"]))))
        table = table.join(explanation_sizes(frame), on="method")
        frames.append(table.assign(dataset=name))
    table = pd.concat(frames, ignore_index=True)
    return table[["dataset", "metric", "method", "runs", "mean", "sem", "p_reference", "p_left", "dagger", "star",
                  "size_mean", "size_sd", "size_min", "size_max", "dead_runs", "unselective_runs"]]


def plot_figure3(results: dict[str, pd.DataFrame], path: Path) -> None:
    """Figure 3 of the paper: error rate (top) and loss (bottom) of each explanation method per
    dataset (columns) as box plots, the dashed line at the median of the baseline runs."""
    names = list(results)
    figure, axes = plt.subplots(2, len(names), figsize=(1.2 + 3.2 * len(names), 6), squeeze=False)
    for column, name in enumerate(names):
        frame = results[name]
        methods = [m for m in table_methods(list(dict.fromkeys(frame["method"]))) if m != BASELINE]
        methods = methods or [BASELINE]
        for row, (metric, label) in enumerate((("accuracy", "error rate"), ("loss", "loss"))):
            axis = axes[row][column]
            values = {m: frame[frame.method == m][metric].to_numpy() for m in set(frame["method"])}
            if metric == "accuracy":
                values = {m: 1 - v for m, v in values.items()}
            titles = [display_name(m) for m in methods]
            axis.boxplot([values[m] for m in methods], tick_labels=titles)
            if BASELINE in values:
                axis.axhline(float(np.median(values[BASELINE])), linestyle="--", color="grey",
                             linewidth=1)
            axis.set_title(f"{name}: {label}", fontsize=10)
            axis.tick_params(axis="x", rotation=30)
    figure.tight_layout()
    write_atomic(path, lambda tmp: figure.savefig(tmp, format="png", dpi=150))
    plt.close(figure)


def write_tables(results: dict[str, pd.DataFrame], out_dir: Path) -> None:
    """``table1.md``, ``table1.csv`` and ``figure3.png`` for one or more datasets."""
    write_atomic(out_dir / "table1.md", lambda tmp: tmp.write_text(table1_markdown(results)))
    write_atomic(out_dir / "table1.csv", lambda tmp: table1_csv(results).to_csv(tmp, index=False))
    plot_figure3(results, out_dir / "figure3.png")


def write_reports(results: pd.DataFrame, out_dir: Path) -> None:
    """``results.csv``, ``summary.md``, ``table1.md``/``.csv`` and ``figure3.png`` of a finished experiment."""
    dataset = json.loads((out_dir / "experiment.json").read_text())["config"]["dataset"]
    write_atomic(out_dir / "results.csv", lambda tmp: results.to_csv(tmp, index=False))
    write_atomic(out_dir / "summary.md", lambda tmp: tmp.write_text(summary_markdown(results, dataset)))
    write_tables({dataset_label(dataset): results}, out_dir)


def dataset_label(spec: str) -> str:
    """A short row label for a dataset spec: its name and the last part of its path."""
    name, _, path = spec.partition(":")
    return f"{name} ({Path(path).name})" if path and name == "imagefolder" else name


def run_experiments(base: TrainConfig, datasets: list[str], methods: list[str], runs: int, out_dir: Path,
                    device: torch.device, first_seed: int = 0) -> dict[str, pd.DataFrame]:
    """The protocol on several datasets (``--datasets A,B,C``): one sub-folder each, one combined Table 1."""
    if not datasets:
        raise BLAError("--datasets is empty; give e.g. catsdogs:PATH,stanforddogs:PATH,cub:PATH")
    labels = [dataset_label(spec) for spec in datasets]
    if len(set(labels)) != len(labels):
        labels = [f"{label} {i + 1}" for i, label in enumerate(labels)]
    out_dir = prepare_output_dir(Path(out_dir))
    results = {}
    for label, spec in zip(labels, datasets):
        folder = out_dir / label.replace(" ", "_").replace("(", "").replace(")", "")
        results[label] = run_experiment(replace(base, dataset=spec, epochs=base.epochs), methods, runs, folder,
                                        device, first_seed)
    if distributed.is_main():
        write_tables(results, out_dir)
    return results
