"""The participant anomaly p computed independently of contracts/anomaly.py, with numpy and scipy."""
from __future__ import annotations

import numpy as np
from scipy.special import gammaincc


def moment_matched_p(shares: list[float], chosen: list[int]) -> float:
    """The anomaly p computed independently: mid-p values, −2·log p, its null mean and variance per
    answer, and the scaled χ² with those moments (scipy's incomplete gamma)."""
    q = np.array(shares)
    p = np.array([q[q < s].sum() + 0.5 * q[q == s].sum() for s in q])
    v = -2 * np.log(p)
    mean, var = (q * v).sum(), (q * v * v).sum() - (q * v).sum() ** 2
    n = len(chosen)
    statistic = v[chosen].sum()
    return gammaincc((n * mean) ** 2 / (n * var), statistic * mean / var)
