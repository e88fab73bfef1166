"""Statistics of repeated-run experiments: mean ± standard error and tests against the baseline."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats


def mean_and_sem(values: pd.Series) -> tuple[float, float]:
    """Mean and standard error of the mean (0 for a single value)."""
    values = values.astype(float)
    return float(values.mean()), float(stats.sem(values)) if len(values) > 1 else 0.0


def wilcoxon_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired samples; 1.0 when they are identical."""
    differences = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if len(differences) == 0 or np.all(differences == 0):
        return 1.0
    return float(stats.wilcoxon(a, b, zero_method="zsplit").pvalue)


def mann_whitney_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Mann–Whitney U p-value of two independent samples; 1.0 when both are constant and equal."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if np.unique(np.concatenate([a, b])).size == 1:
        return 1.0
    return float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)


def summarise(results: pd.DataFrame, metric: str = "accuracy", reference: str = "baseline") -> pd.DataFrame:
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
