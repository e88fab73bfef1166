"""Helpers that take a study through the test client, shared by the study-app tests."""
from __future__ import annotations

import re

from django.test import Client
from django.urls import reverse

from studyapp.models import Participant, Study

DEMOGRAPHICS = {"gender": "female", "age": "34", "ml_experience": "agree", "xai_experience": "undecided"}


def form_value(html: str, name: str) -> str:
    """The value of a hidden input in a page."""
    match = re.search(rf'<input[^>]*name="{name}"[^>]*>', html)
    assert match, f"no input {name!r} in page"
    value = re.search(r'value="([^"]*)"', match.group(0))
    return value.group(1) if value else ""


def start(client: Client, study: Study, query: str = "") -> Participant:
    """Consent on the study page; return the participant the redirect leads to."""
    url = study.get_absolute_url() + query
    page = client.get(url)
    assert page.status_code == 200
    data = {"agree": "on", "external_id": form_value(page.content.decode(), "external_id")}
    response = client.post(url, data)
    assert response.status_code == 302
    token = response["Location"].split("/")[2]
    return Participant.objects.get(token=token)


def answer_current(client: Client, participant: Participant, choice: str = "A", client_ms: str = "") -> str:
    """Answer the question the participant is on; return where the server sends them next."""
    url = client.get(reverse("studyapp:resume", args=[participant.token]))["Location"]
    page = client.get(url)
    assert page.status_code == 200, url
    response = client.post(url, {"choice": choice, "shown": form_value(page.content.decode(), "shown"), "client_ms": client_ms})
    assert response.status_code == 302
    return response["Location"]


def take_study(client: Client, study: Study, *, choices: str = "ABE", query: str = "") -> Participant:
    """Go through the whole study with the test client, cycling through ``choices`` (E = equal)."""
    participant = start(client, study, query)
    assert client.post(reverse("studyapp:demographics", args=[participant.token]), DEMOGRAPHICS).status_code == 302
    assert client.post(reverse("studyapp:instructions", args=[participant.token])).status_code == 302
    for i in range(participant.sequence_length):
        choice = {"A": "A", "B": "B", "E": "equal"}[choices[i % len(choices)]]
        answer_current(client, participant, choice)
    participant.refresh_from_db()
    return participant


def researcher_client(username: str, *studies: Study) -> Client:
    """A logged-in researcher (staff, in the researchers group, as create_researcher makes) of ``studies``."""
    from django.contrib.auth.models import User

    from studyapp.console.access import researcher_group

    user = User.objects.create_user(username, password="x" * 12, is_staff=True)
    user.groups.add(researcher_group())
    for study in studies:
        study.researchers.add(user)
    client = Client()
    client.force_login(user)
    return client
