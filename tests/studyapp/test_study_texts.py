"""A study's texts and settings, edited on its research page: validated, kept, shown to participants, audited."""
from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from study_helpers import DEMOGRAPHICS, researcher_client, start

from studyapp.console.forms import STUDY_TEXT_FIELDS
from studyapp.models import DEFAULT_QUESTION_PROMPT, Study

pytestmark = pytest.mark.django_db


def settings_of(study: Study, **changes: object) -> dict[str, object]:
    values = {name: getattr(study, name) for name in STUDY_TEXT_FIELDS}
    values.update(changes)
    data = {k: ("" if v is None else v) for k, v in values.items()}
    if not data["allow_browser_language"]:
        data.pop("allow_browser_language")
    return data


def test_the_default_prompt_is_the_papers_figure_5_wording_filled_in(study):
    browser = Client()
    participant = start(browser, study)
    browser.post(reverse("studyapp:demographics", args=[participant.token]), DEMOGRAPHICS)
    browser.post(reverse("studyapp:instructions", args=[participant.token]))
    page = browser.get(reverse("studyapp:question", args=[participant.token, 1])).content.decode()
    pair = participant.items.get(position=1).pair
    assert (f"Two systems (A and B) were trained to {pair.dataset.task_phrase}. Both systems decide for the class "
            f"<em>{pair.predicted_class}</em> in this example.") in page  # fmt: skip
    assert study.question_prompt == DEFAULT_QUESTION_PROMPT


def test_saved_texts_reach_the_participant_pages(study):
    ada = researcher_client("ada", study)
    url = reverse("studyapp:texts", args=[study.slug])
    response = ada.post(url, settings_of(
        study, title="Erklärungen", consent_text="Consent <b>here</b>.", instructions="Look closely.",
        question_prompt="Which of the two fits {predicted_class} ({task})?", completion_message="Danke!",
        questions_per_cell=1, attention_checks=1, target_participants=40,
    ))  # fmt: skip
    assert response.status_code == 302
    study.refresh_from_db()
    assert (study.title, study.questions_per_cell, study.attention_checks, study.target_participants) == ("Erklärungen", 1, 1, 40)
    browser = Client()
    assert "Consent &lt;b&gt;here&lt;/b&gt;." in browser.get(study.get_absolute_url()).content.decode()
    participant = start(browser, study)
    assert participant.sequence_length == 6 + 1  # 3 types × 2 datasets × 1, and one check
    browser.post(reverse("studyapp:demographics", args=[participant.token]), DEMOGRAPHICS)
    assert "Look closely." in browser.get(reverse("studyapp:instructions", args=[participant.token])).content.decode()
    browser.post(reverse("studyapp:instructions", args=[participant.token]))
    page = browser.get(reverse("studyapp:question", args=[participant.token, 1])).content.decode()
    pair = participant.items.get(position=1).pair
    assert f"Which of the two fits <em>{pair.predicted_class}</em> ({pair.dataset.task_phrase})?" in page


@pytest.mark.parametrize("changes, message", [
    ({"question_prompt": "Trained to {task} on {dataset}?"}, "not {dataset}"),
    ({"question_prompt": "Unclosed {task"}, "unmatched brace"),
    ({"attention_checks": 13}, "use at most 12 attention checks"),
    ({"questions_per_cell": 0}, "greater than or equal to 1"),
    ({"target_participants": 0}, "at least 1 participant"),
    ({"completion_redirect_url": "not a url"}, "Enter a valid URL"),
    ({"title": ""}, "This field is required"),
])  # fmt: skip
def test_invalid_settings_are_refused_with_the_reason_and_not_saved(study, changes, message):
    before = {name: getattr(study, name) for name in STUDY_TEXT_FIELDS}
    response = researcher_client("ada", study).post(reverse("studyapp:texts", args=[study.slug]), settings_of(study, **changes))
    assert response.status_code == 400 and message in response.content.decode()
    study.refresh_from_db()
    assert {name: getattr(study, name) for name in STUDY_TEXT_FIELDS} == before


def test_the_blinding_audit_warns_about_a_method_in_a_text(study):
    ada = researcher_client("ada", study)
    ada.post(reverse("studyapp:texts", args=[study.slug]), settings_of(study, completion_message="You compared Grad-CAM."))
    page = ada.get(reverse("studyapp:texts", args=[study.slug])).content.decode()
    assert 'data-leak="completion message"' in page and "grad-cam" in page
    assert "Blinding: the completion message" in ada.get(reverse("studyapp:dashboard", args=[study.slug])).content.decode()


def test_open_and_close_from_the_study_page(study):
    ada = researcher_client("ada", study)
    status = reverse("studyapp:status", args=[study.slug])
    assert ada.post(status, {"status": "closed"}).status_code == 302
    assert Study.objects.get(pk=study.pk).status == Study.Status.CLOSED
    assert Client().post(study.get_absolute_url(), {"agree": "on"}).status_code == 403  # closed to newcomers
    ada.post(status, {"status": "open"})
    assert Study.objects.get(pk=study.pk).status == Study.Status.OPEN
    empty = Study.objects.create(slug="empty", title="Empty")
    page = researcher_client("bob", empty).post(reverse("studyapp:status", args=["empty"]), {"status": "open"}, follow=True)
    assert "no stimulus bundle yet" in page.content.decode()
    assert Study.objects.get(slug="empty").status == Study.Status.DRAFT
