"""The sample-size planner (analysis.planning, ``python -m analysis plan``): its power is the power
of the report's headline test, its pilot estimates recover the truth, and bad input exits 2."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from comparison_exports import write_comparison_export

from analysis import cli
from analysis.planning import ComparisonModel, Design, holm_matrix, pilot_design, plan
from analysis.statistics import holm

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from planner_check import design_of, empirical_power, planned_power, study_rows

REPLAYS = 150  # empirical studies; the planner's own Monte-Carlo error is smaller (1,000)


def test_planner_power_matches_studies_run_through_the_report_analysis():
    design = design_of(6, ((0.63, 0.2, 0.8), (0.58, 0.25, 0.5)))
    empirical = empirical_power(design, 30, REPLAYS, seed=3)
    planned = planned_power(design, 30, 1000, seed=3)
    # three standard errors of the difference of the two Monte-Carlo estimates
    tolerance = 3 * np.sqrt(planned * (1 - planned) / 1000 + planned * (1 - planned) / REPLAYS)
    assert np.all(np.abs(planned - empirical) <= tolerance), (planned, empirical)
    # the check has teeth: ignoring participant heterogeneity overstates the power beyond it
    homogeneous = design_of(6, ((0.63, 0.2, 0.0), (0.58, 0.25, 0.0)))
    optimistic = planned_power(homogeneous, 30, 1000, seed=3)
    assert optimistic[0] - empirical[0] > tolerance[0]


def test_pilot_export_gives_share_tie_rate_and_heterogeneity(tmp_path):
    truth = design_of(12, ((0.7, 0.2, 1.0), (0.45, 0.1, 0.0)))
    write_comparison_export(tmp_path, study_rows(truth, 300, np.random.default_rng(5)))
    pilot = pilot_design(tmp_path)
    assert pilot.answers == 12
    first, second = pilot.comparisons
    assert first.name.startswith("bla_t_vs_cam")
    assert first.share == pytest.approx(0.7, abs=0.03)
    assert first.tie_rate == pytest.approx(0.2, abs=0.02)
    assert first.sigma == pytest.approx(1.0, abs=0.25)
    assert second.share == pytest.approx(0.45, abs=0.03)
    assert second.sigma < 0.3


def test_power_grows_with_participants_and_targets_are_read_off_the_curve():
    design = Design((ComparisonModel("c", 0.65, 0.15, 0.5),), answers=5)
    result = plan(design, grid=(10, 40, 120), replays=300, seed=1)
    power = result.curve["power"].to_numpy()
    assert power[0] < power[1] < power[2] and power[2] > 0.95
    assert np.all(result.curve["power_low"] <= power) and np.all(power <= result.curve["power_high"])
    widths = result.curve["median_ci_width_pct"].to_numpy()
    assert widths[0] > widths[1] > widths[2] > 0
    needed = result.needed.set_index("comparison").loc["c"]
    first_80 = result.curve.loc[result.curve["power"] >= 0.8, "participants"].min()
    assert needed["participants_80"] == first_80
    # same seed, same plan
    again = plan(design, grid=(10, 40, 120), replays=300, seed=1)
    pd.testing.assert_frame_equal(result.curve, again.curve)


def test_a_null_comparison_rejects_at_about_alpha_and_small_effects_often_flip_sign():
    design = Design((ComparisonModel("null", 0.5, 0.2, 0.5), ComparisonModel("small", 0.53, 0.2,
                                                                             1.5)), answers=4)
    rows = plan(design, grid=(20,), replays=1000, seed=2).curve.set_index("comparison")
    assert rows.loc["null", "power"] < 0.06
    assert np.isnan(rows.loc["null", "wrong_sign"])
    assert 0 <= rows.loc["small", "wrong_sign"] < 0.5


def test_holm_of_every_replay_equals_the_report_holm():
    rng = np.random.default_rng(0)
    p_values = rng.uniform(0, 0.1, (40, 3))
    p_values[rng.uniform(size=p_values.shape) < 0.2] = np.nan
    expected = np.array([holm(pd.Series(row)).to_numpy() for row in p_values])
    np.testing.assert_allclose(holm_matrix(p_values), expected)


def test_cli_writes_power_csv_plan_md_and_the_curve(tmp_path, capsys):
    code = cli.main(["plan", "--share", "0.65", "--comparisons", "2", "--answers", "5",
                     "--participants", "10,60", "--replays", "100", "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "Participants needed" in out and "comparison 2" in out
    curve = pd.read_csv(tmp_path / "power.csv")
    assert list(curve["participants"]) == [10, 10, 10, 60, 60, 60]
    assert set(curve["comparison"]) == {"comparison 1", "comparison 2", "all"}
    assert (tmp_path / "power.png").read_bytes()[:4] == b"\x89PNG"
    assert "| comparison 1 | 0.650 | 0.150 | 0.500 |" in (tmp_path / "plan.md").read_text()


@pytest.mark.parametrize("argv, message", [
    (["--export-dir", "no/such/export"], "is not a folder"),
    (["--share", "1.5", "--answers", "3"], "is not between 0 and 1"),
    (["--share", "0.6", "--answers", "3", "--power", "1.2"], "is not between 0 and 1"),
    (["--share", "0.6"], "give --answers"),
])
def test_cli_refuses_bad_input_with_one_error_and_exit_2(argv, message, capsys, tmp_path):
    assert _exit_code(["plan", *argv, "--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def _exit_code(argv: list[str]) -> int:
    """The status of the command line, returned or raised (argparse exits on its own errors)."""
    try:
        return cli.main(argv)
    except SystemExit as stop:
        return int(stop.code)
