"""Preview as participant: the whole flow as a participant sees it, with a banner, and not one row written."""
from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse
from study_helpers import DEMOGRAPHICS, form_value, researcher_client

from studyapp.models import Answer, EnrolmentThrottle, Participant, SequenceItem, Study
from studyapp.participation.blinding import find_leaks, forbidden_terms

pytestmark = pytest.mark.django_db
BANNER = "data-preview"


def rows() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in (Participant, SequenceItem, Answer, EnrolmentThrottle))


def walk_preview(client: Client, study: Study) -> list[str]:
    """Go through the preview from consent to thank-you as a participant would; return every page seen."""
    pages = []
    url = reverse("studyapp:preview", args=[study.slug])
    page = client.get(url)
    pages.append(page.content.decode())
    assert client.post(url, {}).status_code == 400  # consent is required, as for participants
    response = client.post(url, {"agree": "on"})
    assert response["Location"] == reverse("studyapp:preview_demographics", args=[study.slug])
    pages.append(client.get(response["Location"]).content.decode())
    assert client.post(response["Location"], {"age": "3"}).status_code == 400
    response = client.post(response["Location"], DEMOGRAPHICS)
    pages.append(client.get(response["Location"]).content.decode())
    response = client.post(response["Location"])
    while "/q/" in response["Location"]:
        page = client.get(response["Location"]).content.decode()
        pages.append(page)
        response = client.post(response["Location"], {"choice": "equal", "shown": form_value(page, "shown")})
        assert response.status_code == 302
    assert response["Location"] == reverse("studyapp:preview_done", args=[study.slug])
    pages.append(client.get(response["Location"]).content.decode())
    return pages


def test_preview_walks_every_step_and_records_nothing(checked_study):
    Study.objects.filter(pk=checked_study.pk).update(status=Study.Status.DRAFT)
    before = rows()
    pages = walk_preview(researcher_client("ada", checked_study), checked_study)
    assert rows() == before  # no participant, sequence item (exposure), answer or enrolment count
    assert all(BANNER in page for page in pages)
    consent, about, instructions, *questions, done = pages
    assert checked_study.consent_text.split(".")[0] in consent
    assert "About you" in about and checked_study.instructions.split(".")[0] in instructions
    types = set(checked_study.bundle.pairs.values_list("question_type", flat=True))
    assert len(questions) == len(types) + 1  # one of every question type, then an attention check
    assert "To show that you are reading" in questions[-1]
    assert all("Which system behaves more reasonably?" in q for q in questions)
    assert checked_study.completion_code in done
    terms = forbidden_terms(checked_study)
    visible = [re.sub(r"<[^>]+>", " ", page) for page in pages]
    assert not [find_leaks(text, terms) for text in visible if find_leaks(text, terms)]


def test_the_participant_pages_carry_no_banner(study):
    page = Client().get(study.get_absolute_url()).content.decode()
    assert BANNER not in page


def test_preview_shows_the_redirect_instead_of_following_it(study):
    Study.objects.filter(pk=study.pk).update(completion_redirect_url="https://example.org/done")
    page = researcher_client("ada", study).get(reverse("studyapp:preview_done", args=[study.slug])).content.decode()
    assert "Participants are sent on to https://example.org/done" in page
    Study.objects.filter(pk=study.pk).update(completion_redirect_url="https://example.org/done?cc={code}",
                                             completion_code="ABC123")
    page = researcher_client("bob", study).get(reverse("studyapp:preview_done", args=[study.slug])).content.decode()
    assert "Participants are sent on to https://example.org/done?cc=ABC123" in page  # the code filled in


def test_an_invalid_preview_answer_shows_the_question_again(study):
    response = researcher_client("ada", study).post(reverse("studyapp:preview_question", args=[study.slug, 1]), {"choice": "A", "shown": "x"})
    assert response.status_code == 400 and "Please choose one of the three answers." in response.content.decode()


def test_only_researchers_with_access_preview(study):
    url = reverse("studyapp:preview", args=[study.slug])
    assert researcher_client("bob", Study.objects.create(slug="second", title="Second")).get(url).status_code == 403
    assert Client().get(url).status_code == 302
    assert researcher_client("ada", study).get(reverse("studyapp:preview_question", args=[study.slug, 99])).status_code == 404
