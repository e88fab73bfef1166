"""The dashboard's study health: participant anomaly flags that equal participants_quality.csv's, and
the planner's participants still needed (on its own page, only for the study's researchers)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from study_helpers import researcher_client

from analysis.io import load_export
from analysis.quality import QualityThresholds, anomaly_p_values
from analysis.selection import select
from contracts.comparisons import METHOD_1, METHOD_2, oriented_answer
from studyapp.console import study_health
from studyapp.console.study_health import (
    ANOMALY_ALPHA,
    PLANNER_MIN_PARTICIPANTS,
    anomalous_count,
    anomaly_scores,
)
from studyapp.models import Answer, Participant, SequenceItem, Study
from studyapp.operations.export import write_export
from studyapp.participation.flow import enrol

pytestmark = pytest.mark.django_db
FEW_REPLAYS = 20  # the planner's own accuracy is tested in tests/analysis; here only the page


@pytest.fixture(autouse=True)
def fresh_cache():
    """Planner estimates are cached per study and counts; ids repeat across tests."""
    cache.clear()
    yield
    cache.clear()


def answer_by_result(study: Study, wanted: str, *, complete: bool = True, simulated: bool = False) -> Participant:
    """A new participant who answers every question with result ``wanted`` (method_1, method_2 or
    equal), stored directly (the count triggers fire as on the answer path)."""
    participant = enrol(study, simulated=simulated)
    items = SequenceItem.objects.filter(participant=participant).select_related("pair", "stimulus_a", "stimulus_b")
    for item in items.order_by("position"):
        choice = "equal"
        if wanted != "equal":
            choice = next(c for c in ("A", "B") if oriented_answer(
                item.pair.question_type, item.stimulus_a.method, item.stimulus_b.method, c)[2] == wanted)
        Answer.objects.create(item=item, choice=choice, response_ms=2000)
    Participant.objects.filter(pk=participant.pk).update(
        answered=items.count(), completed_at=timezone.now() if complete else None)
    participant.refresh_from_db()
    return participant


def export_anomaly_p(study: Study, folder: Path, include_simulated: bool = False) -> dict[str, float]:
    """public id → anomaly p as analysis.quality gives it for participants_quality.csv."""
    write_export(study, folder)
    export = load_export(folder / "answers.csv", folder / "participants.csv")
    values = anomaly_p_values(export.answers, select(export, include_simulated=include_simulated))
    return {str(participant): p for (_, participant), p in values.items()}


def test_a_participant_answering_against_everyone_is_flagged_and_the_others_are_not(study, admin_client):
    crowd = [answer_by_result(study, METHOD_1) for _ in range(8)]
    contrarian = answer_by_result(study, METHOD_2)
    scores = anomaly_scores(study, [p.pk for p in [*crowd, contrarian]])
    assert scores[contrarian.pk] < ANOMALY_ALPHA
    assert all(scores[p.pk] >= ANOMALY_ALPHA for p in crowd)
    assert anomalous_count(study) == (1, 9)
    assert ANOMALY_ALPHA == QualityThresholds().anomaly_alpha  # one threshold for dashboard and report

    page = admin_client.get(reverse("studyapp:dashboard", args=[study.slug])).content.decode()
    assert '<dd data-count="anomalous">1</dd>' in page
    cell = re.search(rf'<td data-anomaly="{contrarian.public_id}">([^<]*)<strong class="warning">flagged', page)
    assert cell, "the contrarian's row shows the flag"
    for person in crowd:
        row = re.search(rf'<td data-anomaly="{person.public_id}">([^<]*)</td>', page)
        assert row and float(row.group(1)) >= ANOMALY_ALPHA


def test_the_dashboard_p_equals_participants_quality_on_the_same_export(study, tmp_path):
    """A mixed study: consensus with dissent, ties, an incomplete, an excluded and a simulated
    participant (outside the reference, scored all the same)."""
    people = [answer_by_result(study, result) for result in
              (METHOD_1, METHOD_1, METHOD_1, METHOD_2, "equal", METHOD_1)]  # fmt: skip
    people.append(answer_by_result(study, METHOD_2, complete=False))
    people.append(answer_by_result(study, METHOD_1, simulated=True))
    excluded = answer_by_result(study, "equal")
    Participant.objects.filter(pk=excluded.pk).update(excluded=True)
    people.append(excluded)
    for include_simulated in (False, True):
        report = export_anomaly_p(study, tmp_path / f"export-{include_simulated}", include_simulated)
        dashboard = anomaly_scores(study, [p.pk for p in people], include_simulated)
        assert set(report) == {p.public_id for p in people}
        for person in people:
            assert dashboard[person.pk] == pytest.approx(report[person.public_id], rel=1e-12, abs=1e-15)
        flagged = sum(p < ANOMALY_ALPHA for p in report.values())
        assert anomalous_count(study, include_simulated) == (flagged, len(people))


def test_the_page_scores_only_its_own_participants(study, admin_client, django_assert_max_num_queries):
    for _ in range(3):
        answer_by_result(study, METHOD_1)
    enrol(study)  # no answers yet: no p
    everyone = list(Participant.objects.values_list("pk", flat=True))
    with django_assert_max_num_queries(2):
        scores = anomaly_scores(study, everyone)
    assert len(scores) == 3
    page = admin_client.get(reverse("studyapp:dashboard", args=[study.slug])).content.decode()
    assert page.count("<td data-anomaly=") == 4 and "—</td>" in page


def test_the_summary_count_is_cached_until_the_participants_change(study, admin_client):
    for _ in range(6):
        answer_by_result(study, METHOD_1)
    url = reverse("studyapp:dashboard", args=[study.slug])
    assert '<dd data-count="anomalous">0</dd>' in admin_client.get(url).content.decode()
    contrarian = answer_by_result(study, METHOD_2)  # new answers: counted afresh
    assert '<dd data-count="anomalous">1</dd>' in admin_client.get(url).content.decode()
    Participant.objects.filter(pk=contrarian.pk).update(excluded=True)  # out of the reference, still flagged
    page = admin_client.get(url).content.decode()
    assert '<dd data-count="anomalous">1</dd>' in page
    assert anomalous_count(study) == (1, 7)


@pytest.mark.parametrize("participants", [0, 1, PLANNER_MIN_PARTICIPANTS - 1, 12])
def test_the_planner_page_gives_a_number_or_says_there_are_too_few(study, participants, monkeypatch):
    monkeypatch.setattr(study_health, "PLANNER_REPLAYS", FEW_REPLAYS)
    for i in range(participants):  # a clear preference with some dissent and ties
        answer_by_result(study, (METHOD_1, METHOD_1, METHOD_2, "equal")[i % 4])
    client = researcher_client("ada", study)
    dashboard = client.get(reverse("studyapp:dashboard", args=[study.slug])).content.decode()
    url = reverse("studyapp:planner", args=[study.slug])
    assert f'href="{url}"' in dashboard
    response = client.get(url)
    assert response.status_code == 200
    sentence = re.search(r"<p data-planner[^>]*>([^<]*)</p>", response.content.decode()).group(1)
    if participants < PLANNER_MIN_PARTICIPANTS:
        assert sentence.startswith("Too few answers to plan yet") and f"{participants} counted" in sentence
    else:
        assert re.search(r"(About \d+ more participants|Enough participants|Even \d+ participants would not) "
                         r"(for|give) 80 % power on every comparison \(Holm\)", sentence), sentence
        assert "Monte-Carlo interval" in sentence or sentence.startswith("Even")
        assert client.get(url).content == response.content  # cached under the answer count


def test_the_planner_estimate_is_reused_until_someone_answers(study, monkeypatch):
    calls = []
    real = study_health.planner_estimate
    monkeypatch.setattr(study_health, "planner_estimate", lambda *args: calls.append(args) or real(*args))
    answer_by_result(study, METHOD_1)
    study_health.cached_planner_estimate(study)
    study_health.cached_planner_estimate(study)
    assert len(calls) == 1
    answer_by_result(study, METHOD_2)
    study_health.cached_planner_estimate(study)
    assert len(calls) == 2


def test_another_researcher_gets_403_and_an_unknown_study_404(study):
    answer_by_result(study, METHOD_1)
    outsider = researcher_client("eve", Study.objects.create(slug="eves", title="Eve's"))
    assert outsider.get(reverse("studyapp:planner", args=[study.slug])).status_code == 403
    assert outsider.get(reverse("studyapp:planner", args=["no-such-study"])).status_code == 404
    anonymous = Client().get(reverse("studyapp:planner", args=[study.slug]))
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/admin/login/")
