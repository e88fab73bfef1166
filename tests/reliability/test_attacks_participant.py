"""Attacks from outside and as a participant (issue 15): each written as the attack, asserting the refusal
and that nothing stored changed. Takeover by external id, NUL and over-long tokens, file parts on forms."""
from __future__ import annotations

import io

import pytest
from django.test import Client
from django.urls import URLPattern, get_resolver, reverse
from study_helpers import DEMOGRAPHICS, answer_current, form_value, researcher_client, start

from studyapp.models import Answer, Participant, Study
from studyapp.participation.flow import ExternalIdTaken, enrol

pytestmark = pytest.mark.django_db


def _victim(study: Study) -> tuple[Client, Participant]:
    """A Prolific participant two answers in, in their own browser."""
    browser = Client()
    victim = start(browser, study, "?PROLIFIC_PID=5f0c1e2d3b4a")
    browser.post(reverse("studyapp:demographics", args=[victim.token]), DEMOGRAPHICS)
    browser.post(reverse("studyapp:instructions", args=[victim.token]))
    answer_current(browser, victim, "A")
    answer_current(browser, victim, "B")
    return browser, victim


def _state() -> tuple:
    return (list(Participant.objects.values_list("pk", "token", "answered", "demographics_at")),
            list(Answer.objects.values_list("pk", "choice")))  # fmt: skip


def _reveals(response, token: str) -> bool:
    cookies = "".join(morsel.value for morsel in response.cookies.values())
    return token in response.content.decode() + response.get("Location", "") + cookies


def test_a_known_external_id_does_not_hand_out_its_participant(study):
    browser, victim = _victim(study)
    before = _state()
    attacker = Client()
    by_link = attacker.get(study.get_absolute_url() + "?PROLIFIC_PID=5f0c1e2d3b4a")
    assert by_link.status_code == 409 and not _reveals(by_link, victim.token)
    assert "already started this study" in by_link.content.decode()
    by_consent = attacker.post(study.get_absolute_url(), {"agree": "on", "external_id": "5f0c1e2d3b4a"})
    assert by_consent.status_code == 409 and not _reveals(by_consent, victim.token)
    by_both = attacker.post(study.get_absolute_url() + "?external_id=5f0c1e2d3b4a",
                            {"agree": "on", "external_id": "5f0c1e2d3b4a"})  # fmt: skip
    assert by_both.status_code == 409 and not _reveals(by_both, victim.token)
    assert _state() == before  # no takeover, no second participant for the id
    with pytest.raises(ExternalIdTaken):  # what the consent POST asks for, also when it loses a race
        enrol(study, external_id="5f0c1e2d3b4a", only_new=True)
    # The victim's own browser (signed cookie) still resumes where they were.
    again = browser.get(study.get_absolute_url() + "?PROLIFIC_PID=5f0c1e2d3b4a")
    assert again.status_code == 302 and again["Location"] == reverse("studyapp:question", args=[victim.token, 3])


def test_a_cookie_of_one_participant_does_not_resume_under_another_external_id(study):
    browser, victim = _victim(study)
    other = browser.get(study.get_absolute_url() + "?PROLIFIC_PID=someone-else")
    assert other.status_code == 200 and not _reveals(other, victim.token)  # a new participant's consent page
    assert form_value(other.content.decode(), "external_id") == "someone-else"


def _participant_patterns() -> list[URLPattern]:
    return [inner for pattern in get_resolver().url_patterns for inner in getattr(pattern, "url_patterns", [])
            if isinstance(inner, URLPattern) and "token" in inner.pattern.regex.groupindex]  # fmt: skip


@pytest.mark.parametrize("bad", ["%00", "abc%00def", "x" * 65, "%C0%80", "..%2F..%2Fetc"])
def test_malformed_tokens_get_404_on_every_participant_path(study, bad):
    patterns = _participant_patterns()
    assert {p.name for p in patterns} >= {"resume", "demographics", "instructions", "question", "done"}
    before = _state()
    for pattern in patterns:
        url = reverse(f"studyapp:{pattern.name}", kwargs={"token": "T", **({"position": 1} if "position" in
                      pattern.pattern.regex.groupindex else {})}).replace("/T/", f"/{bad}/")  # fmt: skip
        for method in ("get", "post"):
            response = getattr(Client(), method)(url, {"choice": "A", "shown": "x"} if method == "post" else None)
            assert response.status_code == 404, (method, url, response.status_code)
    assert _state() == before


def test_malformed_public_ids_on_research_paths_get_404(study):
    participant = start(Client(), study)
    staff = researcher_client("ada", study)
    for name in ("exclude", "include", "delete"):
        url = reverse(f"studyapp:{name}", args=[study.slug, participant.public_id]).replace(participant.public_id, "a%00b")
        assert staff.post(url).status_code == 404
    assert Participant.objects.get(pk=participant.pk).excluded is False


def _multipart_with_file(fields: dict[str, str], size: int) -> dict:
    upload = io.BytesIO(b"\0" * size)
    upload.name = "big.bin"
    return {**fields, "attachment": upload}


def test_file_parts_on_participant_forms_are_refused_without_spooling(study, settings, tmp_path):
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "spool")
    (tmp_path / "spool").mkdir()
    before = _state()
    consent = Client().post(study.get_absolute_url(), _multipart_with_file({"agree": "on"}, 3 * 1024 * 1024))
    assert consent.status_code == 400
    assert _state() == before
    browser = Client()
    participant = start(browser, study)
    demographics = reverse("studyapp:demographics", args=[participant.token])
    assert browser.post(demographics, _multipart_with_file(DEMOGRAPHICS, 3 * 1024 * 1024)).status_code == 400
    assert Participant.objects.get(pk=participant.pk).demographics_at is None
    browser.post(demographics, DEMOGRAPHICS)
    browser.post(reverse("studyapp:instructions", args=[participant.token]))
    question = reverse("studyapp:question", args=[participant.token, 1])
    shown = form_value(browser.get(question).content.decode(), "shown")
    before = _state()
    assert browser.post(question, _multipart_with_file({"choice": "A", "shown": shown}, 3 * 1024 * 1024)).status_code == 400
    assert _state() == before and list((tmp_path / "spool").iterdir()) == []
    too_big = Client().post(study.get_absolute_url(), {"agree": "on", "external_id": "x" * (300 * 1024)})
    assert too_big.status_code == 400 and _state() == before
