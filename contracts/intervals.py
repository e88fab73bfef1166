"""Method 1's share of one comparison with its participant-clustered interval, from seven sums.

Per comparison, over participants i with a_i answers for method 1 among n_i: G, A = Σa_i,
Σb_i, Σe_i, Σa_i², Σa_i·n_i, Σn_i². The share p = A/N is a ratio estimator; its participant-
clustered (sandwich) variance is G/(G-1) · Σ(a_i - p·n_i)² / N², so an interval needs only those
sums — which the dashboard keeps per answer in the database and the adaptive design reads. With
weighted answers (the adaptive design's inverse-probability weights) a_i and n_i are sums of
weights and the same formulas hold. Standard library only (the web worker imports no scipy).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

CONFIDENCE = 0.95


@dataclass(frozen=True)
class ComparisonSums:
    """One comparison's sums over participants: G, Σa, Σb, Σe, Σa², Σa·n, Σn² (n = a + b + e)."""

    comparison: str
    participants: int
    method_1: float
    method_2: float
    equal: float
    a2: float
    an: float
    n2: float

    @property
    def answers(self) -> float:
        return self.method_1 + self.method_2 + self.equal


def clustered_variance(sums: ComparisonSums) -> float | None:
    """The sandwich variance of method 1's share; None under two participants or answers."""
    g, total = sums.participants, sums.answers
    if g < 2 or total == 0:
        return None
    p = sums.method_1 / total
    spread = max(sums.a2 - 2 * p * sums.an + p * p * sums.n2, 0.0)  # Σ(a_i - p n_i)²
    return g / (g - 1) * spread / (total * total)


def clustered_interval(sums: ComparisonSums,
                       confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Method 1's share's interval (fractions), clustered by participant; None under two people.

    The Wilson score interval at the clustered effective sample size n_eff = p(1−p)/V (V the
    sandwich variance; the answers themselves where V is 0): unlike the Wald interval p ± z·√V it
    stays inside [0, 1] and keeps its coverage for shares near 0 or 1, where Wald's fell to 0.87
    (docs/benchmarks.md, "Adaptive design"); near ½ the two agree.
    """
    variance = clustered_variance(sums)
    if variance is None:
        return None
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = sums.method_1 / sums.answers
    n_eff = p * (1 - p) / variance if variance > 1e-12 and 0 < p < 1 else sums.answers
    return wilson_interval(p * n_eff, n_eff, z)


def wilson_interval(successes: float, n: float, z: float) -> tuple[float, float]:
    """The Wilson score interval of ``successes`` of ``n`` (never empty or outside [0, 1])."""
    p, z2 = successes / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(centre - half, 0.0), min(centre + half, 1.0)
