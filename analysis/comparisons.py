"""Every comparison of two methods in an export, and its row of ``comparisons.csv``.

A preference answer's question type ``{a}_vs_{b}`` names its comparison (contracts.vocabulary):
``method_1`` is ``a`` and ``method_2`` the method shown against it — ``b``, the paper's stand-in
for ``b`` (Grad-CAM in ``bla_t_vs_cam``), or ``random(a)`` for the random-swap control
``{a}_vs_random`` (a's map of another image). Screen sides (System A / B) are undone here, so an
answer has a result: method 1 chosen, method 2 chosen, or equal.

``comparisons.csv`` has one row per comparison pooled over datasets (dataset ``all``) and one
per dataset, with the participant-clustered statistics of :mod:`analysis.statistics`: the
method-1 share of all answers with a cluster-bootstrap CI, the exact participant-level
sign-flip test of method 1 against method 2 and its Holm adjustment over the comparisons of
each dataset row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.percentages import DEFAULT_DECIMALS
from analysis.statistics import (
    ALL_DATASETS, DEFAULT_BOOTSTRAP, DEFAULT_CONFIDENCE, dataset_cells, holm, outcome_summary,
)
from analysis.vocabulary import COMPARISON_COLUMNS, EQUAL, RANDOM_METHOD
from contracts.vocabulary import question_sides, random_control_label

FIRST, SECOND, TIE = 0, 1, 2  # result codes, in the outcome order of analysis.statistics
SIDE_KEY = ["question_type", "method_a", "method_b"]
COMPARISON_KEY = ["question_type", "method_1", "method_2"]


def comparison_sides(question_type: str, method_a: str, method_b: str) -> tuple[bool, str, str]:
    """(method 1 shown as System A?, method_1, method_2) of one answer's question and sides.

    ValueError with one sentence when the question type is malformed or the two methods shown
    do not form it.
    """
    firsts, seconds = question_sides(question_type)
    if method_a in firsts and method_b in seconds:
        first_on_a, shown = True, method_b
    elif method_b in firsts and method_a in seconds:
        first_on_a, shown = False, method_a
    else:
        raise ValueError(
            f"methods {method_a!r} and {method_b!r} do not form question type "
            f"{question_type!r} ({' or '.join(firsts)} against {' or '.join(seconds)})")
    first = firsts[0]
    return first_on_a, first, random_control_label(first) if shown == RANDOM_METHOD else shown


def oriented(answers: pd.DataFrame) -> pd.DataFrame:
    """The answers (validated by analysis.io) with ``method_1``, ``method_2`` and ``result``.

    Sides are resolved once per distinct (question type, method A, method B), so the cost does
    not grow with calls per answer.
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
    out["method_1"] = merged["method_1"].to_numpy()
    out["method_2"] = merged["method_2"].to_numpy()
    out["result"] = result.astype(np.int64)
    return out


def comparison_table(data: pd.DataFrame, n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0,
                     confidence: float = DEFAULT_CONFIDENCE,
                     decimals: int = DEFAULT_DECIMALS) -> pd.DataFrame:
    """comparisons.csv: per comparison a pooled row (dataset 'all'), then one per dataset.

    ``data`` are the counted preference answers as :func:`oriented` gives them. Comparisons
    come in order of question type, then methods; p_value_holm adjusts over the comparisons of
    each dataset value ('all' being one family).
    """
    datasets = sorted(data["dataset"].astype(str).unique())
    dataset_code = pd.Categorical(data["dataset"].astype(str), categories=datasets).codes
    result = data["result"].to_numpy()
    groups = data.groupby(COMPARISON_KEY, sort=True, observed=True).indices
    rows: list[dict] = []
    for index, (key, positions) in enumerate(sorted(groups.items())):
        subset = data.iloc[positions]
        _, cells, intervals = dataset_cells(
            subset, dataset_code[positions], result[positions], len(datasets), n_boot,
            np.random.default_rng([seed, 17, index]), confidence)
        for name, cell, interval in zip([ALL_DATASETS, *datasets], cells, intervals):
            if cell.sum() == 0:
                continue
            summary = outcome_summary(cell, interval, decimals)
            rows.append({
                "dataset": name, "question_type": key[0], "method_1": key[1],
                "method_2": key[2], "n_answers": summary["n_answers"],
                "n_participants": summary["n_participants"],
                "method_1_count": summary["first"], "method_2_count": summary["second"],
                "equal": summary["equal"], "method_1_pct": summary["first_pct"],
                "method_2_pct": summary["second_pct"], "equal_pct": summary["equal_pct"],
                "ci_low": summary["ci_low"], "ci_high": summary["ci_high"],
                "p_value": summary["p_value"], "p_value_holm": np.nan,
            })
    table = pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS))
    table["p_value_holm"] = table.groupby("dataset", sort=False)["p_value"].transform(holm)
    return table
