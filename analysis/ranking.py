"""One ranking of every method of a study: a Bradley–Terry model with ties (Davidson 1970).

Every comparison of the study counts (pooled over datasets); a random-swap control of method m
is a contender of its own, ``random(m)``. Each method i has a log-strength θᵢ and the study one
tie parameter ν ≥ 0; in a comparison of i and j

    P(i chosen) = πᵢ / D,  P(j chosen) = πⱼ / D,  P(equal) = ν·√(πᵢπⱼ) / D,
    πᵢ = exp θᵢ,  D = πᵢ + πⱼ + ν·√(πᵢπⱼ),

so among decisive answers P(i over j) = 1 / (1 + exp(θⱼ − θᵢ)), and 'equally reasonable' is
an outcome of its own rather than half a win. θ and log ν are fitted by maximum likelihood
(scipy.optimize, Newton trust-region steps with the analytic gradient and Hessian; the
log-likelihood is concave). Strengths are identified only up to a common shift: the fit holds
one reference method per connected group at θ = 0, and the report then centres each group to
Σθᵢ = 0. Without any 'equal' answer ν is 0 (the plain Bradley–Terry model). When the
likelihood has no finite maximum (e.g. a method chosen in every one of its answers, or never),
a linear programme says so first, and no strengths are written, with a warning.

Confidence intervals are percentiles of a cluster bootstrap that resamples participants (all
answers of a drawn participant, in every comparison, go together); replicates in which the
comparison graph falls apart, or whose likelihood has no finite maximum, are skipped (and
counted in a warning), so the intervals are conditional on a finite fit. A comparison graph
that is not connected (two groups of methods never compared with each other) is reported:
strengths then compare only within their group, and no rank is written.

An adaptive design's answers (``design_weight``, contracts.adaptive) count with their
inverse-probability weights: the likelihood is of weighted counts (a participant's answers in a
pair multiplied by their weight), the bootstrap resamples participants with their weighted counts,
and the preference matrix holds weighted sums; ``n_answers`` stays the answers given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from analysis.comparisons import FIRST, TIE
from analysis.statistics import DEFAULT_BOOTSTRAP, DEFAULT_CONFIDENCE, design_weights
from analysis.vocabulary import RANKING_COLUMNS

MODEL_SENTENCE = (
    "a Bradley–Terry model with ties in Davidson's extension (an 'equally reasonable' answer is "
    "an outcome of its own, with one tie parameter ν for the study), fitted by maximum "
    "likelihood; strength is the natural-log strength θ, centred to sum 0 (over each connected "
    "group of methods), so that among decisive answers P(i over j) = 1 / (1 + exp(θj − θi))")


@dataclass(frozen=True)
class PairCounts:
    """Answers of every compared pair (i < j) of contenders, per participant."""

    contenders: tuple[str, ...]
    low: np.ndarray  # pairs: index of contender i
    high: np.ndarray  # pairs: index of contender j > i
    counts: np.ndarray  # participants × pairs × (i chosen, j chosen, equal); weighted sums
    answers: np.ndarray  # pairs: the answers given (unweighted)


@dataclass(frozen=True)
class Fit:
    """Maximum-likelihood strengths (centred to sum 0 per group) and tie parameter."""

    strength: np.ndarray
    tie: float  # ν
    groups: np.ndarray  # contenders: connected-group label
    parameters: np.ndarray  # θ with each group's reference at 0, then log ν (a warm start)


@dataclass(frozen=True)
class Ranking:
    """ranking.csv, the method × method preference shares, the fit and its warnings."""

    table: pd.DataFrame  # RANKING_COLUMNS, strongest first (empty strengths when no fit)
    chosen: pd.DataFrame  # method × method: answers choosing the row method over the column's
    answered: pd.DataFrame  # method × method: answers of the two (0: never compared)
    fit: Fit | None  # None when the likelihood has no finite maximum
    groups: tuple[tuple[str, ...], ...]
    replicates: int  # bootstrap replicates used (graph connected as in the data)
    warnings: tuple[str, ...]


def pair_counts(oriented: pd.DataFrame) -> PairCounts:
    """Count each participant's answers per pair from :func:`analysis.comparisons.oriented`
    (sums of their design weights where an adaptive design weighted them)."""
    first = oriented["method_1"].astype(str).to_numpy()
    second = oriented["method_2"].astype(str).to_numpy()
    contenders = tuple(sorted(set(first) | set(second)))
    code = {name: k for k, name in enumerate(contenders)}
    one = np.fromiter((code[m] for m in first), np.int64, len(first))
    two = np.fromiter((code[m] for m in second), np.int64, len(second))
    low, high = np.minimum(one, two), np.maximum(one, two)
    result = oriented["result"].to_numpy()
    swapped = one > two  # method 1 is contender j: its choice counts for j
    outcome = np.where(result == TIE, 2, np.where((result == FIRST) != swapped, 0, 1))
    pairs, pair = np.unique(low * len(contenders) + high, return_inverse=True)
    person = oriented.groupby(["study", "participant"], sort=False, observed=True).ngroup()
    person = person.to_numpy()
    n_people = int(person.max()) + 1 if len(person) else 0
    flat = (person * len(pairs) + pair.ravel()) * 3 + outcome
    counts = np.bincount(flat, design_weights(oriented), minlength=n_people * len(pairs) * 3)
    return PairCounts(contenders, pairs // len(contenders), pairs % len(contenders),
                      counts.reshape(n_people, len(pairs), 3),
                      np.bincount(pair.ravel(), minlength=len(pairs)))


def graph_groups(n: int, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Connected-group label of each of ``n`` contenders in the graph of compared pairs."""
    graph = coo_matrix((np.ones(len(low)), (low, high)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def outcome_design(n: int, low: np.ndarray, high: np.ndarray, with_ties: bool) -> np.ndarray:
    """pairs × outcomes × (θ₁…θₙ, log ν): each outcome's log-odds is this row · parameters."""
    design = np.zeros((len(low), 3 if with_ties else 2, n + 1))
    rows = np.arange(len(low))
    design[rows, 0, low] = 1.0
    design[rows, 1, high] = 1.0
    if with_ties:
        design[rows, 2, low] = design[rows, 2, high] = 0.5
        design[:, 2, n] = 1.0
    return design


def has_finite_maximum(design: np.ndarray, totals: np.ndarray, free: np.ndarray) -> bool:
    """False when the likelihood rises without bound along some direction (linear programme).

    The log-likelihood is concave; it has no finite maximum exactly when a direction d of the
    free parameters raises (or keeps) every observed outcome's log-odds at least as much as
    every other outcome of its pair and raises some strictly — e.g. a method chosen in every
    one of its answers. scipy.optimize.linprog maximises the total gain over |d| ≤ 1. When
    each pair has answers for both sides, no such direction exists (a shortcut, no programme).
    """
    if (totals[:, :2] > 0).all():
        return True
    gains = []
    for observed in range(design.shape[1]):
        seen = totals[:, observed] > 0
        for other in range(design.shape[1]):
            if other != observed and seen.any():
                gains.append(design[seen, observed][:, free] - design[seen, other][:, free])
    if not gains:
        return False
    gains = np.vstack(gains)
    result = optimize.linprog(-gains.sum(axis=0), A_ub=-gains, b_ub=np.zeros(len(gains)),
                              bounds=[(-1.0, 1.0)] * int(free.sum()), method="highs")
    return bool(result.status == 0 and -result.fun <= 1e-9 * max(1.0, len(gains)))


def fit_davidson(n: int, low: np.ndarray, high: np.ndarray, totals: np.ndarray,
                 start: np.ndarray | None = None) -> Fit | None:
    """Maximum-likelihood Davidson fit of pair totals (pairs × (i chosen, j chosen, equal)).

    Pairs with no answers are ignored. The first contender of each connected group is the
    reference (θ = 0) while fitting, by Newton trust-region steps (scipy ``trust-exact``)
    with the analytic gradient and Hessian; then every group is centred to Σθ = 0. Without
    'equal' answers ν = 0. None when the likelihood has no finite maximum.
    """
    totals = np.asarray(totals, dtype=np.float64)
    used = totals.sum(axis=1) > 0
    low, high, totals = low[used], high[used], totals[used]
    groups = graph_groups(n, low, high)
    with_ties = bool(totals[:, 2].sum() > 0)
    totals = totals if with_ties else totals[:, :2]
    design = outcome_design(n, low, high, with_ties)
    free = np.ones(n + 1, dtype=bool)
    free[np.unique(groups, return_index=True)[1]] = False
    free[n] = with_ties
    if not has_finite_maximum(design, totals, free):
        return None
    answered = totals.sum(axis=1)
    design = design[:, :, free]

    def negative_loglik(z: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        log_odds = design @ z                                      # pairs × outcomes
        log_d = np.logaddexp.reduce(log_odds, axis=1)
        p = np.exp(log_odds - log_d[:, None])
        mean = np.einsum("po,pok->pk", p, design)
        value = answered @ log_d - np.einsum("po,po->", totals, log_odds)
        gradient = answered @ mean - np.einsum("po,pok->k", totals, design)
        hessian = (np.einsum("p,po,pok,pol->kl", answered, p, design, design)
                   - np.einsum("p,pk,pl->kl", answered, mean, mean))
        return float(value), gradient, hessian

    cache: dict[bytes, tuple[float, np.ndarray, np.ndarray]] = {}

    def part(z: np.ndarray, k: int):
        key = z.tobytes()
        if key not in cache:
            cache.clear()
            cache[key] = negative_loglik(z)
        return cache[key][k]

    z0 = np.zeros(int(free.sum())) if start is None else start[free]
    solution = optimize.minimize(lambda z: part(z, 0), z0, method="trust-exact",
                                 jac=lambda z: part(z, 1), hess=lambda z: part(z, 2),
                                 options={"gtol": 1e-10, "maxiter": 1000})
    x = np.zeros(n + 1)
    x[free] = solution.x
    theta = x[:n] - (np.bincount(groups, x[:n]) / np.bincount(groups))[groups]
    return Fit(theta, float(np.exp(x[n])) if with_ties else 0.0, groups, x)


def pair_matrices(data: PairCounts) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Method × method counts: answers choosing the row method against the column method, and
    all answers of the two (equal included); integers, or weighted sums for weighted answers."""
    n = len(data.contenders)
    totals = data.counts.sum(axis=0)
    chosen = np.zeros((n, n), dtype=totals.dtype)
    answered = np.zeros((n, n), dtype=totals.dtype)
    np.add.at(chosen, (data.low, data.high), totals[:, 0])
    np.add.at(chosen, (data.high, data.low), totals[:, 1])
    np.add.at(answered, (data.low, data.high), totals.sum(axis=1))
    answered += answered.T
    names = list(data.contenders)
    return (pd.DataFrame(chosen, index=names, columns=names),
            pd.DataFrame(answered, index=names, columns=names))


def bootstrap_strengths(data: PairCounts, fit: Fit, n_boot: int,
                        rng: np.random.Generator) -> np.ndarray:
    """Strengths refitted on participant resamples (replicates × contenders).

    Participants with identical counts are interchangeable, so a replicate draws multinomial
    numbers of each distinct count profile (as :func:`analysis.statistics.cluster_bootstrap_ci`).
    Replicates whose comparison graph has more groups than the data's, or whose likelihood
    has no finite maximum, are left out. Each refit starts from the data's fit.
    """
    n = len(data.contenders)
    flat = data.counts.reshape(len(data.counts), -1)
    profiles, multiplicity = np.unique(flat, axis=0, return_counts=True)
    profiles = profiles.astype(np.float64)
    n_groups = int(fit.groups.max()) + 1
    weights = rng.multinomial(len(flat), multiplicity / len(flat), size=n_boot)
    replicates = []
    for weight in weights:
        totals = (weight @ profiles).reshape(-1, 3)
        used = totals.sum(axis=1) > 0
        if int(graph_groups(n, data.low[used], data.high[used]).max()) + 1 != n_groups:
            continue
        refit = fit_davidson(n, data.low, data.high, totals, fit.parameters)
        if refit is not None:
            replicates.append(refit.strength)
    return np.asarray(replicates, dtype=np.float64).reshape(-1, n)


def rank_methods(oriented: pd.DataFrame, n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0,
                 confidence: float = DEFAULT_CONFIDENCE) -> Ranking:
    """Fit the ranking of every contender of the (oriented) counted answers."""
    data = pair_counts(oriented)
    n = len(data.contenders)
    fit = fit_davidson(n, data.low, data.high, data.counts.sum(axis=0))
    groups_of = graph_groups(n, data.low, data.high)
    groups = tuple(tuple(c for c, g in zip(data.contenders, groups_of) if g == label)
                   for label in dict.fromkeys(groups_of.tolist()))
    answered = data.answers
    table = pd.DataFrame({
        "method": data.contenders, "strength": np.nan, "ci_low": np.nan, "ci_high": np.nan,
        "rank": pd.array([pd.NA] * n, dtype="Int64"),
        "n_answers": (np.bincount(data.low, answered, n)
                      + np.bincount(data.high, answered, n)).astype(np.int64)})
    used = 0
    if fit is not None:
        replicates = bootstrap_strengths(data, fit, n_boot, np.random.default_rng([seed, 1970]))
        used = len(replicates)
        table["strength"] = fit.strength
        if used:
            alpha = (1.0 - confidence) / 2.0
            table["ci_low"], table["ci_high"] = np.quantile(replicates, [alpha, 1 - alpha], axis=0)
        if len(groups) == 1:
            table["rank"] = table["strength"].rank(ascending=False, method="min").astype("Int64")
    table = table.sort_values(["strength", "method"], ascending=[False, True], kind="stable",
                              na_position="last").reset_index(drop=True)
    return Ranking(table.loc[:, list(RANKING_COLUMNS)], *pair_matrices(data), fit, groups,
                   used, _warnings(fit, groups, used, n_boot))


def _warnings(fit: Fit | None, groups: tuple[tuple[str, ...], ...], used: int,
              n_boot: int) -> tuple[str, ...]:
    """Disconnected comparison graph, no finite fit, skipped bootstrap replicates."""
    warnings = []
    if len(groups) > 1:
        listed = "; ".join("{" + ", ".join(group) + "}" for group in groups)
        warnings.append(
            f"the comparison graph is not connected: {len(groups)} groups of methods were never "
            f"compared with each other ({listed}); ranking.csv gives strengths that compare "
            "only within a group (each group centred at 0) and no ranks")
    if fit is None:
        warnings.append(
            "the Bradley–Terry likelihood has no finite maximum (some method was chosen in "
            "every one of its answers, or in none, or every answer was 'equal'): ranking.csv "
            "lists the methods without strengths; comparisons.csv still holds every comparison")
    elif used < n_boot:
        warnings.append(f"{n_boot - used} of {n_boot} bootstrap replicates of the ranking were "
                        "skipped (the comparison graph fell apart or the likelihood had no "
                        "finite maximum); its intervals use the other "
                        f"{used}")
    return tuple(warnings)
