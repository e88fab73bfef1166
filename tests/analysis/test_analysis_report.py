"""The report end to end: who counts, what is written, the CLI, and no torch/Django."""

import base64
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis.cli import main
from analysis.io import load_export
from analysis.selection import select
from analysis.statistics import preference_table
from analysis_exports import answer_row, participant_row, report_on_export, write_export

ROOT = Path(__file__).resolve().parents[2]


def mixed_export(folder: Path) -> tuple[Path, Path]:
    """4 completed people (one simulated), 1 incomplete, 1 excluded; answers on 2 datasets."""
    people = [participant_row("c1", gender="male", age="25"),
              participant_row("c2", gender="female", age="41", xai_experience="agree"),
              participant_row("c3", gender="", age=""),
              participant_row("bot", simulated="true"),
              participant_row("half", status="incomplete", completed_at=""),
              participant_row("cheat", status="excluded")]
    answers = []
    for person, outcomes in [("c1", "bbo"), ("c2", "beb"), ("c3", "bbb"), ("bot", "ooo"),
                             ("half", "o"), ("cheat", "oo")]:
        for position, code in enumerate(outcomes, start=1):
            outcome = {"b": "bla_t", "o": "other", "e": "equal"}[code]
            answers.append(answer_row(person, position, "bla_t_vs_cam",
                                      "A" if position % 2 else "B", outcome))
    return write_export(folder, answers, people)


def run_report(tmp_path, **options):
    return report_on_export(tmp_path, mixed_export, **options)


@pytest.fixture(scope="module")
def default_report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    return folder, run_report(folder)


def pooled(table: pd.DataFrame) -> pd.Series:
    return table[table["dataset"] == "all"].iloc[0]


def test_default_counts_only_completed_real_participants(default_report):
    _, result = default_report
    row = pooled(result.table)
    assert (row["bla_t"], row["other"], row["equal"], row["n_participants"]) == (7, 1, 1, 3)
    left_out = result.selection.left_out.set_index("reason")
    assert left_out.loc["simulated", ["participants", "answers"]].tolist() == [1, 3]
    assert left_out.loc["incomplete", ["participants", "answers"]].tolist() == [1, 1]
    assert left_out.loc["excluded", ["participants", "answers"]].tolist() == [1, 2]


@pytest.mark.parametrize(("flag", "other", "people"), [
    ("include_simulated", 4, 4), ("include_incomplete", 2, 4), ("include_excluded", 3, 4)])
def test_flags_add_participants_back(tmp_path, flag, other, people):
    export = load_export(*mixed_export(tmp_path))
    row = pooled(preference_table(select(export, **{flag: True}).answers, n_boot=50))
    assert (row["other"], row["n_participants"]) == (other, people)


def test_report_files_are_complete_and_self_contained(default_report):
    folder, result = default_report
    out = folder / "out"
    stems = ["figure4_preferences", "figure7_preferences_by_dataset", "figure8_gender",
             "figure9_age", "figure10_ml_experience", "figure11_xai_experience",
             "quality_side_a", "quality_positions", "ranking_strengths", "preference_matrix"]
    expected = {f"{stem}.{ext}" for stem in stems for ext in ("png", "svg")}
    expected |= {"preferences.csv", "preferences.md", "participants_quality.csv", "report.html",
                 "comparisons.csv", "comparisons.md", "ranking.csv"}
    assert {p.name for p in out.iterdir()} == expected == {p.name for p in result.files}
    page = (out / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 10
    assert all(base64.b64decode(image).startswith(b"\x89PNG") for image in images)
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing fetched from elsewhere
    counts = re.sub(r"\s+", " ", page)
    assert "<td>Counted</td><td>3</td><td>9</td>" in counts
    assert "<td>Left out: simulated (bot) participants</td><td>1</td><td>3</td>" in counts
    assert "cluster bootstrap with 200 replicates (seed 0)" in page


def test_demographic_figures_count_the_counted_participants(default_report):
    folder, _ = default_report
    gender = (folder / "out" / "figure8_gender.svg").read_text()
    assert "Gender (n = 3)" in gender and "Not" in gender  # c3 gave no gender
    age = (folder / "out" / "figure9_age.svg").read_text()
    assert "median 33, 1 not given" in age


def test_same_seed_gives_identical_numbers_and_figures(default_report, tmp_path):
    folder, first = default_report
    again = run_report(tmp_path)
    pd.testing.assert_frame_equal(first.table, again.table)
    for name in ("preferences.csv", "figure4_preferences.svg", "figure7_preferences_by_dataset.svg"):
        assert (folder / "out" / name).read_bytes() == (tmp_path / "out" / name).read_bytes()


def test_nobody_left_is_an_error_that_names_the_flags(tmp_path, capsys):
    answers = [answer_row("bot", 1, "bla_t_vs_cam", "A", "bla_t")]
    write_export(tmp_path / "export", answers, [participant_row("bot", simulated="1")])
    code = main(["report", "--export-dir", str(tmp_path / "export"), "--out",
                 str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "no answers are left" in err and "--include-simulated" in err
    assert "1 simulated (bot) participants" in err


def test_counted_bots_are_said_plainly(tmp_path, capsys):
    answers = [answer_row(bot, 1, "bla_t_vs_cam", "A", "bla_t") for bot in ("bot1", "bot2")]
    write_export(tmp_path / "export", answers,
                 [participant_row(bot, simulated="true") for bot in ("bot1", "bot2")])
    code = main(["report", "--export-dir", str(tmp_path / "export"), "--out",
                 str(tmp_path / "out"), "--include-simulated", "--bootstrap", "50", "--quiet"])
    err = capsys.readouterr().err
    assert code == 0
    assert "warning: every counted participant is simulated (all 2 are bots)" in err
    page = re.sub(r"\s+", " ", (tmp_path / "out" / "report.html").read_text())
    assert "<li>every counted participant is simulated (all 2 are bots)" in page
    assert "<td>Counted, of them simulated (bots)</td><td>2</td><td>2</td>" in page
    assert "<td>Left out: simulated (bot) participants</td><td>0</td><td>0</td>" in page


def test_some_counted_bots_are_counted_and_warned(tmp_path):
    result = run_report(tmp_path, include_simulated=True)
    assert result.selection.counted_simulated == 1
    assert result.selection.counted_simulated_answers == 3
    assert "1 of the 4 counted participants are simulated (bots)" in result.warnings
    page = re.sub(r"\s+", " ", (tmp_path / "out" / "report.html").read_text())
    assert "<td>Counted, of them simulated (bots)</td><td>1</td><td>3</td>" in page


def test_cli_writes_the_report_and_says_where(tmp_path):
    answers_csv, participants_csv = mixed_export(tmp_path / "export")
    done = subprocess.run(
        [sys.executable, "-m", "analysis", "report", "--answers", str(answers_csv),
         "--participants", str(participants_csv), "--out", str(tmp_path / "out"),
         "--bootstrap", "100", "--seed", "3", "--dataset-label", "A=Cats vs dogs", "--quiet"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "Wrote report.html, comparisons.csv, comparisons.md, participants_quality.csv, "
        "preferences.csv, preferences.md, ranking.csv and 20 figure files "
        f"for 9 answers of 3 participants to {tmp_path / 'out'}")
    assert "Cats vs dogs" in (tmp_path / "out" / "preferences.md").read_text()


def test_analysis_imports_neither_torch_nor_django():
    code = ("import sys, analysis.cli, analysis.report, analysis.figures, analysis.statistics; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'django')); "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
