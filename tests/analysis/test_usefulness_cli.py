"""`python -m analysis usefulness` end to end: the files it writes, the report of a tiny export,
and with --preference-export the table of preference ranks beside usefulness with its rank
correlation."""
from __future__ import annotations

import csv
import re
import shlex
from pathlib import Path

import pandas as pd
import pytest

from analysis.cli import build_parser, main
from analysis.simulation import Design, simulate_export
from comparison_exports import simulated_answers, write_comparison_export
from contracts.columns import (
    PREFERENCE_USEFULNESS_COLUMNS,
    RANK_CORRELATION_COLUMNS,
    USEFULNESS_COLUMNS,
)
from contracts.usefulness import DISTINCTION, FORWARD_SIMULATION

REPORT_FILES = {"usefulness.csv", "usefulness.md", "usefulness.html", "usefulness.png",
                "usefulness.svg", "usefulness_calibration.png", "usefulness_calibration.svg"}
BESIDE_FILES = {"preference_usefulness.csv", "rank_correlations.csv",
                "preference_usefulness.png", "preference_usefulness.svg"}


def header(path: Path) -> tuple[str, ...]:
    with open(path, newline="", encoding="utf-8") as handle:
        return tuple(next(csv.reader(handle)))


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["usefulness", "--bootstrap", "100", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_tiny_export_gives_every_file_and_a_report_that_renders(tmp_path, capsys):
    design = Design(DISTINCTION, 3, {"bla_t": 0.9}, {"bla_t": 0.6}, trials=2, checks=1,
                    inattentive=1)
    export = simulate_export(tmp_path / "export", design, seed=0)
    code, out, err = run(capsys, "--export-dir", export, "--out", tmp_path / "out")
    assert code == 0 and err == ""
    assert {p.name for p in (tmp_path / "out").iterdir()} == REPORT_FILES
    assert out.startswith("Wrote ") and "for 8 answered trials of 2 participants" in out
    assert header(tmp_path / "out" / "usefulness.csv") == USEFULNESS_COLUMNS
    table = pd.read_csv(tmp_path / "out" / "usefulness.csv")
    assert set(table["measure"]) == {"accuracy", "confidence"}
    page = (tmp_path / "out" / "usefulness.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.count("data:image/png;base64,") == 2
    assert "BLA-T" in page and "left out: 1 failed more than 0 attention check(s)" in page
    assert "trials.csv</code> — sha256" in page
    markdown = (tmp_path / "out" / "usefulness.md").read_text(encoding="utf-8")
    assert markdown.startswith("# Usefulness\n\n| Task |")
    code, _, _ = run(capsys, "--export-dir", export, "--out", tmp_path / "out")
    assert code == 0 and {p.name for p in (tmp_path / "out").iterdir()} == REPORT_FILES


def test_a_forward_simulation_report_compares_each_arm_with_the_control(tmp_path, capsys):
    design = Design(FORWARD_SIMULATION, 6, pre=0.5, post={"bla_t": 0.9, "none": 0.5}, trials=3)
    export = simulate_export(tmp_path / "export", design, seed=3)
    code, _, _ = run(capsys, "--export-dir", export, "--out", tmp_path / "out", "--seed", "4")
    table = pd.read_csv(tmp_path / "out" / "usefulness.csv")
    assert code == 0
    compared = table[table["measure"].isin(["gain_difference", "utility_ratio"])]
    assert list(compared["method"]) == ["bla_t", "bla_t"]
    assert compared["estimate"].notna().all() and compared["p_value"].notna().all()
    assert list(table["method"].unique()) == ["bla_t", "none"]


def preference_export(folder: Path, methods: list[str]) -> Path:
    """A preference study of ``methods`` whose true strengths fall in the listed order."""
    strengths = {m: 1.0 - k for k, m in enumerate(methods)}
    pairs = [(a, b) for k, a in enumerate(methods) for b in methods[k + 1:]]
    write_comparison_export(folder, simulated_answers(strengths, 0.3, pairs, 12, 6, seed=0))
    return folder


def test_the_preference_ranks_stand_beside_usefulness_with_their_correlation(tmp_path, capsys):
    methods = ["bla_t", "l2x_f", "cam"]
    design = Design(DISTINCTION, 12, {"bla_t": 0.9, "l2x_f": 0.75, "cam": 0.6},
                    {"bla_t": 0.7, "l2x_f": 0.6, "cam": 0.5}, trials=4)
    export = simulate_export(tmp_path / "export", design, seed=1)
    code, _, err = run(capsys, "--export-dir", export, "--out", tmp_path / "out",
                       "--preference-export", preference_export(tmp_path / "pref", methods))
    assert code == 0, err
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} == REPORT_FILES | BESIDE_FILES
    assert header(out / "preference_usefulness.csv") == PREFERENCE_USEFULNESS_COLUMNS
    assert header(out / "rank_correlations.csv") == RANK_CORRELATION_COLUMNS
    beside = pd.read_csv(out / "preference_usefulness.csv").set_index("method")
    assert sorted(beside.index) == sorted(methods)
    assert beside["preference_rank"].to_dict() == {"bla_t": 1, "l2x_f": 2, "cam": 3}
    assert beside["distinction_accuracy"].notna().all()
    assert beside["forward_simulation_gain_difference"].isna().all()
    usefulness = pd.read_csv(out / "usefulness.csv")
    pooled = usefulness[(usefulness["measure"] == "accuracy") & (usefulness["split"] == "all")]
    assert beside["distinction_accuracy"].to_dict() == pooled.set_index("method")[
        "estimate"].to_dict()
    ranks = pd.read_csv(out / "rank_correlations.csv").set_index("score")
    row = ranks.loc["distinction_accuracy"]
    assert row["n_methods"] == 3 and row["spearman_rho"] == pytest.approx(1.0)
    assert row["p_value"] == pytest.approx(1 / 3)  # 2 of the 3! pairings are as extreme
    assert "only 3 methods: descriptive" in row["note"]
    assert "too few for a rank correlation" in ranks.loc["agreement_accuracy", "note"]
    page = (out / "usefulness.html").read_text(encoding="utf-8")
    assert "Preference beside usefulness" in page and page.count("data:image/png;base64,") == 3
    assert re.search(r"<td>BLA-T</td><td>1</td>", page)
    code, _, _ = run(capsys, "--export-dir", export, "--out", out)  # again, without preference
    assert code == 0 and {p.name for p in out.iterdir()} == REPORT_FILES


def test_two_methods_are_too_few_for_a_rank_correlation(tmp_path, capsys):
    design = Design(DISTINCTION, 4, {"bla_t": 0.9, "cam": 0.6}, {"bla_t": 0.7, "cam": 0.5},
                    trials=2)
    export = simulate_export(tmp_path / "export", design, seed=1)
    code, _, _ = run(capsys, "--export-dir", export, "--out", tmp_path / "out",
                     "--preference-export", preference_export(tmp_path / "pref", ["bla_t", "cam"]))
    assert code == 0
    ranks = pd.read_csv(tmp_path / "out" / "rank_correlations.csv", keep_default_na=False)
    assert (ranks["spearman_rho"] == "").all()
    assert ranks.loc[0, "note"] == "fewer than 3 methods have both: too few for a rank correlation"
    markdown = (tmp_path / "out" / "usefulness.md").read_text(encoding="utf-8")
    assert "# Preference beside usefulness" in markdown and "no ρ is given below 3" in markdown


def test_the_readme_gives_the_command_and_it_parses():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    found = re.search(r"`\.venv/bin/python -m analysis usefulness ([^`]+)`", readme)
    assert found, "README: no `python -m analysis usefulness` command"
    args = build_parser().parse_args(["usefulness", *shlex.split(found.group(1))])
    assert args.export_dir and args.out and args.preference_export
    for name in ("usefulness.csv", "preference_usefulness.csv", "rank_correlations.csv",
                 "usefulness.html"):
        assert f"`{name}`" in readme, name
