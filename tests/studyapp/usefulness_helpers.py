"""Helpers that set up usefulness studies and take their trials through the test client."""

from __future__ import annotations

import re
from pathlib import Path

from django.test import Client
from django.urls import reverse
from study_helpers import DEMOGRAPHICS, form_value, start

from studyapp.models import Participant, Study
from studyapp.operations.bundle import import_bundle, validate_bundle
from tests.synthetic_usefulness_bundle import write_usefulness_bundle


def usefulness_study(
    folder: Path,
    task: str,
    *,
    slug: str | None = None,
    checks: int = 0,
    per_cell: int = 2,
    **bundle: object,
) -> Study:
    """An open study of ``task`` from a synthetic bundle (2 datasets, methods bla_t and cam)."""
    root = write_usefulness_bundle(folder / f"bundle-{task}", task, **bundle)
    result = import_bundle(
        validate_bundle(root), slug or task.replace("_", "-"), title=f"Study of {task}"
    )
    Study.objects.filter(pk=result.study.pk).update(
        status=Study.Status.OPEN, questions_per_cell=per_cell, attention_checks=checks
    )
    return Study.objects.get(pk=result.study.pk)


def ready(client: Client, study: Study, query: str = "") -> Participant:
    """A participant who consented, answered the questions about them and read the instructions."""
    participant = start(client, study, query)
    assert (
        client.post(
            reverse("studyapp:demographics", args=[participant.token]), DEMOGRAPHICS
        ).status_code
        == 302
    )
    assert (
        client.post(reverse("studyapp:instructions", args=[participant.token])).status_code == 302
    )
    return participant


def radio_values(html: str, name: str) -> list[str]:
    """The values of a page's radio buttons called ``name``, in page order."""
    return re.findall(rf'<input type="radio" name="{name}" value="([^"]*)"', html)


def current_url(client: Client, participant: Participant) -> str:
    return client.get(reverse("studyapp:resume", args=[participant.token]))["Location"]


def answer_trial(
    client: Client, participant: Participant, answer: str | None = None, confidence: str = "3"
) -> str:
    """Answer the participant's trial (the first option unless ``answer``; learning: Next);
    return where the server sends them next."""
    url = current_url(client, participant)
    page = client.get(url)
    assert page.status_code == 200, url
    html = page.content.decode()
    data = {"shown": form_value(html, "shown"), "client_ms": "", "next": "1"}
    options = radio_values(html, "answer")
    if options:
        data |= {"answer": answer or options[0], "confidence": confidence}
    response = client.post(url, data)
    assert response.status_code == 302, (url, response.status_code)
    return response["Location"]


def take_trials(client: Client, study: Study, query: str = "") -> Participant:
    """Go through the whole usefulness study, always giving the first answer with confidence 3."""
    participant = ready(client, study, query)
    for _ in range(participant.sequence_length):
        answer_trial(client, participant)
    participant.refresh_from_db()
    return participant
