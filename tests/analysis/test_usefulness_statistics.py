"""Usefulness statistics on small hand-built exports: accuracies, gains, utility ratio, tests and
Holm values computed by hand (captum-style: each expected number is worked out in the test), and
small or degenerate samples that must give empty values with a note instead of crashing."""
from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.simulation import (
    attention_check,
    numbered,
    participant_row,
    trial_row,
    write_export,
)
from analysis.usefulness_report import UsefulnessOptions, build_usefulness_report
from contracts.usefulness import (
    AGREEMENT,
    CORRECT,
    DISTINCTION,
    FORWARD_SIMULATION,
    INCORRECT,
    LEARN,
    POST,
    PRE,
)

N_BOOT = 400


def judged(task: str, name: str, method: str, outcomes: list[tuple[bool, bool]],
           panels: int = 2, sure: int = 4, unsure: int = 2) -> list[dict]:
    """One participant's distinction or agreement trials: (model correct, matches) each, with
    confidence ``sure`` when matching and ``unsure`` when not."""
    return [trial_row(task, name, match, model_correct=correct, method=method, panels=panels,
                      confidence=sure if match else unsure)
            for correct, match in outcomes]


def forward(name: str, arm: str, pre: list[bool], post: list[bool]) -> list[dict]:
    """One forward-simulation participant: pre-test, learning trials, post-test."""
    method = "" if arm == "none" else arm
    return ([trial_row(FORWARD_SIMULATION, name, m, phase=PRE, arm=arm) for m in pre]
            + [trial_row(FORWARD_SIMULATION, name, False, phase=LEARN, arm=arm, method=method)
               for _ in post]
            + [trial_row(FORWARD_SIMULATION, name, m, phase=POST, arm=arm,
                         confidence=4 if m else 1) for m in post])


def report(tmp_path: Path, people: dict[str, list[dict]], arms: dict[str, str] | None = None,
           **options) -> pd.DataFrame:
    """usefulness.csv of an export of ``people`` (name → rows), read back as written."""
    trials = [row for rows in people.values() for row in numbered(rows)]
    participants = [participant_row(name, (arms or {}).get(name, "")) for name in people]
    folder = write_export(tmp_path / "export", trials, participants)
    settings = {"n_boot": N_BOOT, **options}
    build_usefulness_report(folder / "trials.csv", folder / "participants.csv",
                            tmp_path / "out", UsefulnessOptions(**settings))
    return pd.read_csv(tmp_path / "out" / "usefulness.csv", dtype={"note": str},
                       keep_default_na=False, na_values={"estimate": "", "ci_low": "",
                                                         "ci_high": "", "p_value": "",
                                                         "p_value_holm": "", "reference": ""})


def pick(table: pd.DataFrame, method: str, measure: str, split: str) -> pd.Series:
    """The one row of method × measure × split."""
    rows = table[(table["method"] == method) & (table["measure"] == measure)
                 & (table["split"] == split)]
    assert len(rows) == 1, (method, measure, split)
    return rows.iloc[0]


def sign_flip_by_enumeration(differences: list[int]) -> float:
    """P(|Σ ±dᵢ| ≥ |Σ dᵢ|) over all 2ⁿ sign patterns (the textbook definition)."""
    observed = abs(sum(differences))
    sums = [abs(sum(s * d for s, d in zip(signs, differences)))
            for signs in itertools.product((1, -1), repeat=len(differences))]
    return sum(total >= observed for total in sums) / len(sums)


def holm_by_hand(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment written out for a family."""
    order = sorted(range(len(p_values)), key=lambda k: p_values[k])
    adjusted, running = [0.0] * len(p_values), 0.0
    for step, k in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - step) * p_values[k]))
        adjusted[k] = running
    return adjusted


# (model correct, matches) per trial
DISTINCTION_PEOPLE = {
    "p1": {"bla_t": [(True, True), (True, True), (False, True), (False, False)],
           "cam": [(True, False), (False, False)]},
    "p2": {"bla_t": [(True, True), (True, False), (False, False), (False, False)],
           "cam": [(True, True), (False, False)]},
    "p3": {"bla_t": [(True, True), (True, True), (False, True), (False, True)],
           "cam": [(True, False), (False, True)]},
}


def distinction_export(panels: int = 3) -> dict[str, list[dict]]:
    return {name: [row for method, outcomes in methods.items()
                   for row in judged(DISTINCTION, name, method, outcomes, panels)]
            for name, methods in DISTINCTION_PEOPLE.items()}


def test_distinction_accuracy_against_chance_split_by_model_correctness(tmp_path):
    table = report(tmp_path, distinction_export(panels=3))
    assert pick(table, "bla_t", "accuracy", "all")["estimate"] == pytest.approx(8 / 12)
    assert pick(table, "bla_t", "accuracy", "model_correct")["estimate"] == pytest.approx(5 / 6)
    assert pick(table, "bla_t", "accuracy", "model_incorrect")["estimate"] == pytest.approx(3 / 6)
    assert pick(table, "cam", "accuracy", "all")["estimate"] == pytest.approx(2 / 6)
    row = pick(table, "bla_t", "accuracy", "all")
    assert row["reference"] == pytest.approx(1 / 3)
    assert (row["n_participants"], row["n_trials"]) == (3, 12)
    # 3 × matches − trials per participant (chance 1/3): p1 9 − 4, p2 3 − 4, p3 12 − 4
    p_bla = sign_flip_by_enumeration([5, -1, 8])
    assert p_bla == 0.5 and row["p_value"] == pytest.approx(p_bla)
    p_cam = sign_flip_by_enumeration([3 * 0 - 2, 3 * 1 - 2, 3 * 1 - 2])
    assert pick(table, "cam", "accuracy", "all")["p_value"] == pytest.approx(p_cam)
    expected = holm_by_hand([p_bla, p_cam])
    assert pick(table, "bla_t", "accuracy", "all")["p_value_holm"] == pytest.approx(expected[0])
    assert pick(table, "cam", "accuracy", "all")["p_value_holm"] == pytest.approx(expected[1])
    assert row["ci_low"] <= row["estimate"] <= row["ci_high"]
    # confidence 4 when matching, 2 when not: calibration difference 2 for everyone
    assert pick(table, "bla_t", "confidence", "matching")["estimate"] == 4
    assert pick(table, "bla_t", "confidence", "difference")["estimate"] == 2


def test_distinction_chance_is_one_over_the_panels(tmp_path):
    table = report(tmp_path, distinction_export(panels=2))
    row = pick(table, "bla_t", "accuracy", "all")
    assert row["reference"] == 0.5
    # 2 × matches − trials: p1 6 − 4, p2 2 − 4, p3 8 − 4
    assert row["p_value"] == pytest.approx(sign_flip_by_enumeration([2, -2, 4]))


def test_agreement_accuracy_and_says_correct(tmp_path):
    people = {
        # model correct: says correct twice (match, match); incorrect: correct, incorrect
        "p1": judged(AGREEMENT, "p1", "bla_t",
                     [(True, True), (True, True), (False, False), (False, True)]),
        # model correct: correct, incorrect (match, no); incorrect: correct, correct (no, no)
        "p2": judged(AGREEMENT, "p2", "bla_t",
                     [(True, True), (True, False), (False, False), (False, False)]),
    }
    answers = [row["answer"] for rows in people.values() for row in rows]
    assert answers == [CORRECT, CORRECT, CORRECT, INCORRECT, CORRECT, INCORRECT, CORRECT, CORRECT]
    table = report(tmp_path, people)
    assert pick(table, "bla_t", "accuracy", "all")["estimate"] == 0.5
    assert pick(table, "bla_t", "accuracy", "model_correct")["estimate"] == 0.75
    assert pick(table, "bla_t", "accuracy", "model_incorrect")["estimate"] == 0.25
    says = pick(table, "bla_t", "says_correct", "all")
    assert (says["estimate"], says["reference"]) == (0.75, 0.5)
    # 'correct' answers − correct predictions: p1 3 − 2, p2 3 − 2
    assert says["p_value"] == pytest.approx(sign_flip_by_enumeration([1, 1]))
    # accuracy against 1/2: 2 × matches − trials: p1 6 − 4, p2 2 − 4 → sum 0
    assert pick(table, "bla_t", "accuracy", "all")["p_value"] == 1.0


def permutation_p_by_enumeration(groups: dict[str, tuple[int, int, int, int]],
                                 arm: set[str], statistic) -> float:
    """scipy's two-sided permutation p (2 · the smaller tail, at most 1) over every relabelling
    of participants into an arm of the same size; rows are (pre hits, pre n, post hits, post n)."""
    def pooled(names) -> tuple[float, float]:
        sums = np.sum([groups[n] for n in names], axis=0)
        return sums[0] / sums[1], sums[2] / sums[3]
    names = sorted(groups)
    null = [statistic(pooled(chosen), pooled(set(names) - set(chosen)))
            for chosen in itertools.combinations(names, len(arm))]
    observed = statistic(pooled(arm), pooled(set(names) - arm))
    greater = np.mean([v >= observed - 1e-12 for v in null])
    less = np.mean([v <= observed + 1e-12 for v in null])
    return min(1.0, 2 * min(greater, less))


def test_forward_simulation_gain_difference_and_utility_ratio(tmp_path):
    rows = {"pA": ("bla_t", [True, False, False, False], [True] * 4),
            "pB": ("bla_t", [True, True, False, False], [True, True, True, False]),
            "pC": ("none", [True, True, False, False], [True, True, False, False]),
            "pD": ("none", [True, False, False, False], [True, True, False, False])}
    people = {name: forward(name, arm, pre, post) for name, (arm, pre, post) in rows.items()}
    table = report(tmp_path, people, {name: arm for name, (arm, _, _) in rows.items()})
    assert pick(table, "bla_t", "accuracy", "pre")["estimate"] == 3 / 8
    assert pick(table, "bla_t", "accuracy", "post")["estimate"] == 7 / 8
    gain = pick(table, "bla_t", "gain", "all")
    assert gain["estimate"] == 0.5
    # post hits · pre n − pre hits · post n per participant: pA 16 − 4, pB 12 − 8
    assert gain["p_value"] == pytest.approx(sign_flip_by_enumeration([12, 4]))
    control = pick(table, "none", "gain", "all")
    assert control["estimate"] == 1 / 8
    assert control["p_value"] == pytest.approx(sign_flip_by_enumeration([0, 4]))
    assert gain["p_value_holm"] == pytest.approx(holm_by_hand([gain["p_value"],
                                                               control["p_value"]])[0])
    difference = pick(table, "bla_t", "gain_difference", "all")
    assert difference["estimate"] == pytest.approx(0.5 - 1 / 8)
    assert (difference["n_participants"], difference["n_trials"]) == (4, 32)
    ratio = pick(table, "bla_t", "utility_ratio", "post")
    assert ratio["estimate"] == pytest.approx((7 / 8) / (4 / 8))
    assert ratio["reference"] == 1.0
    groups = {"pA": (1, 4, 4, 4), "pB": (2, 4, 3, 4), "pC": (2, 4, 2, 4), "pD": (1, 4, 2, 4)}
    expected = permutation_p_by_enumeration(
        groups, {"pA", "pB"}, lambda a, c: (a[1] - a[0]) - (c[1] - c[0]))
    assert difference["p_value"] == pytest.approx(expected)
    expected = permutation_p_by_enumeration(groups, {"pA", "pB"}, lambda a, c: a[1] - c[1])
    assert ratio["p_value"] == pytest.approx(expected)
    assert difference["ci_low"] <= difference["estimate"] <= difference["ci_high"]
    assert pick(table, "bla_t", "confidence", "matching")["estimate"] == 4


def test_attention_checks_never_count_and_leave_out_who_failed_too_many(tmp_path):
    people = distinction_export(panels=2)
    passed = attention_check(people["p1"][0], "2", "2")
    failed = attention_check(people["p2"][0], "1", "2")
    people["p1"].append(passed)
    people["p2"] += [failed, failed]
    table = report(tmp_path, people)  # default: no failed check allowed → p2 left out
    row = pick(table, "bla_t", "accuracy", "all")
    assert (row["n_participants"], row["n_trials"], row["estimate"]) == (2, 8, 7 / 8)
    table = report(tmp_path, people, max_failed_checks=1)
    assert pick(table, "bla_t", "accuracy", "all")["n_participants"] == 2
    table = report(tmp_path, people, max_failed_checks=2)
    row = pick(table, "bla_t", "accuracy", "all")
    assert (row["n_participants"], row["n_trials"], row["estimate"]) == (3, 12, 8 / 12)
    table = report(tmp_path, people, keep_inattentive=True)
    assert pick(table, "bla_t", "accuracy", "all")["n_trials"] == 12


@pytest.mark.parametrize("count", [1, 2])
def test_one_or_two_participants_give_values_with_notes(tmp_path, count):
    people = dict(list(distinction_export().items())[:count])
    table = report(tmp_path, people)
    row = pick(table, "bla_t", "accuracy", "all")
    assert row["n_participants"] == count and math.isfinite(row["estimate"])
    if count == 1:
        assert math.isnan(row["ci_low"]) and math.isnan(row["p_value"])
        assert "fewer than 2 participants" in row["note"]
    else:
        assert row["ci_low"] <= row["estimate"] <= row["ci_high"] and row["note"] == ""


def test_all_matching_answers_get_a_wilson_interval_and_no_test_where_nothing_varies(tmp_path):
    outcomes = [(True, True), (False, True)] * 3
    people = {name: judged(DISTINCTION, name, "bla_t", outcomes) for name in ("p1", "p2", "p3")}
    table = report(tmp_path, people)
    row = pick(table, "bla_t", "accuracy", "all")
    assert row["estimate"] == 1.0 and 0.7 < row["ci_low"] < 1.0
    assert row["ci_high"] == pytest.approx(1.0)
    assert row["p_value"] == pytest.approx(0.25)  # three equal excesses: 2 of 8 sign patterns
    difference = pick(table, "bla_t", "confidence", "difference")
    assert math.isnan(difference["estimate"]) and "no participant gave both" in difference["note"]
    assert pick(table, "bla_t", "accuracy", "model_incorrect")["estimate"] == 1.0


def test_an_empty_control_arm_or_an_arm_of_one_gives_notes(tmp_path):
    rows = {"pA": ("bla_t", [True, False], [True, True]),
            "pB": ("bla_t", [False, False], [True, False]),
            "pC": ("none", [True, False], [False, False])}
    people = {name: forward(name, arm, pre, post) for name, (arm, pre, post) in rows.items()}
    arms = {name: arm for name, (arm, _, _) in rows.items()}
    table = report(tmp_path, people, arms)
    difference = pick(table, "bla_t", "gain_difference", "all")
    assert difference["estimate"] == pytest.approx((0.75 - 0.25) - (0.0 - 0.5))
    assert math.isnan(difference["ci_low"]) and "an arm has fewer than 2" in difference["note"]
    ratio = pick(table, "bla_t", "utility_ratio", "post")
    assert math.isnan(ratio["estimate"]) and "matched the model in no post-test" in ratio["note"]
    del people["pC"]
    table = report(tmp_path, people, arms)
    difference = pick(table, "bla_t", "gain_difference", "all")
    assert math.isnan(difference["estimate"]) and "control arm 'none' has no" in difference["note"]
    assert pick(table, "none", "accuracy", "post")["note"] == "no trials"
    assert pick(table, "bla_t", "gain", "all")["estimate"] == pytest.approx(0.75 - 0.25)


def test_agreement_without_incorrect_predictions_has_an_empty_split(tmp_path):
    people = {name: judged(AGREEMENT, name, "cam", [(True, True), (True, False)])
              for name in ("p1", "p2")}
    table = report(tmp_path, people)
    row = pick(table, "cam", "accuracy", "model_incorrect")
    assert (row["n_trials"], row["note"]) == (0, "no trials") and math.isnan(row["estimate"])
    assert pick(table, "cam", "accuracy", "all")["estimate"] == 0.5
    assert pick(table, "cam", "accuracy", "all")["note"] == ("every participant's difference "
                                                             "from the reference is 0: no test")
