"""study.js's answers (X-Study-Next: inline): the next question comes back in the answer's own
response, with the same integrity rules as the plain post/redirect/get path."""
from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from study_helpers import DEMOGRAPHICS, form_value, start

from studyapp.models import Answer, Participant, Study
from studyapp.participation.protocol import INLINE, NEXT_HEADER, PAGE_HEADER

pytestmark = pytest.mark.django_db
INLINE_HEADERS = {NEXT_HEADER: INLINE}


def _at_first_question(client: Client, study: Study) -> tuple[Participant, str]:
    participant = start(client, study)
    client.post(reverse("studyapp:demographics", args=[participant.token]), DEMOGRAPHICS)
    client.post(reverse("studyapp:instructions", args=[participant.token]))
    url = reverse("studyapp:question", args=[participant.token, 1])
    return participant, client.get(url).content.decode()


def _question(participant: Participant, position: int) -> str:
    return reverse("studyapp:question", args=[participant.token, position])


def test_an_inline_answer_is_stored_and_returns_the_next_question_page(client, study):
    participant, page = _at_first_question(client, study)
    response = client.post(_question(participant, 1), {"choice": "B", "shown": form_value(page, "shown")},
                           headers=INLINE_HEADERS)  # fmt: skip
    assert response.status_code == 200
    assert response[PAGE_HEADER] == _question(participant, 2)
    assert response["Cache-Control"].startswith("max-age=0") and "no-store" in response["Cache-Control"]
    following = response.content.decode()
    second = participant.items.get(position=2)
    assert "Question 2 of 12" in following and second.stimulus_a.url in following and second.stimulus_b.url in following
    assert Answer.objects.get(item__participant=participant, item__position=1).choice == "B"
    assert Participant.objects.get(pk=participant.pk).answered == 1
    # the page that came back is a working question page: its stamp answers question 2
    again = client.post(_question(participant, 2), {"choice": "equal", "shown": form_value(following, "shown")},
                        headers=INLINE_HEADERS)  # fmt: skip
    assert again[PAGE_HEADER] == _question(participant, 3)
    assert Answer.objects.get(item__participant=participant, item__position=2).choice == "equal"


def test_a_repeated_inline_answer_changes_nothing_and_redirects_to_the_current_question(client, study):
    participant, page = _at_first_question(client, study)
    data = {"choice": "A", "shown": form_value(page, "shown")}
    assert client.post(_question(participant, 1), data, headers=INLINE_HEADERS).status_code == 200
    repeated = client.post(_question(participant, 1), {**data, "choice": "B"}, headers=INLINE_HEADERS)
    assert repeated.status_code == 302 and repeated["Location"] == _question(participant, 2)
    assert Answer.objects.get(item__participant=participant, item__position=1).choice == "A"
    assert Participant.objects.get(pk=participant.pk).answered == 1


def test_an_invalid_inline_answer_gets_the_same_page_with_400_and_writes_nothing(client, study):
    participant, page = _at_first_question(client, study)
    response = client.post(_question(participant, 1), {"choice": "C", "shown": form_value(page, "shown")},
                           headers=INLINE_HEADERS)  # fmt: skip
    assert response.status_code == 400 and PAGE_HEADER not in response
    assert "Please choose one of the three answers" in response.content.decode()
    assert not Answer.objects.exists()


def test_the_last_inline_answer_redirects_to_the_thank_you_page(client, study):
    participant, page = _at_first_question(client, study)
    for position in range(1, 13):
        response = client.post(_question(participant, position), {"choice": "A", "shown": form_value(page, "shown")},
                               headers=INLINE_HEADERS)  # fmt: skip
        page = response.content.decode()
    assert response.status_code == 302 and response["Location"] == reverse("studyapp:done", args=[participant.token])
    participant.refresh_from_db()
    assert participant.answered == 12 and participant.completed_at is not None

