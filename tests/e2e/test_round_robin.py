"""A round-robin study of four methods end to end: explanation files of any methods → all-pairs bundle with a
random-swap control → import (questions per comparison chosen) → bots through the real HTTP pages of a live
server, choosing by known Bradley–Terry strengths → export → comparisons.csv and the ranking."""
from __future__ import annotations

import csv
import io
import random
from collections import Counter, defaultdict
from itertools import combinations
from pathlib import Path

import pandas as pd
import pytest
from django.core.management import call_command
from django.db import connections
from django.test import Client
from django.urls import reverse

import analysis.cli
import generation.cli
from studyapp.models import Pair, SequenceItem, Study
from studyapp.participation.blinding import find_leaks, forbidden_terms
from studyapp.simulated.participants import run_participants, simulation_marker
from tests.generation.conftest import add_method_file, make_fixture
from tests.studyapp.study_helpers import DEMOGRAPHICS, answer_current, start

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

METHODS = ("bla_t", "l2x_f", "cam", "grad_cam")  # the order of --explanations: all-pairs keeps it
# The simulated participants' true Bradley–Terry strengths; the random-swap control of bla_t is the weakest.
STRENGTHS = {"grad_cam": 4.0, "bla_t": 2.0, "cam": 1.0, "l2x_f": 0.5, "random": 0.2}
EQUAL_SHARE = 0.1
PER_TYPE, PER_COMPARISON, CHECKS, PARTICIPANTS = 6, 2, 2, 36
COMPARISONS = [f"{a}_vs_{b}" for a, b in combinations(METHODS, 2)] + ["bla_t_vs_random"]


def bradley_terry_choice(token: str, position: int, rng: random.Random) -> str:
    """Answer like a participant whose preferences follow STRENGTHS (looked up server-side, as the bots' policies do)."""
    item = SequenceItem.objects.select_related("stimulus_a", "stimulus_b").get(participant__token=token, position=position)
    if rng.random() < EQUAL_SHARE:
        return "equal"
    a, b = STRENGTHS[item.stimulus_a.method], STRENGTHS[item.stimulus_b.method]
    return "A" if rng.random() < a / (a + b) else "B"


@pytest.fixture
def round_robin_bundle(tmp_path: Path) -> Path:
    """Four methods' explanation files over 24 digit images, built as all pairs plus bla_t's random control."""
    fixture = make_fixture(tmp_path / "explanations", count=24)
    files = [str(fixture.files[m]) for m in METHODS[:3]] + [str(add_method_file(fixture, "grad_cam", seed=4))]
    bundle = tmp_path / "bundle"
    assert generation.cli.main(["build", "--explanations", *files, "--design", "all-pairs", "--controls", "bla_t",
                                "--per-type", str(PER_TYPE), "--seed", "0", "--size", "32", "--workers", "1",
                                "--out", str(bundle)]) == 0  # fmt: skip
    assert generation.cli.main(["validate", str(bundle)]) == 0
    return bundle


def test_round_robin_of_four_methods_from_files_to_ranking(live_server, round_robin_bundle, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    call_command("import_stimuli", str(round_robin_bundle), "--study", "rr", "--open",
                 "--questions-per-comparison", str(PER_COMPARISON), stdout=io.StringIO(), verbosity=0)
    study = Study.objects.get(slug="rr")
    assert study.questions_per_cell == PER_COMPARISON and study.attention_checks == CHECKS
    assert Counter(Pair.objects.filter(bundle__study=study).values_list("question_type", flat=True)) == {
        key: PER_TYPE for key in COMPARISONS}

    reports, totals = run_participants(
        f"{live_server.url}{study.get_absolute_url()}", PARTICIPANTS, concurrency=3, seed=11,
        marker=simulation_marker(study.slug), chooser=bradley_terry_choice, on_done=lambda _: connections.close_all())
    assert [r.errors for r in reports if r.errors] == [] and totals.completed == PARTICIPANTS

    export = tmp_path / "export"
    call_command("export_responses", "--study", "rr", "--out", str(export), stdout=io.StringIO())
    with (export / "answers.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    questions = [r for r in rows if r["question_type"] != "attention_check"]
    assert len(rows) == PARTICIPANTS * (len(COMPARISONS) * PER_COMPARISON + CHECKS)
    per_participant = defaultdict(Counter)
    first_on_a: Counter[str] = Counter()
    for row in questions:
        per_participant[row["participant"]][row["question_type"]] += 1
        a, b = row["question_type"].split("_vs_")
        assert {row["method_a"], row["method_b"]} == {a, b}  # the pair's two methods, nothing else
        assert row["chosen_method"] == {"A": row["method_a"], "B": row["method_b"], "equal": "equal"}[row["choice"]]
        first_on_a[row["question_type"]] += row["method_a"] == a
    # Balanced exposure: every participant answers PER_COMPARISON questions of every comparison.
    assert all(counts == {key: PER_COMPARISON for key in COMPARISONS} for counts in per_participant.values())
    # Sides are drawn per question: each comparison's first method is System A in some answers and System B in others.
    n = PARTICIPANTS * PER_COMPARISON
    assert all(0.25 * n < first_on_a[key] < 0.75 * n for key in COMPARISONS), first_on_a
    checks = [r for r in rows if r["question_type"] == "attention_check"]
    assert len(checks) == PARTICIPANTS * CHECKS and all(r["choice"] == r["expected_choice"] for r in checks)

    report = tmp_path / "report"
    assert analysis.cli.main(["report", "--export-dir", str(export), "--out", str(report), "--include-simulated"]) == 0
    table = pd.read_csv(report / "comparisons.csv")
    pooled = table[table["dataset"] == "all"].set_index("question_type")
    assert sorted(pooled.index) == sorted(COMPARISONS) and pooled.loc["bla_t_vs_random", "method_2"] == "random(bla_t)"
    for key in COMPARISONS:
        mine = [r for r in questions if r["question_type"] == key]
        method_1, method_2 = key.split("_vs_")
        row = pooled.loc[key]
        assert (row.n_answers, row.n_participants) == (len(mine), PARTICIPANTS)
        assert row.method_1_count == sum(r["chosen_method"] == method_1 for r in mine)
        assert row.equal == sum(r["choice"] == "equal" for r in mine)
    ranking = pd.read_csv(report / "ranking.csv").sort_values("rank")
    # The four methods meet in every pair, so their order is identified; the control meets only bla_t,
    # so the design places it below bla_t, not (with certainty) below l2x_f, whose strength is near its own.
    methods = list(ranking["method"])
    assert [m for m in methods if m != "random(bla_t)"] == ["grad_cam", "bla_t", "cam", "l2x_f"]
    control, bla_t = (ranking.set_index("method").loc[m] for m in ("random(bla_t)", "bla_t"))
    assert control.ci_high < bla_t.strength
    assert (ranking["ci_low"] <= ranking["strength"]).all() and (ranking["strength"] <= ranking["ci_high"]).all()

    # One more participant in the test client: no question page names a method, question type or pair.
    client, terms = Client(), forbidden_terms(study)
    participant = start(client, study)
    assert client.post(reverse("studyapp:demographics", args=[participant.token]), DEMOGRAPHICS).status_code == 302
    assert client.post(reverse("studyapp:instructions", args=[participant.token])).status_code == 302
    assert {"grad_cam", "grad-cam", "bla_t_vs_grad_cam", "random"} <= terms
    for _ in range(participant.sequence_length):
        url = client.get(reverse("studyapp:resume", args=[participant.token]))["Location"]
        page = client.get(url)
        assert page.status_code == 200 and find_leaks(page.content.decode(), terms) == [], url
        answer_current(client, participant, "equal")
    participant.refresh_from_db()
    assert participant.completed_at is not None


def test_questions_per_comparison_is_checked_before_anything_is_imported(tmp_path: Path, settings) -> None:
    from django.core.management import CommandError

    from tests.synthetic_bundle import write_synthetic_bundle

    settings.MEDIA_ROOT = tmp_path / "media"
    bundle = write_synthetic_bundle(tmp_path / "bundle", pairs_per_cell=2)  # 6 cells of 2 pairs
    with pytest.raises(CommandError, match=r"^--questions-per-comparison 0 must be between 1 and 100\.$"):
        call_command("import_stimuli", str(bundle), "--study", "s", "--questions-per-comparison", "0", verbosity=0)
    with pytest.raises(CommandError, match="answers only 6 questions; use at most 6 attention checks. "
                                           r"\(--attention-checks and --questions-per-comparison set the numbers\.\)"):
        call_command("import_stimuli", str(bundle), "--study", "s", "--questions-per-comparison", "1",
                     "--attention-checks", "7", verbosity=0)
    assert not Study.objects.filter(slug="s").exists() and not (tmp_path / "media").exists()
    call_command("import_stimuli", str(bundle), "--study", "s", "--questions-per-comparison", "3", verbosity=0,
                 stdout=io.StringIO())
    assert Study.objects.get(slug="s").questions_per_cell == 3
