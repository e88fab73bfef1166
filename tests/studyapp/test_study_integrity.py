"""Integrity: resume, repeated and stale submissions, tampering, duplicate external ids, concurrent starts."""
from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from study_helpers import DEMOGRAPHICS, answer_current, form_value, start

from studyapp.models import Answer, Participant, SequenceItem
from studyapp.participation.flow import enrol, questions, record_answer

pytestmark = pytest.mark.django_db


def _ready(client: Client, study) -> Participant:
    participant = start(client, study)
    client.post(reverse("studyapp:demographics", args=[participant.token]), DEMOGRAPHICS)
    client.post(reverse("studyapp:instructions", args=[participant.token]))
    return participant


def _question(participant: Participant, position: int) -> str:
    return reverse("studyapp:question", args=[participant.token, position])


def test_reload_back_and_return_visit_resume_at_first_unanswered(client, study):
    participant = _ready(client, study)
    for _ in range(3):
        answer_current(client, participant, "B")
    assert client.get(_question(participant, 1))["Location"] == _question(participant, 4)  # back button
    assert client.get(_question(participant, 4)).status_code == 200  # reload
    assert client.get(study.get_absolute_url())["Location"] == _question(participant, 4)  # return visit, cookie
    assert client.get(reverse("studyapp:resume", args=[participant.token]))["Location"] == _question(participant, 4)
    other_browser = Client()
    assert other_browser.get(reverse("studyapp:resume", args=[participant.token]))["Location"] == _question(participant, 4)
    assert Participant.objects.count() == 1


def test_double_submission_keeps_first_answer_and_moves_on(client, study):
    participant = _ready(client, study)
    url = _question(participant, 1)
    shown = form_value(client.get(url).content.decode(), "shown")
    first = client.post(url, {"choice": "A", "shown": shown})
    again = client.post(url, {"choice": "B", "shown": shown})
    assert first["Location"] == again["Location"] == _question(participant, 2)
    answers = Answer.objects.filter(item__participant=participant)
    assert [(a.item.position, a.choice) for a in answers] == [(1, "A")]


def test_stale_submission_from_an_old_page_changes_nothing(client, study):
    participant = _ready(client, study)
    url1 = _question(participant, 1)
    shown1 = form_value(client.get(url1).content.decode(), "shown")
    client.post(url1, {"choice": "A", "shown": shown1})
    answer_current(client, participant, "equal")
    response = client.post(url1, {"choice": "B", "shown": shown1})  # back button, then submit again
    assert response["Location"] == _question(participant, 3)
    assert dict(Answer.objects.values_list("item__position", "choice")) == {1: "A", 2: "equal"}


def test_skipping_ahead_is_refused(client, study):
    participant = _ready(client, study)
    item5 = participant.items.get(position=5)
    shown = form_value(client.get(_question(participant, 1)).content.decode(), "shown")
    response = client.post(_question(participant, 5), {"choice": "A", "shown": shown})
    assert response["Location"] == _question(participant, 1)
    assert not Answer.objects.filter(item=item5).exists()


def test_another_participants_item_cannot_be_answered(study):
    alice, mallory = Client(), Client()
    a = _ready(alice, study)
    m = _ready(mallory, study)
    stolen_shown = form_value(alice.get(_question(a, 1)).content.decode(), "shown")
    # Mallory posts Alice's signed stamp to her own question: refused, nothing written.
    response = mallory.post(_question(m, 1), {"choice": "A", "shown": stolen_shown})
    assert response.status_code == 400
    assert not Answer.objects.exists()
    # A forged stamp is refused too.
    assert mallory.post(_question(m, 1), {"choice": "A", "shown": "forged:stamp"}).status_code == 400
    assert not Answer.objects.exists()
    # Knowing Alice's token is the only way to answer for her; a wrong token is a 404.
    assert mallory.post(_question(m, 1).replace(m.token, m.token[:-2] + "xx"), {"choice": "A"}).status_code == 404
    assert not Answer.objects.exists()


def test_same_external_id_returns_same_participant(study):
    browser = Client()
    first = start(browser, study, "?PROLIFIC_PID=P-42")
    again = browser.get(study.get_absolute_url() + "?PROLIFIC_PID=P-42")
    assert again.status_code == 302
    assert again["Location"] == reverse("studyapp:demographics", args=[first.token])
    other_browser = Client().get(study.get_absolute_url() + "?external_id=P-42")  # recognised, not enrolled again
    assert other_browser.status_code == 409 and first.token not in other_browser.content.decode()
    assert enrol(study, external_id="P-42") == first
    assert Participant.objects.count() == 1


def test_record_answer_is_idempotent_and_completes_after_last(study):
    participant = enrol(study)
    sequence = questions(participant.token)
    assert [q.position for q in sequence] == list(range(1, 13))
    for question in sequence[:-1]:
        assert record_answer(participant, question, "A", 100)
    stale = Participant.objects.get(pk=participant.pk)
    stale.answered = 0
    assert not record_answer(stale, sequence[0], "B", 5)
    participant.refresh_from_db()
    assert (participant.answered, participant.completed_at) == (11, None)
    assert record_answer(participant, sequence[-1], "equal", 100)
    participant.refresh_from_db()
    assert participant.answered == 12 and participant.completed_at is not None
    assert Answer.objects.get(item_id=sequence[0].item_pk).choice == "A"


def test_concurrent_answers_to_one_question_store_one(study):
    participant = enrol(study)
    first = questions(participant.token)[0]
    copies = [Participant.objects.get(pk=participant.pk) for _ in range(3)]
    assert [record_answer(p, first, c, 1) for p, c in zip(copies, "AB", strict=False)] == [True, False]
    participant.refresh_from_db()
    assert participant.answered == 1 and Answer.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_starts_with_one_external_id_make_one_participant(study):
    results, errors = [], []

    def join() -> None:
        try:
            results.append(enrol(study, external_id="same-person").pk)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=join) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(results)) == 1
    assert Participant.objects.filter(external_id="same-person").count() == 1
    assert SequenceItem.objects.count() == 12
