"""Anomaly p: per-answer mid-p values under the others' shares, Fisher's statistic referred to its
exact null mean and variance (a scaled χ²)."""
import pytest
from scipy.special import gammaincc

from contracts.anomaly import answer_p_value, fisher_anomaly_p, gamma_upper, null_moments
from tests.anomaly_reference import moment_matched_p


def test_an_answer_p_is_the_mid_p_under_the_smoothed_shares_of_the_others():
    # Others answered (8, 1, 1); one pseudo-answer each: shares 9/13, 2/13, 2/13.
    assert answer_p_value([8, 1, 1], 0) == pytest.approx(4 / 13 + 0.5 * 9 / 13)
    assert answer_p_value([8, 1, 1], 1) == pytest.approx(0.5 * 4 / 13)  # ties with 'equal'
    assert answer_p_value([0, 0, 0], 2) == pytest.approx(0.5)  # nobody else yet: no evidence


@pytest.mark.parametrize(("a", "x"), [(0.5, 0.1), (3, 2), (10, 30), (12, 5), (200, 260), (1.3, 40)])
def test_the_incomplete_gamma_equals_scipy(a, x):
    assert gamma_upper(a, x) == pytest.approx(gammaincc(a, x), rel=1e-9)


def test_fisher_statistic_is_referred_to_its_null_moments_with_the_participant_taken_out():
    # Everyone: (8, 3, 1); this participant chose method 2 twice, so the others are (8, 1, 1):
    # smoothed shares 9/13, 2/13, 2/13 and each of the two answers has p = 2/13.
    p = fisher_anomaly_p({"a_vs_b": [0, 2, 0]}, {"a_vs_b": [8, 3, 1]})
    assert p == pytest.approx(moment_matched_p([9 / 13, 2 / 13, 2 / 13], [1, 1]))
    assert null_moments([8, 1, 1])[0] < 2  # why not χ²(2n): mid-p values sit above uniform ones


def test_answers_like_everyone_elses_are_not_anomalous_and_unlike_them_are():
    totals = {"a_vs_b": [80, 10, 10], "a_vs_c": [70, 20, 10]}
    usual = fisher_anomaly_p({"a_vs_b": [6, 0, 0], "a_vs_c": [5, 1, 0]}, totals)
    unusual = fisher_anomaly_p({"a_vs_b": [0, 3, 3], "a_vs_c": [0, 3, 3]}, totals)
    assert usual > 0.5 and unusual < 0.001


def test_with_no_one_else_nothing_is_unusual():
    assert fisher_anomaly_p({"a_vs_b": [2, 1, 0]}, {"a_vs_b": [2, 1, 0]}) == 1.0


def test_a_participant_without_answers_has_no_anomaly_p():
    assert fisher_anomaly_p({}, {"a_vs_b": [3, 1, 0]}) is None
    assert fisher_anomaly_p({"a_vs_b": [0, 0, 0]}, {"a_vs_b": [3, 1, 0]}) is None
