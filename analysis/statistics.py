"""Preference statistics per question type and per (dataset, question type) cell.

Everything is computed from one integer tensor per question type, ``counts[participant,
dataset, outcome]`` with outcomes (BLA-T, other, equal), so 360,000 answers cost a few
numpy calls:

* share of answers preferring BLA-T with a percentile confidence interval from a cluster
  bootstrap that resamples participants (one person's answers are not independent);
* the headline test ``p_value``: an exact participant-level sign-flip (randomisation) test of
  BLA-T against the other method. Its statistic is the sum over participants of (BLA-T answers
  − other answers), so it tests the pooled shares the report shows; under the null each
  participant's difference is as likely positive as negative, whatever their personal taste,
  so answers of one person may be correlated in any way. Holm-adjusted over the question
  types of each dataset row (``p_value_holm``);
* an exact two-sided binomial sign test over participants (each participant's majority between
  the two methods), and the same test over answers (``p_value_answers_naive``), which treats
  answers as independent and so rejects a true null far too often when people differ in taste;
* effect sizes: Cohen's h of the BLA-T share among decisive answers against 1/2, and the
  difference BLA-T minus other in percentage points of all answers;
* a test whether preferences differ between datasets: a Wald test of equal (BLA-T, other)
  shares in every dataset with a cluster-robust (participant-level sandwich) covariance, as an
  adjusted-Wald F statistic (the small-sample correction survey software uses for clustered
  data; the plain chi-square reference rejects far too often with few dozen participants).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pandas as pd
from scipy import signal, stats
from statsmodels.stats.multitest import multipletests

from analysis.percentages import DEFAULT_DECIMALS, format_fraction, format_percent
from analysis.vocabulary import BLA_T, EQUAL, QUESTION_TYPES

OUTCOMES: tuple[str, ...] = (BLA_T, "other", EQUAL)
ALL_DATASETS = "all"
DEFAULT_BOOTSTRAP = 2000
DEFAULT_CONFIDENCE = 0.95
# FFT rounding adds up to ~1e-15 to a tail sum (measured at 10,000 participants), so smaller
# sign-flip p-values are reported as this bound.
P_VALUE_RESOLUTION = 1e-12
_CHUNK_CELLS = 2_000_000  # resampling weights held at once (replicates × profiles)

PREFERENCE_COLUMNS: tuple[str, ...] = (
    "dataset", "question_type", "other_methods", "n_answers", "n_participants",
    "bla_t", "other", "equal", "bla_t_pct", "other_pct", "equal_pct", "ci_low", "ci_high",
    "p_value", "p_value_holm", "p_value_participants", "p_value_answers_naive",
    "cohens_h", "difference_pct",
    "between_datasets_f", "between_datasets_df1", "between_datasets_df2", "between_datasets_p",
)


@dataclass(frozen=True)
class DatasetTest:
    """Cluster-robust adjusted-Wald F test of equal preference shares across datasets."""

    f: float
    df1: int
    df2: int
    p_value: float


def count_tensor(participant: np.ndarray, dataset: np.ndarray, outcome: np.ndarray,
                 n_participants: int, n_datasets: int) -> np.ndarray:
    """Integer codes of each answer -> counts[participant, dataset, outcome]."""
    flat = (participant * n_datasets + dataset) * len(OUTCOMES) + outcome
    size = n_participants * n_datasets * len(OUTCOMES)
    return np.bincount(flat, minlength=size).reshape(n_participants, n_datasets, len(OUTCOMES))


def cluster_bootstrap_ci(hits: np.ndarray, totals: np.ndarray, n_boot: int,
                         rng: np.random.Generator,
                         confidence: float = DEFAULT_CONFIDENCE) -> np.ndarray:
    """Percentile CIs of sum(hits[:, k]) / sum(totals[:, k]) resampling rows (participants).

    ``hits`` and ``totals`` are participants × cells. Each replicate draws as many participants
    as there are, with replacement, and all cells are computed from the same replicate.
    Participants with identical counts are interchangeable, so a replicate is drawn as
    multinomial numbers of each distinct count profile — the same distribution as drawing
    people one by one, at a cost that grows with the number of profiles, not of people.
    Replicates in which no drawn participant answered a cell are skipped for that cell.
    Returns cells × 2 (low, high) as shares in [0, 1]; NaN where no replicate is usable.
    """
    n_people, n_cells = hits.shape
    profiles, multiplicity = np.unique(np.hstack([hits, totals]), axis=0, return_counts=True)
    profiles = profiles.astype(np.float64)
    probabilities = multiplicity / n_people
    shares = np.empty((n_boot, n_cells))
    chunk = max(1, _CHUNK_CELLS // len(profiles))
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        weights = rng.multinomial(n_people, probabilities, size=size)
        sums = weights.astype(np.float64) @ profiles
        with np.errstate(invalid="ignore", divide="ignore"):
            shares[start:start + size] = sums[:, :n_cells] / sums[:, n_cells:]
    alpha = (1.0 - confidence) / 2.0
    with np.errstate(all="ignore"):
        bounds = [np.nanquantile(shares[:, k], [alpha, 1.0 - alpha])
                  if np.isfinite(shares[:, k]).any() else [np.nan, np.nan]
                  for k in range(n_cells)]
    return np.asarray(bounds, dtype=np.float64).reshape(n_cells, 2)


def sign_test(wins: int, losses: int) -> float:
    """Exact two-sided binomial test of wins against losses at p = 1/2 (ties already removed)."""
    if wins + losses == 0:
        return math.nan
    return float(stats.binomtest(int(wins), int(wins + losses), 0.5).pvalue)


def participant_sign_test(bla: np.ndarray, other: np.ndarray) -> float:
    """Sign test over participants: who chose BLA-T more often than the other method, or less."""
    difference = np.asarray(bla) - np.asarray(other)
    return sign_test(int((difference > 0).sum()), int((difference < 0).sum()))


def sign_flip_test(differences: np.ndarray) -> float:
    """Exact two-sided sign-flip test that the integer ``differences`` (one per participant) sum to 0.

    Under the null every participant's difference is symmetric about 0, so the sum is
    Σ εᵢ·|dᵢ| with independent fair signs εᵢ. Participants sharing |d| = a contribute
    a · (2 · Binomial(n_a, 1/2) − n_a); the exact null distribution is the convolution of those
    few lattice distributions (direct or FFT, whichever scipy estimates faster).
    p = P(|Σ εᵢ·|dᵢ|| ≥ |Σ dᵢ|), at least :data:`P_VALUE_RESOLUTION`.
    """
    differences = np.asarray(differences, dtype=np.int64)
    sizes, counts = np.unique(np.abs(differences[differences != 0]), return_counts=True)
    if sizes.size == 0:
        return math.nan
    null = np.ones(1)
    for size, count in zip(sizes.tolist(), counts.tolist()):
        group = np.zeros(2 * size * count + 1)
        group[::2 * size] = stats.binom.pmf(np.arange(count + 1), count, 0.5)
        null = signal.convolve(null, group)
    reach = (null.size - 1) // 2
    observed = abs(int(differences.sum()))
    extreme = np.abs(np.arange(-reach, reach + 1)) >= observed
    return float(np.clip(null[extreme].sum(), P_VALUE_RESOLUTION, 1.0))


def holm(p_values: pd.Series) -> pd.Series:
    """Holm-adjusted p-values of one family (undefined ones stay NaN and do not count)."""
    adjusted = pd.Series(math.nan, index=p_values.index)
    defined = p_values.notna()
    if defined.any():
        adjusted[defined] = multipletests(p_values[defined].to_numpy(), method="holm")[1]
    return adjusted


def cohens_h(wins: int, losses: int) -> float:
    """Cohen's h of the share wins / (wins + losses) against 1/2 (no preference)."""
    if wins + losses == 0:
        return math.nan
    return 2.0 * math.asin(math.sqrt(wins / (wins + losses))) - math.pi / 2.0


def between_datasets_test(counts: np.ndarray) -> DatasetTest | None:
    """Wald test that the (BLA-T, other) shares are equal in every dataset.

    ``counts`` is participants × datasets × outcomes. The covariance of the per-dataset shares
    is the cluster-robust (linearisation / sandwich) estimate with participants as clusters,
    so answers of one person — within and across datasets — may be correlated. With Wald
    statistic W, k the rank of the contrast covariance (at most 2 · (datasets − 1)) and
    d = participants − 1, F = (d − k + 1) · W / (k · d) is referred to F(k, d − k + 1)
    (adjusted Wald test, Korn & Graubard 1990). None when there are fewer than two datasets;
    NaN statistics when there are too few participants (d − k + 1 < 1) or no variation.
    """
    counts = counts[:, counts.sum(axis=(0, 2)) > 0, :]
    n_people, n_datasets, _ = counts.shape
    if n_datasets < 2:
        return None
    if n_people < 2:
        return DatasetTest(math.nan, 0, 0, math.nan)
    answered = counts.sum(axis=2).astype(np.float64)           # people × datasets
    chosen = counts[:, :, :2].astype(np.float64)                # people × datasets × (bla, other)
    per_dataset = answered.sum(axis=0)
    shares = chosen.sum(axis=0) / per_dataset[:, None]          # datasets × 2
    influence = (chosen - shares[None] * answered[:, :, None]) / per_dataset[None, :, None]
    influence = influence.reshape(n_people, -1)
    covariance = influence.T @ influence * (n_people / (n_people - 1))
    contrast = np.zeros((2 * (n_datasets - 1), 2 * n_datasets))
    for d in range(1, n_datasets):
        for c in range(2):
            contrast[2 * (d - 1) + c, 2 * d + c] = 1.0
            contrast[2 * (d - 1) + c, c] = -1.0
    difference = contrast @ shares.reshape(-1)
    spread = contrast @ covariance @ contrast.T
    scale = max(float(np.abs(spread).max()), np.finfo(float).tiny)
    rank = int(np.linalg.matrix_rank(spread, tol=1e-10 * scale))
    df2 = n_people - rank
    if rank == 0 or df2 < 1:
        return DatasetTest(math.nan, rank, max(df2, 0), math.nan)
    wald = float(difference @ np.linalg.pinv(spread, rcond=1e-10, hermitian=True) @ difference)
    f = df2 * wald / (rank * (n_people - 1))
    return DatasetTest(f, rank, df2, float(stats.f.sf(f, rank, df2)))


def preference_table(answers: pd.DataFrame, n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0,
                     confidence: float = DEFAULT_CONFIDENCE,
                     decimals: int = DEFAULT_DECIMALS) -> pd.DataFrame:
    """One row per question type (dataset 'all') followed by one per dataset in it.

    ``answers`` needs columns study, participant, question_type, dataset, outcome and
    other_method (as :func:`analysis.io.read_answers` gives them). Counts are integers;
    ``*_pct``, ``ci_*`` and ``difference_pct`` are percentages as text rounded by
    :mod:`analysis.percentages`; p-values and effect sizes are floats (NaN where undefined).
    """
    datasets = sorted(answers["dataset"].unique())
    dataset_code = pd.Categorical(answers["dataset"], categories=datasets).codes
    outcome_code = pd.Categorical(answers["outcome"], categories=OUTCOMES).codes
    rows: list[dict] = []
    for index, question_type in enumerate(QUESTION_TYPES):
        mask = (answers["question_type"] == question_type).to_numpy()
        if not mask.any():
            continue
        subset = answers.loc[mask]
        counts, cells, intervals = dataset_cells(
            subset, dataset_code[mask], outcome_code[mask], len(datasets), n_boot,
            np.random.default_rng([seed, index]), confidence)
        test = between_datasets_test(counts)
        names = [ALL_DATASETS] + datasets
        for k, (name, cell) in enumerate(zip(names, cells)):
            if cell.sum() == 0:
                continue
            others = subset["other_method"] if k == 0 else \
                subset.loc[subset["dataset"] == name, "other_method"]
            row = _cell_row(name, question_type, "+".join(sorted(others.unique())), cell,
                            intervals[k], decimals)
            if k == 0 and test is not None:
                row.update(between_datasets_f=test.f, between_datasets_df1=test.df1,
                           between_datasets_df2=test.df2, between_datasets_p=test.p_value)
            rows.append(row)
    table = pd.DataFrame(rows, columns=list(PREFERENCE_COLUMNS))
    table["p_value_holm"] = table.groupby("dataset", sort=False)["p_value"].transform(holm)
    return table.astype({"between_datasets_df1": "Int64", "between_datasets_df2": "Int64"})


def _cell_row(dataset: str, question_type: str, other_methods: str, cell: np.ndarray,
              interval: np.ndarray, decimals: int) -> dict:
    """The preference row of one cell from its participants × outcomes counts."""
    summary = outcome_summary(cell, interval, decimals)
    bla, other, n = summary["first"], summary["second"], summary["n_answers"]
    return {
        "dataset": dataset, "question_type": question_type, "other_methods": other_methods,
        "n_answers": n, "n_participants": summary["n_participants"],
        "bla_t": bla, "other": other, "equal": summary["equal"],
        "bla_t_pct": summary["first_pct"], "other_pct": summary["second_pct"],
        "equal_pct": summary["equal_pct"], "ci_low": summary["ci_low"],
        "ci_high": summary["ci_high"], "p_value": summary["p_value"],
        "p_value_holm": math.nan,
        "p_value_participants": participant_sign_test(cell[:, 0], cell[:, 1]),
        "p_value_answers_naive": sign_test(bla, other),
        "cohens_h": cohens_h(bla, other),
        "difference_pct": format_percent(bla - other, n, decimals),
        "between_datasets_f": math.nan, "between_datasets_df1": None,
        "between_datasets_df2": None, "between_datasets_p": math.nan,
    }


def dataset_cells(subset: pd.DataFrame, dataset_code: np.ndarray, outcome_code: np.ndarray,
                  n_datasets: int, n_boot: int, rng: np.random.Generator,
                  confidence: float = DEFAULT_CONFIDENCE,
                  ) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """Counts of one comparison pooled and per dataset, with the first outcome's bootstrap CIs.

    ``subset`` holds the comparison's answers (columns study, participant); the codes give each
    answer's dataset and outcome (0 first method, 1 second, 2 equal). Returns the tensor
    participants × datasets × outcomes, the cells [pooled, dataset 0, …] as participants ×
    outcomes, and cells × 2 cluster-bootstrap intervals of the first outcome's share of all
    answers (one replicate draws participants for every cell at once).
    """
    person = subset.groupby(["study", "participant"], sort=False, observed=True).ngroup()
    person = person.to_numpy()
    counts = count_tensor(person, dataset_code, outcome_code, int(person.max()) + 1, n_datasets)
    cells = [counts.sum(axis=1)] + [counts[:, d, :] for d in range(n_datasets)]
    hits = np.stack([cell[:, 0] for cell in cells], axis=1)
    totals = np.stack([cell.sum(axis=1) for cell in cells], axis=1)
    return counts, cells, cluster_bootstrap_ci(hits, totals, n_boot, rng, confidence)


def outcome_summary(cell: np.ndarray, interval: np.ndarray, decimals: int) -> dict:
    """Counts, percentages, CI (as text) and sign-flip p of one participants × outcomes cell.

    Keys: n_answers, n_participants, first, second, equal, first_pct, second_pct, equal_pct,
    ci_low, ci_high (of the first method's share of all answers), p_value (first against second).
    """
    first, second, equal = (int(v) for v in cell.sum(axis=0))
    n = first + second + equal
    ci = ["" if math.isnan(v) else format_fraction(Fraction(100.0 * v), decimals)
          for v in interval]
    return {
        "n_answers": n, "n_participants": int((cell.sum(axis=1) > 0).sum()),
        "first": first, "second": second, "equal": equal,
        "first_pct": format_percent(first, n, decimals),
        "second_pct": format_percent(second, n, decimals),
        "equal_pct": format_percent(equal, n, decimals),
        "ci_low": ci[0], "ci_high": ci[1],
        "p_value": sign_flip_test(cell[:, 0].astype(np.int64) - cell[:, 1]),
    }
