"""The whole pipeline end to end: a small MNIST training → explanation files → stimulus bundle →
import → one participant in real Chromium → export → the analysis report counts those answers."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd
import pytest
from django.core.management import call_command

import analysis.cli
import bla_core.cli
import generation.cli
from studyapp.models import Participant, Study

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# The paper's §4.1 defaults (1,125 steps per model, as `make demo`): a shorter schedule leaves BLA-T
# unselective (hard accuracy 0.5), and `generation build` refuses such explanations.
TRAIN = ["--dataset", "mnist38", "--seed", "0"]
QUESTION_TYPES = ("bla_t_vs_cam", "bla_t_vs_l2x_f", "bla_t_vs_random")


@pytest.fixture
def stimulus_bundle(tmp_path: Path) -> Path:
    """Train BLA-T and L2X-F on mnist38, explain the validation split, build and validate a bundle."""
    runs, explained = tmp_path / "runs", tmp_path / "explanations"
    assert bla_core.cli.main(["train", "--method", "bla_t", *TRAIN, "--out", str(runs / "bla_t")]) == 0
    assert bla_core.cli.main(["train", "--method", "l2x_f", *TRAIN, "--baseline", str(runs / "bla_t" / "baseline"),
                              "--out", str(runs / "l2x_f")]) == 0  # fmt: skip
    files = [explained / f"mnist38_{m}.npz" for m in ("bla_t", "l2x_f", "cam")]
    for run, method, out in ((runs / "bla_t", None, files[0]), (runs / "l2x_f", None, files[1]),
                             (runs / "bla_t" / "baseline", "cam", files[2])):  # fmt: skip
        assert bla_core.cli.main(["explain", "--run", str(run), "--out", str(out),
                                  *(["--method", method] if method else [])]) == 0  # fmt: skip
    bundle = tmp_path / "bundle"
    assert generation.cli.main(["build", "--explanations", *map(str, files), "--per-type", "6", "--seed", "0",
                                "--out", str(bundle)]) == 0  # fmt: skip
    assert generation.cli.main(["validate", str(bundle)]) == 0
    return bundle


QUESTIONS, CHECKS = 12, 2


def answer_study_in_chromium(page, study_url: str) -> list[str]:
    """Consent, demographics, instructions, then every question: A, B, equal in turn; an attention check as instructed."""
    from playwright.sync_api import expect

    page.goto(study_url)
    page.get_by_label("I have read the information above and agree to take part.").check()
    page.get_by_role("button", name="Start").click()
    page.get_by_label("Male", exact=True).check()
    page.get_by_label("Age (years)").fill("41")
    page.get_by_role("group", name="I have technical experience with ML/AI:").get_by_label("Disagree", exact=True).check()
    page.get_by_role("group", name="I have technical experience with XAI (explainable AI):").get_by_label("Strongly disagree").check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Begin").click()
    choices = []
    for position in range(1, QUESTIONS + CHECKS + 1):
        expect(page.get_by_text(f"Question {position} of {QUESTIONS + CHECKS}")).to_be_visible()
        expect(page.get_by_text("Both systems decide for the class")).to_be_visible()
        instructed = page.get_by_text("To show that you are reading")
        index = 2 if instructed.count() else position % 3
        page.get_by_role("button", name=("System A", "System B", "Equally reasonable")[index]).click()
        choices.append(("A", "B", "equal")[index])
    expect(page.get_by_role("heading", name="Thank you!")).to_be_visible()
    return choices


def test_pipeline_from_training_to_report(live_server, stimulus_bundle, browser_page, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    call_command("import_stimuli", str(stimulus_bundle), "--study", "e2e", "--open", stdout=io.StringIO(),
                 verbosity=0)
    study = Study.objects.get(slug="e2e")
    assert study.questions_per_cell == 4  # the paper's 4 per question type × dataset: 12 questions here
    assert study.attention_checks == CHECKS  # a new study's default

    choices = answer_study_in_chromium(browser_page, f"{live_server.url}{study.get_absolute_url()}")

    participant = Participant.objects.get(study=study)
    assert participant.status == "completed" and not participant.simulated
    export = tmp_path / "export"
    call_command("export_responses", "--study", "e2e", "--out", str(export), stdout=io.StringIO())
    with (export / "answers.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["choice"] for r in rows] == choices
    checks = [r for r in rows if r["question_type"] == "attention_check"]
    assert len(checks) == CHECKS and all(r["expected_choice"] == r["choice"] == "equal" for r in checks)

    report = tmp_path / "report"
    assert analysis.cli.main(["report", "--export-dir", str(export), "--out", str(report)]) == 0
    table = pd.read_csv(report / "preferences.csv").set_index(["dataset", "question_type"])
    for question_type in QUESTION_TYPES:
        mine = [r for r in rows if r["question_type"] == question_type]
        expected_bla_t = sum(r["chosen_method"] == "bla_t" for r in mine)
        expected_equal = sum(r["choice"] == "equal" for r in mine)
        row = table.loc[("all", question_type)]
        assert (row.n_answers, row.n_participants) == (4, 1)
        assert (row.bla_t, row.equal, row.other) == (expected_bla_t, expected_equal, 4 - expected_bla_t - expected_equal)
    assert (report / "report.html").stat().st_size > 10_000
