"""The whole participant flow through the test client, and what the pages show."""
from __future__ import annotations

import pytest
from django.urls import reverse
from study_helpers import DEMOGRAPHICS, answer_current, form_value, start, take_study

from studyapp.console.access import researcher_group
from studyapp.models import Answer, Participant, Study

pytestmark = pytest.mark.django_db


def test_full_flow_stores_every_answer_and_completes(client, study):
    participant = take_study(client, study, choices="ABE")
    assert participant.sequence_length == 12
    assert participant.completed_at is not None and participant.status == "completed"
    assert (participant.gender, participant.age, participant.ml_experience, participant.xai_experience) == (
        "female", 34, "agree", "undecided")
    answers = Answer.objects.filter(item__participant=participant).order_by("item__position")
    assert [a.choice for a in answers][:4] == ["A", "B", "equal", "A"]
    assert all(a.response_ms >= 0 for a in answers)
    done = client.get(reverse("studyapp:done", args=[participant.token]))
    assert done.status_code == 200
    assert study.completion_code in done.content.decode()


def test_question_page_follows_figure_5(client, study):
    participant = start(client, study)
    client.post(reverse("studyapp:demographics", args=[participant.token]), DEMOGRAPHICS)
    response = client.post(reverse("studyapp:instructions", args=[participant.token]))
    page = client.get(response["Location"]).content.decode()
    item = participant.items.get(position=1)
    task = {"mnist38": "tell handwritten 3s from 8s", "catsdogs": "tell cats from dogs"}[item.pair.dataset.key]
    assert (
        f"Two systems (A and B) were trained to {task}. Both systems decide for the class "
        f"<em>{item.pair.predicted_class}</em> in this example. Below, the two systems show you on which parts "
        "of the image they base their decision. Which system behaves more reasonably?"
    ) in page
    assert page.index("System A") < page.index("System B")
    assert page.index(item.stimulus_a.url) < page.index(item.stimulus_b.url)
    for value, label in (("A", "System A"), ("B", "System B"), ("equal", "Equally reasonable")):
        assert f'name="choice" value="{value}"' in page and label in page
    assert "Question 1 of 12" in page
    following = participant.items.get(position=2)
    assert f'rel="prefetch" as="image" href="{following.stimulus_a.url}"' in page
    image = client.get(item.stimulus_a.url)
    assert image.status_code == 200 and image["Content-Type"] == "image/png"
    assert b"".join(image.streaming_content).startswith(b"\x89PNG")


def test_task_is_normalised_for_both_manifest_spellings(study):
    datasets = {d.key: d.task_phrase for d in study.bundle.datasets.all()}
    assert datasets == {"mnist38": "tell handwritten 3s from 8s", "catsdogs": "tell cats from dogs"}


def test_consent_is_required(client, study):
    response = client.post(study.get_absolute_url(), {})
    assert response.status_code == 400
    assert "Please tick the box" in response.content.decode()
    assert Participant.objects.count() == 0


def test_demographics_are_validated(client, study):
    participant = start(client, study)
    url = reverse("studyapp:demographics", args=[participant.token])
    response = client.post(url, {**DEMOGRAPHICS, "age": "7", "gender": "robot"})
    assert response.status_code == 400
    participant.refresh_from_db()
    assert participant.demographics_at is None and participant.gender == ""


def test_steps_cannot_be_skipped(client, study):
    participant = start(client, study)
    demographics = reverse("studyapp:demographics", args=[participant.token])
    for url in (
        reverse("studyapp:instructions", args=[participant.token]),
        reverse("studyapp:question", args=[participant.token, 1]),
        reverse("studyapp:done", args=[participant.token]),
    ):
        assert client.get(url)["Location"] == demographics
    client.post(demographics, DEMOGRAPHICS)
    client.post(reverse("studyapp:instructions", args=[participant.token]))
    response = client.get(reverse("studyapp:done", args=[participant.token]))
    assert response["Location"] == reverse("studyapp:question", args=[participant.token, 1])
    participant.refresh_from_db()
    assert participant.completed_at is None


def test_completion_redirect_only_after_last_answer(client, study):
    Study.objects.filter(pk=study.pk).update(completion_redirect_url="https://app.prolific.com/submissions/complete?cc=XYZ")
    study.refresh_from_db()
    participant = start(client, study, "?PROLIFIC_PID=abc123")
    client.post(reverse("studyapp:demographics", args=[participant.token]), DEMOGRAPHICS)
    client.post(reverse("studyapp:instructions", args=[participant.token]))
    for _ in range(participant.sequence_length - 1):
        assert "thank-you" not in answer_current(client, participant)
    assert client.get(reverse("studyapp:done", args=[participant.token])).status_code == 302
    last = answer_current(client, participant)
    assert last == reverse("studyapp:done", args=[participant.token])
    response = client.get(last)
    assert response["Location"] == "https://app.prolific.com/submissions/complete?cc=XYZ"
    participant.refresh_from_db()
    assert participant.external_id == "abc123" and participant.completed_at is not None
    assert Answer.objects.filter(item__participant=participant).count() == participant.sequence_length


def test_closed_draft_and_full_studies_turn_newcomers_away(client, study, django_user_model):
    for status, words in (("closed", "has ended"), ("draft", "has not started yet")):
        Study.objects.filter(pk=study.pk).update(status=status)
        page = client.get(study.get_absolute_url())
        assert page.status_code == 200 and words in page.content.decode()
        assert client.post(study.get_absolute_url(), {"agree": "on"}).status_code == 403
    Study.objects.filter(pk=study.pk).update(status="open", target_participants=1)
    take_study(client, study)
    newcomer = client_class_fresh()
    page = newcomer.get(study.get_absolute_url())
    assert "all the participants it needs" in page.content.decode()
    assert newcomer.post(study.get_absolute_url(), {"agree": "on"}).status_code == 403
    assert Participant.objects.count() == 1


def test_staff_can_preview_a_draft(client, study, django_user_model):
    Study.objects.filter(pk=study.pk).update(status="draft")
    staff = django_user_model.objects.create_user("r", password="pw", is_staff=True)
    staff.groups.add(researcher_group())
    study.researchers.add(staff)  # only the study's own researchers preview it
    client.force_login(staff)
    preview = reverse("studyapp:preview", args=[study.slug])
    assert client.get(study.get_absolute_url())["Location"] == preview  # the preview records nothing
    assert client.post(study.get_absolute_url(), {"agree": "on"})["Location"] == preview
    assert "data-preview" in client.get(preview).content.decode()
    assert Participant.objects.count() == 0


def client_class_fresh():
    from django.test import Client

    return Client()


def test_unknown_token_is_404(client, study):
    assert client.get(reverse("studyapp:resume", args=["nope"])).status_code == 404
    assert client.post(reverse("studyapp:question", args=["nope", 1]), {"choice": "A"}).status_code == 404


def test_invalid_choice_is_refused_with_the_page(client, study):
    participant = start(client, study)
    client.post(reverse("studyapp:demographics", args=[participant.token]), DEMOGRAPHICS)
    client.post(reverse("studyapp:instructions", args=[participant.token]))
    url = reverse("studyapp:question", args=[participant.token, 1])
    shown = form_value(client.get(url).content.decode(), "shown")
    response = client.post(url, {"choice": "C", "shown": shown})
    assert response.status_code == 400
    assert "Please choose one of the three answers" in response.content.decode()
    assert not Answer.objects.exists()
