"""From the study app to the usefulness report: bots with a known policy (``--policy match:P``,
answers as the model with probability P per method) take a real study over HTTP, the real export
is written, and `python -m analysis usefulness --include-simulated` recovers P."""
from __future__ import annotations

import io
import sys
from pathlib import Path

import pandas as pd
import pytest
from django.core.management import call_command

from analysis.cli import main
from contracts.usefulness import AGREEMENT, DISTINCTION

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "studyapp"))
from usefulness_helpers import usefulness_study  # noqa: E402  (tests/studyapp's helpers)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def media(settings, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.mark.parametrize("task", [DISTINCTION, AGREEMENT])
def test_the_report_recovers_the_bots_policy(task, live_server, tmp_path, capsys):
    study = usefulness_study(tmp_path, task, checks=1)
    call_command("simulate_participants", "--study", study.slug, "--n", "3", "--url",
                 live_server.url, "--policy", "match:0,bla_t=1", "--concurrency", "1")
    call_command("export_responses", "--study", study.slug, "--out", str(tmp_path / "export"),
                 stdout=io.StringIO())
    capsys.readouterr()
    code = main(["usefulness", "--export-dir", str(tmp_path / "export"), "--out",
                 str(tmp_path / "out"), "--include-simulated", "--bootstrap", "100"])
    err = capsys.readouterr().err
    assert code == 0 and "every counted participant is simulated (all 3 are bots)" in err
    table = pd.read_csv(tmp_path / "out" / "usefulness.csv")
    accuracy = table[table["measure"] == "accuracy"].set_index(["method", "split"])
    assert accuracy.loc[("bla_t", "all"), "estimate"] == 1.0
    assert accuracy.loc[("cam", "all"), "estimate"] == 0.0
    assert (accuracy.xs("all", level="split")["n_participants"] == 3).all()
    checks = pd.read_csv(tmp_path / "export" / "trials.csv", keep_default_na=False)
    assert (checks["expected_answer"] != "").sum() == 3  # one check each, never counted
    counted = int(table[(table["measure"] == "accuracy") & (table["split"] == "all")][
        "n_trials"].sum())
    assert counted == len(checks) - 3
