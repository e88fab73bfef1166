"""Every comparison of two methods in an export, and its row of ``comparisons.csv``.

Every preference answer is (comparison, method_1, method_2, result), the model of
:mod:`contracts.comparisons`: its question type ``{a}_vs_{b}`` names the comparison, ``method_1``
is ``a`` and ``method_2`` the method shown against it — ``b``, the paper's stand-in for ``b``
(Grad-CAM in ``bla_t_vs_cam``), or ``random(a)`` for the random-swap control ``{a}_vs_random``.
:func:`oriented` undoes the screen sides (System A / B) of a table of answers at once.

``comparisons.csv`` has one row per comparison pooled over datasets (dataset ``all``) and one
per dataset, with the participant-clustered statistics of :mod:`analysis.statistics`: the
method-1 share of all answers with a cluster-bootstrap CI, the exact participant-level
sign-flip test of method 1 against method 2 and its Holm adjustment over the comparisons of
each dataset row. An adaptive design's weighted answers (``design_weight``) give weighted shares,
intervals and tests (analysis.statistics); the counts stay the answers given.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.percentages import DEFAULT_DECIMALS, format_shares
from analysis.statistics import (
    ALL_DATASETS,
    DEFAULT_BOOTSTRAP,
    DEFAULT_CONFIDENCE,
    dataset_cells,
    design_weights,
    holm,
    result_summary,
    weighted_columns,
    with_weighted_columns,
)
from analysis.vocabulary import COMPARISON_COLUMNS, EQUAL
from contracts.comparisons import METHOD_1, METHOD_2, RESULT, comparison_sides

FIRST, SECOND, TIE = 0, 1, 2  # result codes: the order of contracts.comparisons.RESULTS
SIDE_KEY = ["question_type", "method_a", "method_b"]
COMPARISON_KEY = ["question_type", METHOD_1, METHOD_2]
# Printed percentage -> its count column (over n_answers).
COMPARISON_PERCENTS: dict[str, tuple[str, ...]] = {
    "method_1_pct": ("method_1_count",), "method_2_pct": ("method_2_count",),
    "equal_pct": ("equal",),
}


def oriented(answers: pd.DataFrame) -> pd.DataFrame:
    """Preference answers (question type, method_a, method_b, choice) with ``method_1``,
    ``method_2`` and ``result`` (codes FIRST / SECOND / TIE) of the comparison model.

    Sides are resolved once per distinct (question type, method A, method B), so the cost does
    not grow with calls per answer; ValueError when an answer's methods do not form its question
    type (analysis.io reports that first, naming the row).
    """
    combos = answers[SIDE_KEY].astype(str).drop_duplicates()
    sides = [comparison_sides(*row) for row in combos.itertuples(index=False)]
    combos = combos.assign(first_on_a=[s[0] for s in sides], method_1=[s[1] for s in sides],
                           method_2=[s[2] for s in sides])
    merged = answers[SIDE_KEY].astype(str).merge(combos, how="left", on=SIDE_KEY)
    choice = answers["choice"].astype(str).to_numpy()
    first_on_a = merged["first_on_a"].to_numpy(dtype=bool)
    result = np.where(choice == EQUAL, TIE,
                      np.where((choice == "A") == first_on_a, FIRST, SECOND))
    out = answers.copy()
    out[METHOD_1] = merged[METHOD_1].to_numpy()
    out[METHOD_2] = merged[METHOD_2].to_numpy()
    out[RESULT] = result.astype(np.int64)
    return out


def comparison_numbers(data: pd.DataFrame, n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0,
                       confidence: float = DEFAULT_CONFIDENCE) -> pd.DataFrame:
    """The rows of comparisons.csv with unrounded numbers: per comparison a pooled row (dataset
    'all'), then one per dataset.

    ``data`` are the counted preference answers with the columns of :func:`oriented`.
    Comparisons come in order of question type, then methods; p_value_holm adjusts over the
    comparisons of each dataset value ('all' being one family). Percentages and ``ci_*`` are
    floats in percent (the interval as :func:`analysis.statistics.usable_intervals` gives it).
    """
    datasets = sorted(data["dataset"].astype(str).unique())
    dataset_code = pd.Categorical(data["dataset"].astype(str), categories=datasets).codes
    result = data[RESULT].to_numpy()
    groups = data.groupby(COMPARISON_KEY, sort=True, observed=True).indices
    weights = design_weights(data)
    rows: list[dict] = []
    for index, (key, positions) in enumerate(sorted(groups.items())):
        _, cells, intervals, answered = dataset_cells(
            data.iloc[positions], dataset_code[positions], result[positions], len(datasets),
            n_boot, np.random.default_rng([seed, 17, index]), confidence,
            None if weights is None else weights[positions])
        for name, cell, interval, raw in zip([ALL_DATASETS, *datasets], cells, intervals,
                                             answered):
            if raw.sum() == 0:
                continue
            summary = result_summary(cell, interval, None if weights is None else raw)
            weighted = summary.get("weighted")
            rows.append({
                "dataset": name, "question_type": key[0], METHOD_1: key[1], METHOD_2: key[2],
                "n_answers": summary["n_answers"], "n_participants": summary["n_participants"],
                "method_1_count": summary["first"], "method_2_count": summary["second"],
                "equal": summary["equal"], "method_1_pct": summary["first_pct"],
                "method_2_pct": summary["second_pct"], "equal_pct": summary["equal_pct"],
                "ci_low": summary["ci_low"], "ci_high": summary["ci_high"],
                "p_value": summary["p_value"], "p_value_holm": np.nan,
                **weighted_columns(("method_1_count", "method_2_count", "equal"), weighted),
            })
    table = pd.DataFrame(rows, columns=with_weighted_columns(COMPARISON_COLUMNS, rows))
    table["p_value_holm"] = table.groupby("dataset", sort=False)["p_value"].transform(holm)
    return table


def comparison_table(data: pd.DataFrame, n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0,
                     confidence: float = DEFAULT_CONFIDENCE,
                     decimals: int = DEFAULT_DECIMALS) -> pd.DataFrame:
    """comparisons.csv: :func:`comparison_numbers` with percentages and intervals as text."""
    return format_shares(comparison_numbers(data, n_boot, seed, confidence), COMPARISON_PERCENTS,
                         decimals)
