"""Participant anomaly scores: how unlike the other participants' a participant's answers are.

As Chatbot Arena screens its voters (Chiang et al. 2024, "Detecting anomalous users"): every answer
gets a p-value under the outcome shares of its comparison among the *other* participants, and
Fisher's statistic X = −2 Σ log p combines one participant's p-values. An answer's p-value is the
probability of an outcome no more likely than the one given, outcomes exactly as likely counting
half (the mid-p value: deterministic, so the dashboard and the report agree). Mid-p values of so few
outcomes are far from uniform, so X is not χ²(2n) under the null (that reference would be very
conservative and miss most random responders); instead X's exact null mean and variance follow from
the shares, answer by answer, and the anomaly p is the tail of the scaled χ² with those two moments
(Satterthwaite). Shares are smoothed with one pseudo-answer per outcome so that a first or unanimous
comparison never gives p = 0. Standard library only (the dashboard's web worker imports no scipy).

A low anomaly p says "answers unlike everyone else's": random responders against a clear consensus,
or a genuine minority taste. It is a flag for a researcher to look at, never an exclusion rule.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

DEFAULT_ANOMALY_ALPHA = 0.1
PSEUDO_ANSWERS = 1.0  # added to each outcome's count of the other participants


def outcome_p_values(others: Sequence[float]) -> list[float]:
    """Mid-p value of each outcome under the smoothed shares of ``others``, the other participants'
    counts of each outcome of the same comparison."""
    weights = [count + PSEUDO_ANSWERS for count in others]
    shares = [w / sum(weights) for w in weights]
    return [sum(s for s in shares if s < own) + 0.5 * sum(s for s in shares if s == own)
            for own in shares]


def answer_p_value(others: Sequence[float], outcome: int) -> float:
    """Mid-p value of ``outcome`` (an index into ``others``), see :func:`outcome_p_values`."""
    return outcome_p_values(others)[outcome]


def null_moments(others: Sequence[float]) -> tuple[float, float]:
    """Mean and variance of one answer's −2·log p when the answer follows the others' shares."""
    weights = [count + PSEUDO_ANSWERS for count in others]
    shares = [w / sum(weights) for w in weights]
    values = [-2.0 * math.log(p) for p in outcome_p_values(others)]
    mean = sum(q * v for q, v in zip(shares, values))
    return mean, max(0.0, sum(q * v * v for q, v in zip(shares, values)) - mean * mean)


def gamma_upper(a: float, x: float) -> float:
    """The regularized upper incomplete gamma Q(a, x) = Γ(a, x) / Γ(a) (series below a + 1, the
    continued fraction above: Numerical Recipes' gammq)."""
    if a <= 0:
        raise ValueError(f"the shape must be positive, got {a}")
    if x <= 0:
        return 1.0
    log_front = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        for n in range(1, 10_000):
            term *= x / (a + n)
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - math.exp(log_front) * total)
    tiny = 1e-300
    b, c, d = x + 1 - a, 1.0 / tiny, 1.0 / (x + 1 - a)
    h = d
    for n in range(1, 10_000):
        an = -n * (n - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return min(1.0, math.exp(log_front) * h)


AnomalyTerms = tuple[float, float, float, int]  # Fisher's statistic, its null mean and variance, answers


def comparison_terms(counts: Sequence[int], others: Sequence[float]) -> AnomalyTerms:
    """One comparison's part of a participant's Fisher statistic, of its null mean and variance, and
    the number of answers: ``counts`` are the participant's per outcome, ``others`` everyone else's."""
    values = [-2.0 * math.log(p) for p in outcome_p_values(others)]
    one_mean, one_variance = null_moments(others)
    n = sum(counts)
    return sum(c * v for c, v in zip(counts, values)), n * one_mean, n * one_variance, n


def combined_anomaly_p(terms: Iterable[AnomalyTerms]) -> float | None:
    """Anomaly p from the :func:`comparison_terms` of a participant's comparisons; None without answers."""
    statistic = mean = variance = 0.0
    answered = 0
    for one_statistic, one_mean, one_variance, n in terms:
        statistic += one_statistic
        mean, variance, answered = mean + one_mean, variance + one_variance, answered + n
    if not answered:
        return None
    if variance <= 0:
        return 1.0  # the others' shares give no outcome more weight: nothing can be unusual
    scale, dof = variance / (2 * mean), 2 * mean * mean / variance
    return gamma_upper(dof / 2, statistic / (2 * scale))


def fisher_anomaly_p(own: Mapping[str, Sequence[int]],
                     totals: Mapping[str, Sequence[int]]) -> float | None:
    """Anomaly p of one participant's answers; None without answers.

    ``own`` maps each comparison to the participant's counts per outcome, ``totals`` to the counts
    of everyone (the participant included, who is taken out here) — the shape of the dashboard's
    per participant aggregates and of the report's count table alike.
    """
    return combined_anomaly_p(
        comparison_terms(counts, [t - c for t, c in zip(totals[comparison], counts, strict=True)])
        for comparison, counts in own.items())
