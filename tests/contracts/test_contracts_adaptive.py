"""The adaptive design's rule: Arena's standard-error gain per comparison, a floor, randomised
rounding with the right expectation, and inverse-probability weights."""
import math
import random

import pytest

from contracts.adaptive import (
    adaptive_probabilities,
    allocate,
    design_weight,
    per_answer_variance,
)
from contracts.intervals import ComparisonSums, clustered_interval, clustered_variance


def sums(name, people, a, b, e, a2, an, n2):
    return ComparisonSums(name, people, a, b, e, a2, an, n2)


def test_the_per_answer_variance_is_the_clustered_one_times_the_answers():
    # Participants (a, n): (2, 3), (0, 2), (1, 1): V = 0.0625 (the live chart's hand-computed case).
    spread = sums("x", 3, 3, 2, 1, 5, 7, 14)
    assert clustered_variance(spread) == pytest.approx(0.0625)
    assert per_answer_variance(spread) == pytest.approx(0.0625 * 6)
    assert per_answer_variance(spread, "ranking") == pytest.approx(0.0625 * 6 / (0.5 * 0.5) ** 2)
    # Everyone unanimous: no clustered spread, so the binomial variance of (6 + 1) / (6 + 2).
    assert per_answer_variance(sums("y", 2, 6, 0, 0, 18, 18, 18)) == pytest.approx(7 / 8 * 1 / 8)
    assert per_answer_variance(None) == 0.25


def test_probabilities_follow_arenas_gain_above_the_floor():
    settled = sums("settled", 2, 6, 0, 0, 18, 18, 18)  # σ² = 7/64 per answer, n = 6
    new = "new"  # no answers yet: σ² = 1/4, n counted as 1
    probabilities = adaptive_probabilities(["settled", new], {"settled": settled}, min_share=0.5)
    gain_settled = math.sqrt(7 / 64 / 6) - math.sqrt(7 / 64 / 7)
    gain_new = math.sqrt(0.25) - math.sqrt(0.25 / 2)
    expected_new = 0.25 + 0.5 * gain_new / (gain_new + gain_settled)
    assert probabilities[new] == pytest.approx(expected_new)
    assert sum(probabilities.values()) == pytest.approx(1.0)
    assert min(probabilities.values()) >= 0.25  # half the balanced share 1/2


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_a_floor_outside_zero_to_one_is_refused(bad):
    with pytest.raises(ValueError, match=f"min_share must be between 0 and 1, got {bad}"):
        adaptive_probabilities(["a_vs_b"], {}, min_share=bad)


def test_allocation_totals_the_questions_and_matches_the_probabilities_on_average():
    probabilities = {"a": 0.37, "b": 0.21, "c": 0.42}
    rng, totals = random.Random(0), dict.fromkeys(probabilities, 0)
    for _ in range(5000):
        counts = allocate(probabilities, 12, rng)
        assert sum(counts.values()) == 12
        assert all(math.floor(12 * p) <= counts[c] <= math.floor(12 * p) + 1
                   for c, p in probabilities.items())
        for c in counts:
            totals[c] += counts[c]
    assert {c: t / (5000 * 12) for c, t in totals.items()} == pytest.approx(probabilities, abs=0.003)


def test_the_weight_is_one_in_a_balanced_design_and_inverse_otherwise():
    assert design_weight(1 / 4, 4) == 1.0
    assert design_weight(1 / 8, 4) == 2.0


def test_weighted_sums_give_the_weighted_share():
    # Two people with weight 2 and 0.5: (a, n) = (1, 2) and (2, 2) → weighted (2, 4), (1, 1).
    weighted = sums("w", 2, 3, 2, 0, 2 * 2 + 1 * 1, 2 * 4 + 1 * 1, 4 * 4 + 1 * 1)
    low, high = clustered_interval(weighted)
    assert low < 3 / 5 < high
