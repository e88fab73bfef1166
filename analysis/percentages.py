"""The one rounding rule for every percentage the report prints or draws.

A percentage is 100 · count / total computed exactly from the integer counts (``Fraction``),
then rounded to ``decimals`` places with round-half-to-even (Python's ``round`` on a Fraction,
which never passes through binary floating point). So 1/8 prints as 12.5, 1/16 as 6.2 and
3/16 as 18.8 with one decimal. Shares rounded this way need not sum to exactly 100.
"""

from __future__ import annotations

import math
import numbers
from decimal import Decimal
from fractions import Fraction

import pandas as pd

DEFAULT_DECIMALS = 1
WEIGHTED = "weighted_"  # prefix of a table's weighted-count columns (an adaptive design's)


def exact_percent(count: float, total: float) -> Fraction:
    """100 · count / total as an exact fraction (of the binary values where weighted sums are
    floats)."""
    return 100 * _fraction(count) / _fraction(total)


def _fraction(value: float) -> Fraction:
    """A count as a Fraction of Python numbers (numpy integers kept exact, floats as stored)."""
    return Fraction(int(value)) if isinstance(value, numbers.Integral) else Fraction(float(value))


def format_percent(count: float, total: float, decimals: int = DEFAULT_DECIMALS) -> str:
    """The rounded percentage as text (no '%' sign); '' when total is 0."""
    if total == 0:
        return ""
    return format_fraction(exact_percent(count, total), decimals)


def format_fraction(value: Fraction, decimals: int = DEFAULT_DECIMALS) -> str:
    """Round a fraction half-to-even to ``decimals`` places and print exactly that many."""
    rounded = round(value, decimals)
    exact = Decimal(rounded.numerator) / Decimal(rounded.denominator)
    return f"{exact:.{decimals}f}"


def format_shares(table: pd.DataFrame, percents: dict[str, tuple[str, ...]],
                  decimals: int = DEFAULT_DECIMALS) -> pd.DataFrame:
    """``table`` with its percentages and ``ci_low``/``ci_high`` as the report prints them.

    ``percents`` maps each percentage column to its count column (minus a second one, for a
    difference); the text is that count over ``n_answers`` by :func:`format_percent`, exact from the
    integers. A weighted table (an adaptive design's) carries ``weighted_{count}`` columns, which
    then replace the counts. The interval, a float in percent, is rounded by the same rule; NaN
    prints as ''.
    """
    out = table.copy()

    def counts(column: str) -> pd.Series:
        return table.get(f"{WEIGHTED}{column}", table[column])
    for column, (count, *minus) in percents.items():
        numerators = counts(count) - (counts(minus[0]) if minus else 0)
        out[column] = [format_percent(c, n, decimals)
                       for c, n in zip(numerators, counts("n_answers"))]
    for column in ("ci_low", "ci_high"):
        out[column] = ["" if not math.isfinite(v) else format_fraction(Fraction(v), decimals)
                       for v in table[column].astype(float)]
    return out
