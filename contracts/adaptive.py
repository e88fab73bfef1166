"""The adaptive design: which comparisons a new participant answers, and the weights that keep
estimates unbiased.

Chatbot Arena (Chiang et al. 2024) samples the next pair a with probability proportional to
√(Σ_aa/n_a) − √(Σ_aa/(n_a+1)): the shrinkage of pair a's standard error that one more answer buys,
Σ_aa being the per-answer variance of its estimate and n_a its answers so far. Here Σ_aa is the
participant-clustered (sandwich) variance of method 1's share (contracts.intervals) times n_a, so
comparisons whose share is near ½, or whose participants disagree, get more answers, and settled
ones (a random-swap control at 90 %) fewer. Every comparison keeps at least ``min_share`` of its
balanced share 1/K.

A participant's T questions are split across comparisons in proportion to the probabilities, with
randomised rounding (each count is ⌊T·p_a⌋ or one more, the expectation exactly T·p_a, the total
exactly T). An answer of comparison a then carries the inverse-probability weight 1/(K·p_a): the
balanced design's expected count over the adaptive one's, so weighted sums estimate what a balanced
study of the same participants would — each participant counting equally in each comparison, even
when who is asked what changes over the study. Standard library only (the server imports it).
"""
from __future__ import annotations

import math
import random
from collections.abc import Mapping

from contracts.intervals import ComparisonSums, clustered_variance

DEFAULT_MIN_SHARE = 0.5  # every comparison gets at least half of its balanced share 1/K
PRIOR_VARIANCE = 0.25  # per answer, for a comparison without answers: p(1−p) at ½


SHARES, RANKING = "shares", "ranking"
OBJECTIVES: tuple[str, ...] = (SHARES, RANKING)


def per_answer_variance(sums: ComparisonSums | None, objective: str = SHARES) -> float:
    """Σ_aa, per answer: for ``shares`` the clustered variance of the comparison's share times its
    answers (the binomial variance of the smoothed share (A + 1)/(N + 2) where that is not
    estimable: under two participants, or no spread between them; p(1−p) at ½ without answers);
    for ``ranking`` the same on the log-odds scale the Bradley–Terry strengths live on (divided by
    (p(1−p))², the delta method), so that lopsided comparisons, which inform a strength little per
    answer, get more answers rather than fewer."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    if sums is None or sums.answers == 0:
        return PRIOR_VARIANCE / (0.25 * 0.25) if objective == RANKING else PRIOR_VARIANCE
    share = (sums.method_1 + 1) / (sums.answers + 2)
    variance = clustered_variance(sums)
    if variance is not None and variance > 0:
        per_answer = variance * sums.answers
    else:
        per_answer = share * (1 - share)
    return per_answer / (share * (1 - share)) ** 2 if objective == RANKING else per_answer


def adaptive_probabilities(comparisons: list[str], sums: Mapping[str, ComparisonSums],
                           min_share: float = DEFAULT_MIN_SHARE,
                           objective: str = SHARES) -> dict[str, float]:
    """Each comparison's probability for the next participant's questions (summing to 1).

    ``sums`` holds the answers so far (a comparison without any is missing or empty);
    ``objective`` is what to make precise, the pairwise ``shares`` or the ``ranking``. ValueError
    when ``min_share`` is outside [0, 1] or no comparison is given.
    """
    if not comparisons:
        raise ValueError("an adaptive design needs at least one comparison")
    if not 0 <= min_share <= 1:
        raise ValueError(f"min_share must be between 0 and 1, got {min_share}")
    gains = {}
    for comparison in comparisons:
        current = sums.get(comparison)
        n = max(current.answers if current is not None else 0, 1)
        sigma = per_answer_variance(current, objective)
        gains[comparison] = math.sqrt(sigma / n) - math.sqrt(sigma / (n + 1))
    floor = min_share / len(comparisons)
    total = sum(gains.values())
    return {c: floor + (1 - min_share) * gains[c] / total for c in comparisons}


def allocate(probabilities: Mapping[str, float], questions: int,
             rng: random.Random) -> dict[str, int]:
    """Questions per comparison: ⌊T·p⌋ each, the remaining ones to comparisons drawn with
    probability proportional to their fractional parts (without replacement), so E[count] = T·p."""
    expected = {c: questions * p for c, p in probabilities.items()}
    counts = {c: math.floor(e) for c, e in expected.items()}
    # Systematic sampling over the fractional parts (each below 1, summing to the questions left):
    # points start, start + 1, … fall into comparison c's stretch with probability its fraction.
    start, cumulative = rng.random(), 0.0
    for comparison, value in expected.items():
        before = cumulative
        cumulative += value - counts[comparison]
        counts[comparison] += (math.ceil(round(cumulative - start, 9))
                               - math.ceil(round(before - start, 9)))
    return counts


def design_weight(probability: float, comparisons: int) -> float:
    """The inverse-probability weight of an answer whose comparison had ``probability``: 1/(K·p)
    (1 in a balanced design, where p = 1/K)."""
    return 1.0 / (comparisons * probability)
