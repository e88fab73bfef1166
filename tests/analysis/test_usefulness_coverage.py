"""Coverage of the usefulness intervals on simulated studies with known effects
(analysis.simulation): over repeated simulations the 95% participant-cluster bootstrap intervals
of each method's accuracy (distinction, agreement; pooled and split by model correct / incorrect)
and of each forward-simulation arm's gain, and gain difference and utility ratio against the
control, cover the true values at least 90% of the time, and the estimates recover the effects."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.simulation import Design, export_rows, simulate_trials, true_values, write_export
from analysis.usefulness import usefulness_table
from analysis.usefulness_io import load_usefulness_export
from contracts.usefulness import AGREEMENT, DISTINCTION, FORWARD_SIMULATION

REPLAYS = 150
N_BOOT = 200  # percentile ends from 200 replicates: enough for a coverage check, 10× faster
NOMINAL, FLOOR = 0.95, 0.90
DESIGNS = {
    DISTINCTION: Design(DISTINCTION, 30, correct={"bla_t": 0.8, "cam": 0.55},
                        incorrect={"bla_t": 0.6, "cam": 0.45}, trials=5, panels=3, sigma=0.6),
    AGREEMENT: Design(AGREEMENT, 30, correct={"bla_t": 0.85, "cam": 0.7},
                      incorrect={"bla_t": 0.55, "cam": 0.3}, trials=5, sigma=0.6),
    FORWARD_SIMULATION: Design(FORWARD_SIMULATION, 60, pre=0.5,
                               post={"bla_t": 0.8, "cam": 0.6, "none": 0.55}, trials=8,
                               panels=2, sigma=0.6),
}


def test_the_floor_is_far_below_what_a_true_95_percent_interval_gives():
    """Binomial tolerance: an interval that covers exactly 95% shows a rate below 90% in 150
    replays with probability 0.0036 (SD of the rate 0.018), so a failure means undercoverage,
    not bad luck. (Percentile intervals from 20–30 clusters run a little narrow: the rates
    measured here are 0.91–0.97.)"""
    assert stats.binom.cdf(math.ceil(FLOOR * REPLAYS) - 1, REPLAYS, NOMINAL) < 0.005


def replay_tables(design: Design) -> pd.DataFrame:
    """usefulness.csv rows of every replay (column ``replay``), computed from the typed trials."""
    tables = []
    for replay in range(REPLAYS):
        trials = simulate_trials(design, np.random.default_rng([27, replay]))
        tables.append(usefulness_table(trials, N_BOOT, seed=replay).assign(replay=replay))
    return pd.concat(tables, ignore_index=True)


@pytest.mark.parametrize("task", list(DESIGNS))
def test_intervals_cover_the_true_values_and_estimates_recover_them(task):
    design = DESIGNS[task]
    tables = replay_tables(design).set_index(["method", "measure", "split"])
    rates = {}
    for key, truth in true_values(design).items():
        rows = tables.loc[key]
        assert len(rows) == REPLAYS and rows["estimate"].notna().all(), key
        covered = (rows["ci_low"] <= truth) & (truth <= rows["ci_high"])
        rates[key] = float(covered.mean())
        spread = rows["estimate"].std(ddof=1) / math.sqrt(REPLAYS)
        assert abs(rows["estimate"].mean() - truth) <= 4 * spread + 1e-3, (key, truth)
    print(task, {" ".join(key): round(rate, 3) for key, rate in rates.items()})
    assert min(rates.values()) >= FLOOR, rates


def test_the_known_effects_are_visible_in_one_study():
    """One large simulated study: the ordering of methods is the designed one and the tests see
    the designed effects (bla_t above chance, a gain over the control)."""
    design = Design(FORWARD_SIMULATION, 90, pre=0.5, post={"bla_t": 0.85, "none": 0.5},
                    trials=10)
    table = usefulness_table(simulate_trials(design, np.random.default_rng(1)), 500)
    row = table[(table["method"] == "bla_t") & (table["measure"] == "gain_difference")].iloc[0]
    assert row["ci_low"] > 0 and row["p_value_holm"] < 0.01
    design = DESIGNS[DISTINCTION]
    table = usefulness_table(simulate_trials(design, np.random.default_rng(2)), 500)
    accuracy = table[(table["measure"] == "accuracy") & (table["split"] == "all")]
    best = accuracy.set_index("method")["estimate"]
    assert best["bla_t"] > best["cam"] > 1 / 3
    assert accuracy.set_index("method").loc["bla_t", "p_value_holm"] < 0.001


@pytest.mark.parametrize("task", list(DESIGNS))
def test_the_typed_trials_are_what_the_reader_gives_for_the_written_export(tmp_path, task):
    """The coverage replays skip the CSV round trip; this shows it changes nothing: the export
    written from the same trials reads back to the same frame and the same statistics."""
    design = Design(**{**DESIGNS[task].__dict__, "checks": 2, "participants": 12})
    rng = np.random.default_rng(5)
    trials = simulate_trials(design, rng)
    folder = write_export(tmp_path, *export_rows(design, trials, rng))
    export = load_usefulness_export(folder / "trials.csv", folder / "participants.csv")
    columns = list(trials.columns)
    pd.testing.assert_frame_equal(export.answers[columns], trials)
    assert len(export.checks) == 2 * design.participants and export.checks["passed"].all()
    pd.testing.assert_frame_equal(usefulness_table(export.answers, 100),
                                  usefulness_table(trials, 100))
