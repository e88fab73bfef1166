"""The one answer model of every stage: an answer is (comparison, method_1, method_2, result).

The comparison is the answer's question type ``{a}_vs_{b}`` (contracts.vocabulary). ``method_1`` is
``a``; ``method_2`` is the method actually shown against it: ``b``, the paper's stand-in for ``b``
(Grad-CAM in ``bla_t_vs_cam``), or ``random(a)`` for the random-swap control ``{a}_vs_random``. The
result undoes the screen sides (System A / B): method 1 chosen, method 2 chosen, or equal. The study
export writes these columns (docs/formats.md), the analysis counts them, the dashboard draws them;
the paper's Figure 4 is the view of this model for its three BLA-T comparisons.
"""
from __future__ import annotations

from contracts.vocabulary import EQUAL, RANDOM_METHOD, question_sides, random_control_label

COMPARISON = "question_type"  # the column naming an answer's comparison
METHOD_1, METHOD_2, RESULT = "method_1", "method_2", "result"
COMPARISON_MODEL_COLUMNS: tuple[str, ...] = (COMPARISON, METHOD_1, METHOD_2, RESULT)
# The values of `result`, in the order of their codes (0, 1, 2) wherever results are counted.
RESULTS: tuple[str, ...] = (METHOD_1, METHOD_2, EQUAL)


def comparison_sides(question_type: str, method_a: str, method_b: str) -> tuple[bool, str, str]:
    """(method 1 shown as System A?, method_1, method_2) of one answer's question and sides.

    ValueError with one sentence when the question type is malformed or the two methods shown
    do not form it.
    """
    firsts, seconds = question_sides(question_type)
    if method_a in firsts and method_b in seconds:
        first_on_a, shown = True, method_b
    elif method_b in firsts and method_a in seconds:
        first_on_a, shown = False, method_a
    else:
        raise ValueError(
            f"methods {method_a!r} and {method_b!r} do not form question type "
            f"{question_type!r} ({' or '.join(firsts)} against {' or '.join(seconds)})")
    first = firsts[0]
    return first_on_a, first, random_control_label(first) if shown == RANDOM_METHOD else shown


def result_of(choice: str, method_1_on_a: bool) -> str:
    """The result (one of RESULTS) of a screen choice ``A`` / ``B`` / ``equal``."""
    if choice == EQUAL:
        return EQUAL
    if choice not in ("A", "B"):
        raise ValueError(f"choice {choice!r} is not 'A', 'B' or {EQUAL!r}")
    return METHOD_1 if (choice == "A") == method_1_on_a else METHOD_2


def oriented_answer(question_type: str, method_a: str, method_b: str,
                    choice: str) -> tuple[str, str, str]:
    """(method_1, method_2, result) of one answer as shown on screen; ValueError if they misfit."""
    method_1_on_a, method_1, method_2 = comparison_sides(question_type, method_a, method_b)
    return method_1, method_2, result_of(choice, method_1_on_a)
