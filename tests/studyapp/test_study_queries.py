"""Database work on the participant's hot path: a question page and an answer each take a fixed,
small number of queries, so a change that adds one per request shows up here, not in production."""
from __future__ import annotations

import pytest
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from study_helpers import DEMOGRAPHICS, answer_current, form_value, start

from studyapp.models import Answer, Participant, Study
from studyapp.participation.flow import questions
from studyapp.participation.protocol import INLINE, NEXT_HEADER, PAGE_HEADER


def _ready(client: Client, study: Study) -> Participant:
    participant = start(client, study)
    client.post(reverse("studyapp:demographics", args=[participant.token]), DEMOGRAPHICS)
    client.post(reverse("studyapp:instructions", args=[participant.token]))
    answer_current(client, participant)  # loads the sequence into this process's cache
    return participant


def _statements(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"].split()[0].upper() for q in queries.captured_queries]


def test_a_question_page_takes_one_query(study: Study):
    client = Client()
    participant = _ready(client, study)
    url = reverse("studyapp:question", args=[participant.token, 2])
    with CaptureQueriesContext(connection) as queries:
        page = client.get(url)
    assert page.status_code == 200
    assert _statements(queries) == ["SELECT"]


@pytest.mark.parametrize("headers", [{}, {NEXT_HEADER: INLINE}], ids=["plain-form", "inline"])
def test_an_answer_takes_one_read_and_one_atomic_write(study: Study, headers: dict[str, str]):
    """Also inline: the next page is rendered from the process's cached sequence, no query more."""
    client = Client()
    participant = _ready(client, study)
    url = reverse("studyapp:question", args=[participant.token, 2])
    shown = form_value(client.get(url).content.decode(), "shown")
    with CaptureQueriesContext(connection) as queries:
        response = client.post(url, {"choice": "B", "shown": shown}, headers=headers)
    following = response[PAGE_HEADER] if headers else response["Location"]
    assert response.status_code == (200 if headers else 302)
    assert following == reverse("studyapp:question", args=[participant.token, 3])
    statements = [s for s in _statements(queries) if s not in ("SAVEPOINT", "RELEASE")]
    # PostgreSQL: insert and counter update in one statement; SQLite: both in one transaction.
    writes = ["WITH"] if connection.vendor == "postgresql" else ["INSERT", "UPDATE"]
    assert statements == ["SELECT", *writes]
    assert Answer.objects.get(item__participant=participant, item__position=2).choice == "B"
    assert Participant.objects.get(pk=participant.pk).answered == 2


def test_a_repeated_answer_writes_nothing_and_leaves_the_counter(study: Study):
    client = Client()
    participant = _ready(client, study)
    url = reverse("studyapp:question", args=[participant.token, 2])
    shown = form_value(client.get(url).content.decode(), "shown")
    assert client.post(url, {"choice": "A", "shown": shown}).status_code == 302
    # The same POST again (double click, resubmitted form): the position is no longer current.
    with CaptureQueriesContext(connection) as queries:
        again = client.post(url, {"choice": "B", "shown": shown})
    assert again["Location"] == reverse("studyapp:question", args=[participant.token, 3])
    assert "INSERT" not in _statements(queries) and "UPDATE" not in _statements(queries)
    assert Answer.objects.get(item__participant=participant, item__position=2).choice == "A"
    assert Participant.objects.get(pk=participant.pk).answered == 2


def test_the_last_answer_completes_the_participant_in_the_same_write(study: Study):
    client = Client()
    participant = _ready(client, study)
    for _ in range(participant.sequence_length - 1):
        location = answer_current(client, participant)
    assert location == reverse("studyapp:done", args=[participant.token])
    participant.refresh_from_db()
    assert participant.answered == participant.sequence_length and participant.completed_at is not None
    assert participant.completed_at == Answer.objects.get(item__participant=participant, item__position=12).answered_at


def test_a_stale_process_cache_cannot_misplace_an_answer(study: Study):
    """The cached sequence is keyed by token, so two participants never share an entry."""
    first, second = Client(), Client()
    a, b = _ready(first, study), _ready(second, study)
    assert [q.item_pk for q in questions(a.token)] != [q.item_pk for q in questions(b.token)]
    answer_current(first, a, "equal")
    assert Answer.objects.filter(item__participant=b).count() == 1
    assert Answer.objects.get(item__participant=a, item__position=2).choice == "equal"


def test_a_forged_cross_site_answer_is_refused_without_a_csrf_token(study: Study):
    """The answer form has no CSRF token (it costs a tenth of the page); its signed stamp protects it instead."""
    client = Client()
    participant = _ready(client, study)
    url = reverse("studyapp:question", args=[participant.token, 2])
    other = reverse("studyapp:question", args=[participant.token, 3])
    page = client.get(url).content.decode()
    assert "csrfmiddlewaretoken" not in page
    forged = Client(enforce_csrf_checks=True)  # another site's form: no cookie, no stamp of this page
    assert forged.post(url, {"choice": "A", "shown": "forged"}).status_code == 400
    assert forged.post(url, {"choice": "A"}).status_code == 400
    assert Participant.objects.get(pk=participant.pk).answered == 1
    assert client.post(url, {"choice": "B", "shown": form_value(page, "shown")})["Location"] == other


@pytest.mark.django_db(transaction=True)
def test_a_connection_the_database_dropped_is_replaced_without_an_error_page(study: Study):
    """No per-request health check: the question view's first query notices a dead connection and reconnects."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite connections are never dropped by a server")
    client = Client()
    participant = _ready(client, study)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    other = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [backend])
    finally:
        other.close()
    url = reverse("studyapp:question", args=[participant.token, 2])
    page = client.get(url)
    assert page.status_code == 200
    assert client.post(url, {"choice": "equal", "shown": form_value(page.content.decode(), "shown")}).status_code == 302
    assert Answer.objects.get(item__participant=participant, item__position=2).choice == "equal"
