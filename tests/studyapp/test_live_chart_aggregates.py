"""The live chart from database aggregates: any design's comparisons, counts that equal a recount of
the answers, the participant-clustered interval, and the paginated, searchable participant list."""

from __future__ import annotations

import io
import math
import re
from collections import Counter
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from study_helpers import (
    DEMOGRAPHICS,
    answer_current,
    form_value,
    researcher_client,
    start,
    take_study,
)

from analysis.io import load_export
from analysis.selection import select
from contracts.comparisons import RESULTS
from studyapp.aggregates import backfill
from studyapp.console.live_chart import (
    ComparisonSums,
    clustered_interval,
    comparison_bars,
    comparison_sums,
)
from studyapp.models import Answer, ComparisonCount, Pair, Participant, Stimulus, Study
from studyapp.operations.export import write_export
from studyapp.participation.flow import enrol

pytestmark = pytest.mark.django_db

# The synthetic bundle's three cells, renamed into a design with four methods and a random control.
N_METHOD_DESIGN = {
    "bla_t_vs_cam": (
        "lime_vs_saliency",
        {"bla_t": "lime", "cam": "saliency", "grad_cam": "saliency"},
    ),
    "bla_t_vs_l2x_f": ("saliency_vs_occlusion", {"bla_t": "saliency", "l2x_f": "occlusion"}),
    "bla_t_vs_random": ("lime_vs_random", {"bla_t": "lime"}),
}


def redesign(study: Study) -> None:
    """Turn the study's paper design into N_METHOD_DESIGN (before anyone answers)."""
    for old, (new, methods) in N_METHOD_DESIGN.items():
        pairs = Pair.objects.filter(bundle__study=study, question_type=old)
        for before, after in methods.items():
            Stimulus.objects.filter(pair__in=pairs, method=before).update(method=after)
        pairs.update(question_type=new)


def recount_from_export(study: Study, folder: Path) -> dict[tuple[str, str], tuple[int, int, int]]:
    """(participant, comparison) -> (method 1, method 2, equal) as the analysis reads the export."""
    write_export(study, folder)
    answers = load_export(folder / "answers.csv", folder / "participants.csv").answers
    columns = (answers[c].astype(str) for c in ("participant", "question_type"))
    columns = (*columns, answers["result"])
    counts: Counter = Counter(zip(*columns, strict=True))
    keys = {(p, q) for p, q, _ in counts}
    return {key: tuple(counts[(*key, code)] for code in range(len(RESULTS))) for key in keys}


def stored_counts(study: Study) -> dict[tuple[str, str], tuple[int, int, int]]:
    rows = ComparisonCount.objects.filter(participant__study=study)
    return {
        (r.participant.public_id, r.comparison): (r.method_1, r.method_2, r.equal) for r in rows
    }


def test_the_chart_of_an_n_method_design_draws_every_comparison(study, tmp_path):
    redesign(study)
    for choices in ("AAB", "BE", "A"):
        take_study(Client(), study, choices=choices)
    page = (
        researcher_client("ada", study)
        .get(reverse("studyapp:dashboard", args=[study.slug]))
        .content.decode()
    )
    drawn = dict(
        re.findall(r'<div class="comparison" data-comparison="([^"]+)">(.*?)</div>', page, re.S)
    )
    assert sorted(drawn) == ["LIME vs Random", "LIME vs Saliency", "Saliency vs Occlusion"]
    for bar in comparison_bars(study):
        assert bar.participants == 3 and bar.answers == 3 * 4  # two datasets × two questions each
        assert bar.ci_low is not None and bar.ci_low <= bar.segments[0].percent <= bar.ci_high
    totals: Counter = Counter()
    for (_, comparison), counts in recount_from_export(study, tmp_path / "export").items():
        totals[comparison] += counts[0]
    assert {s.comparison: s.method_1 for s in comparison_sums(study)} == dict(totals)


def test_counts_equal_a_recount_after_answers_repeats_exclusions_and_deletion(
    checked_study, tmp_path
):
    study = checked_study
    done = take_study(Client(), study, choices="ABEEB")
    client = Client()
    halfway = start(client, study)
    client.post(reverse("studyapp:demographics", args=[halfway.token]), DEMOGRAPHICS)
    client.post(reverse("studyapp:instructions", args=[halfway.token]))
    for choice in ("A", "B", "equal", "A"):
        answer_current(client, halfway, attentive(halfway, choice))
    assert stored_counts(study) == recount_from_export(study, tmp_path / "one")
    # A re-answer (double submit of the same question, another choice) is refused, counted once.
    url = client.get(reverse("studyapp:resume", args=[halfway.token]))["Location"]
    shown = form_value(client.get(url).content.decode(), "shown")
    for choice in (attentive(halfway, "A"), "B"):
        client.post(url, {"choice": choice, "shown": shown, "client_ms": ""})
    assert Participant.objects.get(pk=halfway.pk).answered == 5
    assert sum(sum(c) for c in stored_counts(study).values()) == 12 + 5 - _checks_answered(halfway)
    assert stored_counts(study) == recount_from_export(study, tmp_path / "two")

    # A researcher's correction in the admin (changed choice, deleted answer) moves the counts too.
    answers = Answer.objects.filter(item__participant=done, item__expected_choice="").order_by("id")
    Answer.objects.filter(pk=answers[0].pk).update(
        choice="equal" if answers[0].choice != "equal" else "A"
    )
    answers[1].delete()
    assert stored_counts(study) == recount_from_export(study, tmp_path / "corrected")

    ComparisonCount.objects.all().delete()
    assert backfill() == len(recount_from_export(study, tmp_path / "three"))
    assert stored_counts(study) == recount_from_export(study, tmp_path / "four")

    admin = researcher_client("ada", study)
    admin.post(reverse("studyapp:exclude", args=[study.slug, done.public_id]), {"reason": "checks"})
    assert {s.participants for s in comparison_sums(study)} == {1}
    assert all(bar.ci_low is None for bar in comparison_bars(study))  # one participant: no interval
    Participant.objects.filter(pk=done.pk).delete()
    assert not ComparisonCount.objects.filter(participant_id=done.pk).exists()


def attentive(participant: Participant, choice: str) -> str:
    """``choice``, or the instructed answer where the participant's next question is an attention check
    (so that the participant stays counted by the chart and the report)."""
    item = participant.items.filter(answer__isnull=True).order_by("position").first()
    return item.expected_choice or choice


def _checks_answered(participant: Participant) -> int:
    return participant.items.exclude(expected_choice="").filter(answer__isnull=False).count()


def test_the_clustered_interval_is_wilson_at_the_sandwich_effective_n():
    # Participants (a, n): (2, 3), (0, 2), (1, 1): p = 3/6; residuals 0.5, -1, 0.5; Σr² = 1.5;
    # V = 3/2 · 1.5 / 36 = 0.0625, so n_eff = p(1 − p)/V = 4: the Wilson interval of 2 in 4.
    sums = ComparisonSums(
        "a_vs_b", participants=3, method_1=3, method_2=2, equal=1, a2=5, an=7, n2=14
    )
    z = 1.959963984540054
    half = z / (1 + z * z / 4) * math.sqrt(0.25 / 4 + z * z / 64)
    assert clustered_interval(sums) == pytest.approx((0.5 - half, 0.5 + half), abs=1e-9)
    # Every answer for method 1: no clustered spread, so the Wilson interval of the 6 answers.
    unanimous = ComparisonSums(
        "a_vs_b", participants=2, method_1=6, method_2=0, equal=0, a2=18, an=18, n2=18
    )
    assert clustered_interval(unanimous) == pytest.approx((0.609666, 1.0), abs=1e-6)
    alone = ComparisonSums(
        "a_vs_b", participants=1, method_1=2, method_2=1, equal=0, a2=4, an=6, n2=9
    )
    assert clustered_interval(alone) is None
    # A rare outcome: the interval stays above 0 (Wald's, 0.05 ± 0.05, would reach it).
    rare = ComparisonSums("a_vs_b", 10, 1, 19, 0, 1, 2, 40)
    low, high = clustered_interval(rare)
    assert 0 < low < 0.05 < high < 0.5
    # A wide interval stays inside [0, 1].
    spread = ComparisonSums(
        "a_vs_b", participants=2, method_1=1, method_2=9, equal=0, a2=1, an=1, n2=82
    )
    low, high = clustered_interval(spread)
    assert 0.0 <= low < 0.1 < high < 1.0


def test_participants_are_paginated_and_searchable(study):
    people = [enrol(study) for _ in range(53)]
    Participant.objects.filter(pk=people[0].pk).update(external_id="PROLIFIC-XYZ")
    ada = researcher_client("ada", study)
    url = reverse("studyapp:dashboard", args=[study.slug])
    first = ada.get(url).content.decode()
    assert (
        first.count("data-checks=") == 50
        and "page 1 of 2" in first
        and '<dd data-count="started">53</dd>' in first
    )
    second = ada.get(url + "?page=2").content.decode()
    assert second.count("data-checks=") == 3 and "page 2 of 2" in second
    found = ada.get(url + "?q=prolific-x").content.decode()
    assert found.count("data-checks=") == 1 and f'data-checks="{people[0].public_id}"' in found
    assert (
        "1 matching" in found and '<dd data-count="started">53</dd>' in found
    )  # the summary counts all
    nobody = ada.get(url + "?q=nobody-here").content.decode()
    assert "Nobody matches" in nobody and "data-checks=" not in nobody


def test_a_restored_backup_counts_its_answers_once(study, tmp_path):
    for choices in ("AB", "E"):
        take_study(Client(), study, choices=choices)
    backup = tmp_path / "study.tar"
    call_command("backup_study_data", "--out", str(backup), stdout=io.StringIO())
    take_study(Client(), study, choices="B")
    call_command("restore_study_data", str(backup), "--replace", stdout=io.StringIO())
    restored = Study.objects.get(slug=study.slug)
    assert stored_counts(restored) == recount_from_export(restored, tmp_path / "export")
    assert {s.participants for s in comparison_sums(restored)} == {2}


def test_a_participant_failing_an_attention_check_is_left_out_as_the_report_leaves_them(
    checked_study, tmp_path
):
    take_study(Client(), checked_study, choices="E")  # the checks instruct "equal": passed
    take_study(Client(), checked_study, choices="AB")  # never "equal": both checks failed
    # The report follows the study's rule (export_manifest.json's max_failed_checks), so does the chart.
    Study.objects.filter(pk=checked_study.pk).update(max_failed_checks=1)
    checked_study.refresh_from_db()
    write_export(checked_study, tmp_path / "export")
    export = load_export(tmp_path / "export" / "answers.csv", tmp_path / "export" / "participants.csv")
    counted = select(export, include_incomplete=True)
    assert len(counted.participants) == 1
    sums = comparison_sums(checked_study)
    assert [s.participants for s in sums] == [1, 1, 1]
    assert sum(s.answers for s in sums) == len(counted.answers) == 12
