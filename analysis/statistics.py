"""Participant-clustered statistics of comparisons, and the paper's Figure 4 view of them.

Every answer is (comparison, method_1, method_2, result) (contracts.comparisons). Everything is
computed from one integer tensor per comparison, ``counts[participant, dataset, result]`` with
results (method 1, method 2, equal), so 360,000 answers cost a few numpy calls. The paper's view
(:func:`preference_numbers`, ``preferences.csv``) takes its three comparisons, whose method 1 is
BLA-T, and adds:

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

An adaptive design's answers carry inverse-probability weights (``design_weight``,
contracts.adaptive): then every count above is a sum of weights — a participant's hits and totals
in a comparison multiplied by their weight — so shares, their bootstrap intervals, effect sizes and
the sign-flip tests estimate what a balanced study of the same participants would; the printed
answer counts stay the answers given (``weighted_*`` columns carry the weighted sums the
percentages are computed from). Without weights, or with every weight 1, nothing changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import signal, stats
from statsmodels.stats.proportion import proportion_confint

from analysis.percentages import DEFAULT_DECIMALS, WEIGHTED, format_shares
from contracts.columns import DESIGN_WEIGHT
from contracts.comparisons import RESULTS
from contracts.vocabulary import paper_question_types

MIN_INTERVAL_PARTICIPANTS = 2
ALL_DATASETS = "all"
DEFAULT_BOOTSTRAP = 2000
DEFAULT_CONFIDENCE = 0.95
# FFT rounding adds up to ~1e-15 to a tail sum (measured at 10,000 participants), so smaller
# sign-flip p-values are reported as this bound.
P_VALUE_RESOLUTION = 1e-12
# A sign-flip test of weighted (non-integer) differences draws this many random sign vectors
# (p = (1 + as extreme) / (1 + draws), seed SIGN_FLIP_SEED): no exact lattice exists.
SIGN_FLIP_DRAWS = 20_000
SIGN_FLIP_SEED = 28
_CHUNK_CELLS = 2_000_000  # resampling weights held at once (replicates × profiles)

PREFERENCE_COLUMNS: tuple[str, ...] = (
    "dataset", "question_type", "other_methods", "n_answers", "n_participants",
    "bla_t", "other", "equal", "bla_t_pct", "other_pct", "equal_pct", "ci_low", "ci_high",
    "p_value", "p_value_holm", "p_value_participants", "p_value_answers_naive",
    "cohens_h", "difference_pct",
    "between_datasets_f", "between_datasets_df1", "between_datasets_df2", "between_datasets_p",
)
# Printed percentage -> (count, count subtracted from it) over n_answers.
PREFERENCE_PERCENTS: dict[str, tuple[str, ...]] = {
    "bla_t_pct": ("bla_t",), "other_pct": ("other",), "equal_pct": ("equal",),
    "difference_pct": ("bla_t", "other"),
}


@dataclass(frozen=True)
class DatasetTest:
    """Cluster-robust adjusted-Wald F test of equal preference shares across datasets."""

    f: float
    df1: int
    df2: int
    p_value: float


def design_weights(answers: pd.DataFrame) -> np.ndarray | None:
    """Each answer's ``design_weight`` (analysis.io), or None when the column is absent or every
    weight is 1 — a balanced export, which then keeps the integer counts bit for bit."""
    if DESIGN_WEIGHT not in answers.columns:
        return None
    weights = answers[DESIGN_WEIGHT].to_numpy(dtype=np.float64)
    return None if bool(np.all(weights == 1.0)) else weights


def count_tensor(participant: np.ndarray, dataset: np.ndarray, result: np.ndarray,
                 n_participants: int, n_datasets: int,
                 weights: np.ndarray | None = None) -> np.ndarray:
    """Integer codes of each answer -> counts[participant, dataset, result]; with per-answer
    ``weights`` the sums of their weights (floats)."""
    flat = (participant * n_datasets + dataset) * len(RESULTS) + result
    size = n_participants * n_datasets * len(RESULTS)
    return np.bincount(flat, weights, minlength=size).reshape(n_participants, n_datasets,
                                                              len(RESULTS))


def cluster_bootstrap_shares(hits: np.ndarray, totals: np.ndarray, n_boot: int,
                             rng: np.random.Generator) -> np.ndarray:
    """Replicates × cells of sum(hits[:, k]) / sum(totals[:, k]) resampling rows (participants).

    ``hits`` and ``totals`` are participants × cells. Each replicate draws as many participants
    as there are, with replacement, and all cells are computed from the same replicate.
    Participants with identical counts are interchangeable, so a replicate is drawn as
    multinomial numbers of each distinct count profile — the same distribution as drawing
    people one by one, at a cost that grows with the number of profiles, not of people.
    A cell is NaN in a replicate in which no drawn participant answered it.
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
    return shares


def percentile_bounds(replicates: np.ndarray,
                      confidence: float = DEFAULT_CONFIDENCE) -> np.ndarray:
    """Percentile interval of each column of replicates × cells, skipping NaN replicates.

    Returns cells × 2 (low, high); NaN where a cell has no finite replicate.
    """
    alpha = (1.0 - confidence) / 2.0
    with np.errstate(all="ignore"):
        bounds = [np.nanquantile(replicates[:, k], [alpha, 1.0 - alpha])
                  if np.isfinite(replicates[:, k]).any() else [np.nan, np.nan]
                  for k in range(replicates.shape[1])]
    return np.asarray(bounds, dtype=np.float64).reshape(replicates.shape[1], 2)


def cluster_bootstrap_ci(hits: np.ndarray, totals: np.ndarray, n_boot: int,
                         rng: np.random.Generator,
                         confidence: float = DEFAULT_CONFIDENCE) -> np.ndarray:
    """Percentile CIs of sum(hits[:, k]) / sum(totals[:, k]) resampling rows (participants).

    The replicates of :func:`cluster_bootstrap_shares`; replicates in which no drawn participant
    answered a cell are skipped for that cell. Returns cells × 2 (low, high) as shares in
    [0, 1]; NaN where no replicate is usable.
    """
    return percentile_bounds(cluster_bootstrap_shares(hits, totals, n_boot, rng), confidence)


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
    """Two-sided sign-flip test that the ``differences`` (one per participant) sum to 0: exact
    for whole numbers, else :func:`sampled_sign_flip_test` (weighted differences).

    Under the null every participant's difference is symmetric about 0, so the sum is
    Σ εᵢ·|dᵢ| with independent fair signs εᵢ. Participants sharing |d| = a contribute
    a · (2 · Binomial(n_a, 1/2) − n_a); the exact null distribution is the convolution of those
    few lattice distributions (direct or FFT, whichever scipy estimates faster).
    p = P(|Σ εᵢ·|dᵢ|| ≥ |Σ dᵢ|), at least :data:`P_VALUE_RESOLUTION`.
    """
    differences = np.asarray(differences)
    if not np.array_equal(differences, np.round(differences)):
        return sampled_sign_flip_test(differences)
    differences = differences.astype(np.int64)
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


def sampled_sign_flip_test(differences: np.ndarray, draws: int = SIGN_FLIP_DRAWS,
                           seed: int = SIGN_FLIP_SEED) -> float:
    """The sign-flip test of real ``differences`` by ``draws`` random sign vectors.

    As in :func:`sign_flip_test`, participants sharing |d| = a add a · (2 · Binomial(n_a, ½) − n_a),
    so a draw costs one binomial per distinct |d|. p = (1 + draws at least as extreme) / (1 +
    draws), the usual unbiased Monte Carlo p-value; NaN without a non-zero difference.
    """
    differences = np.asarray(differences, dtype=np.float64)
    sizes, counts = np.unique(np.abs(differences[differences != 0]), return_counts=True)
    if sizes.size == 0:
        return math.nan
    observed = abs(float(differences.sum())) * (1 - 1e-12)  # rounding of equal sums
    rng, extreme = np.random.default_rng(seed), 0
    chunk = max(1, _CHUNK_CELLS // sizes.size)
    for start in range(0, draws, chunk):
        heads = rng.binomial(counts, 0.5, size=(min(chunk, draws - start), sizes.size))
        extreme += int((np.abs((2 * heads - counts) @ sizes) >= observed).sum())
    return (1 + extreme) / (1 + draws)


def holm(p_values: pd.Series) -> pd.Series:
    """Holm-adjusted p-values of one family (undefined ones stay NaN and do not count).

    The step-down values of statsmodels' ``multipletests(method="holm")``, computed here because
    that function runs a full ``gc.collect()`` on every call (0.2 s in a process holding
    pandas, scipy and matplotlib; a usefulness report adjusts dozens of families).
    """
    adjusted = pd.Series(math.nan, index=p_values.index)
    defined = p_values.notna().to_numpy()
    values = p_values.to_numpy(dtype=np.float64)[defined]
    if values.size:
        order = np.argsort(values, kind="stable")
        steps = np.maximum.accumulate(values[order] * np.arange(values.size, 0, -1))
        result = np.empty_like(values)
        result[order] = np.minimum(steps, 1.0)
        adjusted[defined] = result
    return adjusted


def cohens_h(wins: int, losses: int) -> float:
    """Cohen's h of the share wins / (wins + losses) against 1/2 (no preference)."""
    if wins + losses == 0:
        return math.nan
    return 2.0 * math.asin(math.sqrt(wins / (wins + losses))) - math.pi / 2.0


def between_datasets_test(counts: np.ndarray) -> DatasetTest | None:
    """Wald test that the (BLA-T, other) shares are equal in every dataset.

    ``counts`` is participants × datasets × results. The covariance of the per-dataset shares
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


def preference_numbers(answers: pd.DataFrame, n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0,
                       confidence: float = DEFAULT_CONFIDENCE) -> pd.DataFrame:
    """The paper's Figure 4 view of the comparison model, with unrounded numbers.

    One row per paper question type (dataset 'all') followed by one per dataset in it. ``answers``
    are counted preference answers as :func:`analysis.io.read_answers` gives them (study,
    participant, question_type, dataset, method_a, method_b, method_1, result). Each paper
    comparison's method 1 is BLA-T (contracts.vocabulary), so ``bla_t`` counts method-1 results and
    ``other`` method-2 results, pooled over the methods shown as its second side (the paper's
    Grad-CAM stand-in for CAM). Percentages and ``ci_*`` are floats in percent; the interval is
    as :func:`usable_intervals` gives it.
    """
    datasets = sorted(answers["dataset"].astype(str).unique())
    dataset_code = pd.Categorical(answers["dataset"].astype(str), categories=datasets).codes
    result = answers["result"].to_numpy()
    shown = np.where(answers["method_a"].astype(str) == answers["method_1"].astype(str),
                     answers["method_b"].astype(str), answers["method_a"].astype(str))
    weights = design_weights(answers)
    rows: list[dict] = []
    for index, question_type in enumerate(paper_question_types()):
        mask = (answers["question_type"] == question_type).to_numpy()
        if not mask.any():
            continue
        counts, cells, intervals, raw = dataset_cells(
            answers.loc[mask], dataset_code[mask], result[mask], len(datasets), n_boot,
            np.random.default_rng([seed, index]), confidence,
            None if weights is None else weights[mask])
        test = between_datasets_test(counts)
        for k, (name, cell) in enumerate(zip([ALL_DATASETS, *datasets], cells)):
            if raw[k].sum() == 0:
                continue
            in_cell = mask if k == 0 else mask & (dataset_code == k - 1)
            row = _cell_row(name, question_type, "+".join(sorted(set(shown[in_cell]))), cell,
                            intervals[k], None if weights is None else raw[k])
            if k == 0 and test is not None:
                row.update(between_datasets_f=test.f, between_datasets_df1=test.df1,
                           between_datasets_df2=test.df2, between_datasets_p=test.p_value)
            rows.append(row)
    table = pd.DataFrame(rows, columns=with_weighted_columns(PREFERENCE_COLUMNS, rows))
    table["p_value_holm"] = table.groupby("dataset", sort=False)["p_value"].transform(holm)
    return table.astype({"between_datasets_df1": "Int64", "between_datasets_df2": "Int64"})


def preference_table(answers: pd.DataFrame, n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0,
                     confidence: float = DEFAULT_CONFIDENCE,
                     decimals: int = DEFAULT_DECIMALS) -> pd.DataFrame:
    """preferences.csv: :func:`preference_numbers` with percentages and intervals as printed text
    (rounded by :mod:`analysis.percentages`, '' where undefined)."""
    return format_shares(preference_numbers(answers, n_boot, seed, confidence), PREFERENCE_PERCENTS,
                         decimals)


def weighted_columns(counts: tuple[str, str, str], weighted: tuple[float, ...] | None) -> dict[str, float]:
    """A row's ``weighted_*`` columns: the weighted sums of its three ``counts`` columns and of
    n_answers; none without weights."""
    if weighted is None:
        return {}
    return {f"{WEIGHTED}{name}": value
            for name, value in zip((*counts, "n_answers"), (*weighted, sum(weighted)), strict=True)}


def with_weighted_columns(columns: tuple[str, ...], rows: list[dict]) -> list[str]:
    """A numbers table's columns: ``columns``, then the ``weighted_*`` ones its rows carry."""
    return [*columns, *(key for key in (rows[0] if rows else {}) if key.startswith(WEIGHTED))]


def _cell_row(dataset: str, question_type: str, other_methods: str, cell: np.ndarray,
              interval: np.ndarray, raw: np.ndarray | None = None) -> dict:
    """The preference row of one cell from its participants × results counts (``raw``: the
    answer counts where ``cell`` holds weighted sums)."""
    summary = result_summary(cell, interval, raw)
    bla, other, n = summary["first"], summary["second"], summary["n_answers"]
    weighted = summary.get("weighted")
    w_bla, w_other, w_n = (bla, other, n) if weighted is None else (
        weighted[0], weighted[1], sum(weighted))
    columns = weighted_columns(("bla_t", "other", "equal"), weighted)
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
        "cohens_h": cohens_h(w_bla, w_other),
        "difference_pct": 100.0 * (w_bla - w_other) / w_n,
        "between_datasets_f": math.nan, "between_datasets_df1": None,
        "between_datasets_df2": None, "between_datasets_p": math.nan, **columns,
    }


def dataset_cells(subset: pd.DataFrame, dataset_code: np.ndarray, result_code: np.ndarray,
                  n_datasets: int, n_boot: int, rng: np.random.Generator,
                  confidence: float = DEFAULT_CONFIDENCE, weights: np.ndarray | None = None,
                  ) -> tuple[np.ndarray, list[np.ndarray], np.ndarray, list[np.ndarray]]:
    """Counts of one comparison pooled and per dataset, with the first result's bootstrap CIs.

    ``subset`` holds the comparison's answers (columns study, participant); the codes give each
    answer's dataset and result (0 first method, 1 second, 2 equal). Returns the tensor
    participants × datasets × results, the cells [pooled, dataset 0, …] as participants ×
    results, and cells × 2 intervals of the first result's share of all answers
    (:func:`usable_intervals` of a cluster bootstrap whose replicates draw participants for every
    cell at once), and the cells of answer counts. With per-answer ``weights`` the tensor, the
    cells and the intervals are of sums of weights; the last cells stay the answers given.
    """
    person = subset.groupby(["study", "participant"], sort=False, observed=True).ngroup()
    person = person.to_numpy()
    shape = (person, dataset_code, result_code, int(person.max()) + 1, n_datasets)
    counts = count_tensor(*shape, weights)
    answered = counts if weights is None else count_tensor(*shape)

    def cells_of(tensor: np.ndarray) -> list[np.ndarray]:
        return [tensor.sum(axis=1)] + [tensor[:, d, :] for d in range(n_datasets)]
    cells = cells_of(counts)
    hits = np.stack([cell[:, 0] for cell in cells], axis=1)
    totals = np.stack([cell.sum(axis=1) for cell in cells], axis=1)
    bounds = cluster_bootstrap_ci(hits, totals, n_boot, rng, confidence)
    return (counts, cells, usable_intervals(hits, totals, bounds, confidence),
            cells if weights is None else cells_of(answered))


def usable_intervals(hits: np.ndarray, totals: np.ndarray, bounds: np.ndarray,
                     confidence: float = DEFAULT_CONFIDENCE) -> np.ndarray:
    """The intervals of sum(hits[:, k]) / sum(totals[:, k]) the report shows (cells × 2 shares).

    ``bounds`` are the cluster-bootstrap intervals of the cells. With fewer than
    :data:`MIN_INTERVAL_PARTICIPANTS` participants a cell gets none (NaN): one person's answers
    say nothing about other people. Where every participant answered in the same proportions,
    resampling people shows no spread and the bootstrap interval is a point, which would claim
    certainty; such a cell gets the Wilson score interval of its answers instead (the interval
    if answers were independent, as people who do not differ make them).
    """
    shown = np.full((hits.shape[1], 2), np.nan)
    for k, (low, high) in enumerate(np.asarray(bounds, dtype=np.float64)):
        if int((totals[:, k] > 0).sum()) < MIN_INTERVAL_PARTICIPANTS:
            continue
        if low < high:
            shown[k] = low, high
        else:
            shown[k] = proportion_confint(hits[:, k].sum(), totals[:, k].sum(),
                                          alpha=1.0 - confidence, method="wilson")
    return shown


def result_summary(cell: np.ndarray, interval: np.ndarray, raw: np.ndarray | None = None) -> dict:
    """Counts, percentages, interval and sign-flip p of one participants × results cell.

    Keys: n_answers, n_participants, first, second, equal, first_pct, second_pct, equal_pct,
    ci_low, ci_high (percent; ``interval`` of the first method's share of all answers), p_value
    (first against second). Percentages are unrounded floats. Where ``cell`` holds weighted sums,
    ``raw`` gives the answer counts (the count keys) and key ``weighted`` the cell's weighted
    (first, second, equal), which the percentages and the test use.
    """
    counted = cell if raw is None else raw
    first, second, equal = (int(v) for v in counted.sum(axis=0))
    n = first + second + equal
    share = (first, second, equal) if raw is None else tuple(float(v) for v in cell.sum(axis=0))
    total = sum(share)
    return {
        "n_answers": n, "n_participants": int((counted.sum(axis=1) > 0).sum()),
        "first": first, "second": second, "equal": equal,
        "first_pct": 100.0 * share[0] / total, "second_pct": 100.0 * share[1] / total,
        "equal_pct": 100.0 * share[2] / total, "ci_low": 100.0 * float(interval[0]),
        "ci_high": 100.0 * float(interval[1]), "p_value": sign_flip_test(cell[:, 0] - cell[:, 1]),
        **({} if raw is None else {"weighted": share}),
    }
