"""Statistics of repeated-run experiments: mean ± standard error and tests against the baseline."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .methods import BASELINE
from .selectivity import is_unselective


def mean_and_sem(values: pd.Series) -> tuple[float, float]:
    """Mean and standard error of the mean (0 for a single value)."""
    values = values.astype(float)
    return float(values.mean()), float(stats.sem(values)) if len(values) > 1 else 0.0


WILCOXON_ZERO_METHOD = "zsplit"
WILCOXON_ZERO_REASON = (
    "runs whose two models score exactly the same (frequent: accuracy moves in steps of one validation "
    "image) are split evenly between positive and negative ranks (scipy's zero_method='zsplit'), so every "
    "run stays in the test; 'wilcox' would drop them and test only the runs that differ, overstating "
    "significance")


def wilcoxon_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired samples; 1.0 when they are identical.

    Zero differences are handled by :data:`WILCOXON_ZERO_METHOD` (see :data:`WILCOXON_ZERO_REASON`).
    """
    differences = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if len(differences) == 0 or np.all(differences == 0):
        return 1.0
    return float(stats.wilcoxon(a, b, zero_method=WILCOXON_ZERO_METHOD).pvalue)


def mann_whitney_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Mann–Whitney U p-value of two independent samples; 1.0 when both are constant and equal."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if np.unique(np.concatenate([a, b])).size == 1:
        return 1.0
    return float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)


def summarise(results: pd.DataFrame, metric: str = "accuracy",
              reference: str = BASELINE) -> pd.DataFrame:
    """Per method: runs, mean ± SE of ``metric`` and loss, and p-values against ``reference``.

    ``mann_whitney_p`` treats the runs as independent samples (paper §4.1); ``wilcoxon_p`` pairs
    them by run, since each run's explanation models start from that run's baseline (paper §4.2).
    """
    rows = []
    ref = results[results["method"] == reference].set_index("run")
    for method, group in results.groupby("method", sort=False):
        group = group.set_index("run")
        row = {"method": method, "runs": len(group)}
        for column in (metric, "loss"):
            row[f"{column}_mean"], row[f"{column}_sem"] = mean_and_sem(group[column])
        paired = group.index.intersection(ref.index)
        if method != reference and len(ref):
            row["mann_whitney_p"] = mann_whitney_p(group[metric], ref[metric])
            row["wilcoxon_p"] = wilcoxon_p(group.loc[paired, metric], ref.loc[paired, metric])
        rows.append(row)
    return pd.DataFrame(rows)


def explanation_sizes(results: pd.DataFrame) -> pd.DataFrame:
    """Per method (index): mean over runs of the mean hard explanation size, its SD over runs, the
    smallest and largest explanation of any image, and the numbers of dead and of unselective runs
    (bla_core.selectivity; 0 where the results carry no verdict)."""
    grouped = results.groupby("method", sort=False)
    verdicts = results["selective"] if "selective" in results else pd.Series(None, index=results.index, dtype=object)
    return pd.DataFrame({
        "size_mean": grouped["mean_explanation_size"].mean(),
        "size_sd": grouped["mean_explanation_size"].std(ddof=1).fillna(0.0),
        "size_min": grouped["min_explanation_size"].min(),
        "size_max": grouped["max_explanation_size"].max(),
        "dead_runs": grouped["dead_explainer"].sum().astype(int),
        "unselective_runs": verdicts.map(is_unselective).groupby(results["method"], sort=False).sum().astype(int),
    })


def table1_marks(results: pd.DataFrame, methods: list[str], metrics: tuple[str, ...] = ("accuracy", "loss"),
                 reference: str = BASELINE, alpha: float = 0.05) -> pd.DataFrame:
    """Table 1 of the paper as numbers: per metric and method the mean, SE and its two marks.

    ``dagger`` (†): not significantly different from ``reference`` (Wilcoxon signed-rank paired by
    run, p ≥ ``alpha``). ``star`` (∗): not significantly different from the column to its left.
    The column right of the baseline gets no ∗, which would repeat its †.
    """
    rows = []
    by_method = {m: results[results["method"] == m].set_index("run") for m in methods}
    for metric in metrics:
        for position, method in enumerate(methods):
            values = by_method[method][metric]
            mean, sem = mean_and_sem(values)
            row = {"metric": metric, "method": method, "runs": len(values), "mean": mean, "sem": sem,
                   "p_reference": np.nan, "p_left": np.nan, "dagger": False, "star": False}
            if method != reference and reference in by_method:
                row["p_reference"] = paired_p(by_method[method][metric], by_method[reference][metric])
                row["dagger"] = bool(row["p_reference"] >= alpha)
            left = methods[position - 1] if position > 0 else None
            if left is not None and left != reference and method != reference:
                row["p_left"] = paired_p(by_method[method][metric], by_method[left][metric])
                row["star"] = bool(row["p_left"] >= alpha)
            rows.append(row)
    return pd.DataFrame(rows)


def paired_p(a: pd.Series, b: pd.Series) -> float:
    """Wilcoxon signed-rank p of two per-run series, paired on their shared runs."""
    shared = a.index.intersection(b.index)
    return wilcoxon_p(a.loc[shared].to_numpy(), b.loc[shared].to_numpy())
