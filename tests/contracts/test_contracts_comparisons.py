"""The one answer model (contracts/comparisons.py): an answer's question type, sides and choice give
(method_1, method_2, result) whichever side each method was shown on."""
from __future__ import annotations

import pytest

from contracts.comparisons import RESULTS, oriented_answer


@pytest.mark.parametrize(("shown", "choice", "expected"), [
    (("bla_t_vs_cam", "bla_t", "cam"), "A", ("bla_t", "cam", "method_1")),
    (("bla_t_vs_cam", "cam", "bla_t"), "A", ("bla_t", "cam", "method_2")),
    (("bla_t_vs_cam", "grad_cam", "bla_t"), "B", ("bla_t", "grad_cam", "method_1")),  # stand-in
    (("lime_vs_random", "random", "lime"), "equal", ("lime", "random(lime)", "equal")),
    (("grad_cam_vs_cam", "cam", "grad_cam"), "B", ("grad_cam", "cam", "method_1")),
])
def test_the_screen_sides_are_undone(shown, choice, expected):
    assert oriented_answer(*shown, choice) == expected
    assert expected[2] in RESULTS


@pytest.mark.parametrize(("shown", "choice", "says"), [
    (("bla_t_vs_cam", "bla_t", "lime"), "A", "methods 'bla_t' and 'lime' do not form"),
    (("bla_t_vs_cam", "bla_t", "cam"), "C", "choice 'C' is not 'A', 'B' or 'equal'"),
    (("cam_vs_cam", "cam", "cam"), "A", "a comparison needs two different methods"),
])
def test_an_answer_that_does_not_fit_the_model_is_one_clear_error(shown, choice, says):
    with pytest.raises(ValueError, match=says):
        oriented_answer(*shown, choice)
