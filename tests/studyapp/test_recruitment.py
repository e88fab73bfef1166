"""Recruitment on Prolific (issue 28): completion codes per outcome, the attention-check screening rule,
and returned / timed-out sessions released so that their comparisons go back to the pool."""
from __future__ import annotations

import io
import random
import re
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from study_helpers import DEMOGRAPHICS, answer_current, form_value, researcher_client, start, take_study
from usefulness_helpers import answer_trial, radio_values, ready, usefulness_study

from contracts.usefulness import AGREEMENT, FORWARD_SIMULATION
from studyapp.console.forms import StudyTextsForm
from studyapp.models import (
    STUDY_MAX_FAILED_CHECKS,
    Answer,
    Outcome,
    Pair,
    Participant,
    SequenceItem,
    Study,
    TrialAnswer,
)
from studyapp.participation.design import pair_exposure, pair_options, plan_sequence
from studyapp.participation.flow import enrol, questions, record_answer
from studyapp.participation.trials import assign_arm, study_arms, trial_options

pytestmark = pytest.mark.django_db

PROLIFIC = "https://app.prolific.com/submissions/complete?cc={code}"


@pytest.fixture
def checked_study(checked_study: Study) -> Study:
    """The study with two attention checks under the default screening rule (one failure allowed)."""
    Study.objects.filter(pk=checked_study.pk).update(max_failed_checks=STUDY_MAX_FAILED_CHECKS)
    checked_study.refresh_from_db()
    return checked_study


def _ready(client: Client, study: Study) -> Participant:
    participant = start(client, study)
    client.post(reverse("studyapp:demographics", args=[participant.token]), DEMOGRAPHICS)
    client.post(reverse("studyapp:instructions", args=[participant.token]))
    return participant


def _answer_to(participant: Participant, position: int) -> str:
    """The answer that passes the item: questions get "A", checks their instruction."""
    item = SequenceItem.objects.get(participant=participant, position=position)
    return item.expected_choice or "A"


def _fail_next_check(client: Client, participant: Participant) -> str:
    """Answer up to and including the participant's next attention check, failing the check; return the last Location."""
    participant.refresh_from_db()
    checks = SequenceItem.objects.filter(participant=participant, position__gt=participant.answered)
    check = checks.exclude(expected_choice="").order_by("position").first()
    location = ""
    for position in range(participant.answered + 1, check.position + 1):
        location = answer_current(client, participant, "A" if position == check.position else _answer_to(participant, position))
    return location


def _code_on(html: str) -> str:
    match = re.search(r'<p class="code"[^>]*>([^<]*)</p>', html)
    assert match, "no completion code on the page"
    return match.group(1)


# ---------------------------------------------------------------- settings and codes


def test_a_new_study_has_three_distinct_random_codes_and_the_default_rules(study: Study):
    fresh = Study.objects.create(slug="fresh", title="Fresh")
    codes = {fresh.completion_code, fresh.screened_out_code, fresh.no_consent_code}
    assert len(codes) == 3 and all(re.fullmatch(r"[0-9A-F]{8}", code) for code in codes)
    assert fresh.max_failed_checks == STUDY_MAX_FAILED_CHECKS >= 1  # never screened out on a single failure by default
    assert fresh.release_after_minutes == 60
    assert Study.objects.create(slug="other", title="Other").screened_out_code != fresh.screened_out_code


def test_the_redirect_url_with_code_serves_every_outcome(study: Study):
    study.completion_redirect_url = PROLIFIC
    assert study.outcome_redirect_url(Outcome.COMPLETE).endswith(f"cc={study.completion_code}")
    assert study.outcome_redirect_url(Outcome.SCREENED_OUT).endswith(f"cc={study.screened_out_code}")
    assert study.outcome_redirect_url(Outcome.NO_CONSENT).endswith(f"cc={study.no_consent_code}")
    study.completion_redirect_url = "https://example.org/done"  # without {code}: completion only, as before
    assert study.outcome_redirect_url(Outcome.COMPLETE) == "https://example.org/done"
    assert study.outcome_redirect_url(Outcome.SCREENED_OUT) == study.outcome_redirect_url(Outcome.NO_CONSENT) == ""


def _form_data(study: Study, **changes: object) -> dict[str, object]:
    data = {name: getattr(study, name) for name in StudyTextsForm.Meta.fields}
    data["target_participants"] = ""
    data["allow_browser_language"] = ""
    return {**data, **changes}


def test_the_console_form_edits_codes_and_rules_and_validates_them(study: Study):
    client = researcher_client("ada", study)
    url = reverse("studyapp:texts", args=[study.slug])
    page = client.get(url).content.decode()
    for name in ("screened_out_code", "no_consent_code", "max_failed_checks", "release_after_minutes"):
        assert f'name="{name}"' in page
    changed = _form_data(study, completion_redirect_url=PROLIFIC, screened_out_code="SCREEN1", no_consent_code="NOCON1",
                         max_failed_checks=2, release_after_minutes=30)  # fmt: skip
    assert client.post(url, changed).status_code == 302
    study.refresh_from_db()
    assert (study.screened_out_code, study.no_consent_code, study.max_failed_checks, study.release_after_minutes) == (
        "SCREEN1", "NOCON1", 2, 30)
    assert study.completion_redirect_url == PROLIFIC
    refused = {
        "the same code twice": _form_data(study, no_consent_code=study.completion_code),
        "a code with a space": _form_data(study, screened_out_code="A B"),
        "another placeholder": _form_data(study, completion_redirect_url="https://example.org/?pid={pid}"),
        "a negative rule": _form_data(study, max_failed_checks=-1),
    }
    for why, data in refused.items():
        response = client.post(url, data)
        assert response.status_code == 400, why
    study.refresh_from_db()
    assert study.screened_out_code == "SCREEN1" and study.no_consent_code == "NOCON1"


# ---------------------------------------------------------------- end pages


def test_a_participant_who_completes_sees_the_completion_code(study: Study):
    client = Client()
    participant = take_study(client, study)
    page = client.get(reverse("studyapp:done", args=[participant.token]))
    assert page.status_code == 200 and _code_on(page.content.decode()) == study.completion_code
    assert participant.outcome == Outcome.COMPLETE and not participant.excluded
    # The screened-out page is not theirs: it sends them to their own end.
    response = client.get(reverse("studyapp:screened_out", args=[participant.token]))
    assert response.status_code == 302 and response["Location"] == reverse("studyapp:done", args=[participant.token])


def test_completion_redirects_with_the_completion_code(study: Study):
    Study.objects.filter(pk=study.pk).update(completion_redirect_url=PROLIFIC)
    client = Client()
    participant = take_study(client, study)
    response = client.get(reverse("studyapp:done", args=[participant.token]))
    assert response.status_code == 302
    assert response["Location"] == f"https://app.prolific.com/submissions/complete?cc={study.completion_code}"


def test_one_failed_check_is_allowed_and_the_second_screens_out(checked_study: Study):
    client = Client()
    participant = _ready(client, checked_study)
    location = _fail_next_check(client, participant)
    participant.refresh_from_db()
    assert participant.screened_out_at is None and not participant.excluded  # never after a single failure
    assert location == reverse("studyapp:question", args=[participant.token, participant.answered + 1])
    location = _fail_next_check(client, participant)
    assert location == reverse("studyapp:screened_out", args=[participant.token])
    participant.refresh_from_db()
    assert participant.screened_out_at is not None and participant.excluded and participant.completed_at is None
    assert participant.exclusion_reason == (
        "screened out: failed 2 attention checks, more than the study allows (1)")
    assert participant.outcome == Outcome.SCREENED_OUT and participant.status == "excluded"
    answered = participant.answered
    assert Answer.objects.filter(item__participant=participant).count() == answered  # answers kept
    page = client.get(location)
    html = page.content.decode()
    assert page.status_code == 200 and _code_on(html) == checked_study.screened_out_code
    assert checked_study.completion_code not in html
    # Every other step of theirs leads back to that page; nothing more is stored.
    for url in (reverse("studyapp:question", args=[participant.token, answered + 1]),
                reverse("studyapp:done", args=[participant.token]), reverse("studyapp:resume", args=[participant.token]),
                reverse("studyapp:instructions", args=[participant.token])):  # fmt: skip
        assert client.get(url)["Location"] == location, url
    post = client.post(reverse("studyapp:question", args=[participant.token, answered + 1]), {"choice": "A"})
    assert post.status_code == 302 and Answer.objects.filter(item__participant=participant).count() == answered
    # Screened out participants are excluded, so their questions are no longer held.
    assert sum(pair_exposure(checked_study.pk).values()) == 0


def test_a_failed_check_on_the_last_item_screens_out_instead_of_completing(checked_study: Study):
    Study.objects.filter(pk=checked_study.pk).update(max_failed_checks=0)
    client = Client()
    participant = _ready(client, checked_study)
    items = SequenceItem.objects.filter(participant=participant)
    check, last = items.exclude(expected_choice="").first(), items.order_by("position").last()
    if check.pk != last.pk:  # move a check to the end: swap its position with the last item's
        positions = check.position, last.position
        items.filter(pk=check.pk).update(position=999)
        items.filter(pk=last.pk).update(position=positions[0])
        items.filter(pk=check.pk).update(position=positions[1])
    for position in range(1, participant.sequence_length):  # the other check passed
        answer_current(client, participant, _answer_to(participant, position))
    assert answer_current(client, participant, "B") == reverse("studyapp:screened_out", args=[participant.token])
    participant.refresh_from_db()
    assert participant.answered == participant.sequence_length and participant.completed_at is None
    assert participant.outcome == Outcome.SCREENED_OUT and participant.excluded
    assert client.get(reverse("studyapp:done", args=[participant.token]))["Location"] == reverse(
        "studyapp:screened_out", args=[participant.token])


def test_with_max_failed_checks_0_a_single_failure_screens_out(checked_study: Study):
    Study.objects.filter(pk=checked_study.pk).update(max_failed_checks=0, completion_redirect_url=PROLIFIC)
    client = Client()
    participant = _ready(client, checked_study)
    assert _fail_next_check(client, participant) == reverse("studyapp:screened_out", args=[participant.token])
    response = client.get(reverse("studyapp:screened_out", args=[participant.token]))
    assert response.status_code == 302
    assert response["Location"] == f"https://app.prolific.com/submissions/complete?cc={checked_study.screened_out_code}"


def test_passed_checks_never_screen_out(checked_study: Study):
    Study.objects.filter(pk=checked_study.pk).update(max_failed_checks=0)
    client = Client()
    participant = _ready(client, checked_study)
    for position in range(1, participant.sequence_length + 1):
        answer_current(client, participant, _answer_to(participant, position))
    participant.refresh_from_db()
    assert participant.completed_at is not None and participant.screened_out_at is None and not participant.excluded


def test_a_usefulness_study_screens_out_on_its_trial_checks(tmp_path):
    study = usefulness_study(tmp_path, AGREEMENT, checks=2)
    client = Client()
    participant = ready(client, study)
    failed = 0
    location = ""
    while failed < 2:
        participant.refresh_from_db()
        item = participant.trial_items.get(position=participant.answered + 1)
        html = client.get(reverse("studyapp:question", args=[participant.token, item.position])).content.decode()
        options = radio_values(html, "answer")
        if item.expected_answer:
            failed += 1
            location = answer_trial(client, participant, next(o for o in options if o != item.expected_answer))
        else:
            location = answer_trial(client, participant)
    participant.refresh_from_db()
    assert location == reverse("studyapp:screened_out", args=[participant.token])
    assert participant.screened_out_at is not None and participant.excluded
    assert TrialAnswer.objects.filter(item__participant=participant).count() == participant.answered
    assert _code_on(client.get(location).content.decode()) == study.screened_out_code


def test_declining_consent_asks_to_return_and_stores_nothing(study: Study):
    client = Client()
    html = client.get(study.get_absolute_url() + "?PROLIFIC_PID=abc").content.decode()
    link = reverse("studyapp:no_consent", args=[study.slug])
    assert f'href="{link}"' in html
    page = client.get(link)
    text = page.content.decode()
    assert page.status_code == 200 and _code_on(text) == study.no_consent_code and "return your submission" in text
    assert study.completion_code not in text and study.screened_out_code not in text
    assert Participant.objects.count() == 0
    Study.objects.filter(pk=study.pk).update(completion_redirect_url=PROLIFIC)
    response = client.get(link)
    assert response.status_code == 302 and response["Location"].endswith(f"cc={study.no_consent_code}")
    Study.objects.filter(pk=study.pk).update(status=Study.Status.DRAFT)
    draft = client.get(link)
    assert draft.status_code == 200 and study.no_consent_code not in draft.content.decode()


def test_the_no_consent_page_is_german_for_a_german_study(study: Study):
    Study.objects.filter(pk=study.pk).update(language="de")
    text = Client().get(reverse("studyapp:no_consent", args=[study.slug])).content.decode()
    assert "Sie haben sich entschieden, nicht teilzunehmen" in text


def test_a_participant_acts_only_as_themselves(checked_study: Study):
    mine, theirs = Client(), Client()
    me, other = _ready(mine, checked_study), _ready(theirs, checked_study)
    _fail_next_check(mine, me)
    _fail_next_check(mine, me)
    me.refresh_from_db()
    other.refresh_from_db()
    assert me.screened_out_at is not None and other.screened_out_at is None and not other.excluded
    # Their question page's stamp does not answer mine, and my screened-out state does not reach them.
    other_url = reverse("studyapp:question", args=[other.token, 1])
    shown = form_value(theirs.get(other_url).content.decode(), "shown")
    response = mine.post(reverse("studyapp:question", args=[me.token, me.answered + 1]), {"choice": "A", "shown": shown})
    assert response.status_code == 302 and Answer.objects.filter(item__participant=me).count() == me.answered
    assert theirs.get(reverse("studyapp:screened_out", args=[other.token]))["Location"] == other_url


@pytest.mark.parametrize("path", [
    "/s/pilot/no-consent/", "/s/nope/no-consent/", "/p/nope/screened-out/", "/p/%00/screened-out/",
    "/p/" + "x" * 65 + "/screened-out/", "/s/pilot/no-consent/?PROLIFIC_PID=%00", "/s/pilot/no-consent/?lang=xx",
])  # fmt: skip
def test_no_recruitment_url_answers_5xx(study: Study, path: str):
    client = Client(raise_request_exception=False)
    for method in (client.get, client.post, client.head):
        assert method(path).status_code < 500, (method, path)


def test_the_export_has_the_outcome_and_the_analysis_reads_it(checked_study: Study, tmp_path: Path):
    done, screened = Client(), Client()
    completed = _ready(done, checked_study)
    for position in range(1, completed.sequence_length + 1):
        answer_current(done, completed, _answer_to(completed, position))
    out_of_study = _ready(screened, checked_study)
    _fail_next_check(screened, out_of_study)
    _fail_next_check(screened, out_of_study)
    _ready(Client(), checked_study)
    out = tmp_path / "export"
    call_command("export_responses", "--study", checked_study.slug, "--out", str(out), stdout=io.StringIO())
    lines = (out / "participants.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0].endswith(",language,outcome")
    rows = [line.split(",") for line in lines[1:]]
    assert [(row[2], row[-1]) for row in rows] == [("completed", "complete"), ("excluded", "screened_out"),
                                                   ("incomplete", "")]  # fmt: skip
    from analysis.cli import main

    assert main(["report", "--export-dir", str(out), "--out", str(tmp_path / "report"), "--bootstrap", "50"]) == 0
    assert (tmp_path / "report" / "report.html").exists()


# ---------------------------------------------------------------- release of returned / timed-out sessions


def _go_quiet(participant: Participant, minutes: int) -> None:
    Participant.objects.filter(pk=participant.pk).update(last_active_at=timezone.now() - timedelta(minutes=minutes))


def _answer(participant: Participant, count: int) -> None:
    for question in questions(participant.token)[participant.answered:participant.answered + count]:
        assert record_answer(participant, question, "A", 1000)


def test_an_inactive_participant_is_released_keeps_their_answers_and_can_come_back(study: Study):
    participant = enrol(study)
    _answer(participant, 3)
    assert sum(pair_exposure(study.pk, 60).values()) == 12
    _go_quiet(participant, 61)
    assert sum(pair_exposure(study.pk, 60).values()) == 0  # their pairs go back to the pool
    assert Answer.objects.filter(item__participant=participant).count() == 3  # their answers stay
    assert sum(pair_exposure(study.pk, 0).values()) == 12  # 0 = never released
    assert sum(pair_exposure(study.pk, 120).values()) == 12  # not yet inactive long enough
    newcomer = enrol(study)  # gets the released pairs first
    theirs = list(SequenceItem.objects.filter(participant=newcomer).values_list("pair", flat=True))
    as_if_alone = plan_sequence(pair_options(study.pk), {}, study.questions_per_cell, random.Random(newcomer.token))
    assert theirs == [item.pair for item in as_if_alone]  # drawn as if nobody held any pair
    # The released participant comes back: their answers are there, they continue where they left off.
    client = Client()
    url = reverse("studyapp:question", args=[participant.token, 4])
    Participant.objects.filter(pk=participant.pk).update(demographics_at=timezone.now(), instructions_at=timezone.now())
    page = client.get(url)
    assert page.status_code == 200
    assert client.post(url, {"choice": "B", "shown": form_value(page.content.decode(), "shown")}).status_code == 302
    participant.refresh_from_db()
    assert participant.answered == 4 and participant.last_active_at > timezone.now() - timedelta(minutes=1)
    assert sum(pair_exposure(study.pk, 60).values()) == 24  # active again: holds the whole sequence again


def test_forward_simulation_arms_do_not_count_released_participants(tmp_path):
    study = usefulness_study(tmp_path, FORWARD_SIMULATION)
    arms = study_arms(trial_options(study.pk, study.task))
    first = enrol(study)
    _go_quiet(first, 61)
    drawn = {assign_arm(Participant(study=study, pk=10**6), arms, random.Random(seed)) for seed in range(20)}
    assert drawn == set(arms)  # the released participant's arm is open again: every arm ties at zero
    Study.objects.filter(pk=study.pk).update(release_after_minutes=0)
    study.refresh_from_db()
    drawn = {assign_arm(Participant(study=study, pk=10**6), arms, random.Random(seed)) for seed in range(20)}
    assert drawn == set(arms) - {first.arm}


def _simulate(study: Study, release_after_minutes: int, participants: int = 50, wave: int = 5) -> dict:
    """Participants arrive in waves of ``wave`` (each wave starts together, so they see one another's
    sequences); 20 % of them (among the first 40) abandon after 3 answers and have timed out before the next
    wave arrives; the newcomers after them fill in. Returns the completed participants' answers per pair."""
    Study.objects.filter(pk=study.pk).update(release_after_minutes=release_after_minutes)
    for pair in Pair.objects.filter(bundle__study=study):  # every pair its own image: only the release matters
        Pair.objects.filter(pk=pair.pk).update(image_id=f"own-{pair.pk}")
    study.refresh_from_db()
    quitting = set(range(1, participants * 4 // 5, 4))
    assert len(quitting) == participants // 5
    for start_at in range(0, participants, wave):
        numbers = range(start_at, min(start_at + wave, participants))
        people = {number: enrol(study, external_id=f"p{number}") for number in numbers}
        for number, person in people.items():
            _answer(person, 3 if number in quitting else person.sequence_length)
        for number in quitting.intersection(people):
            _go_quiet(people[number], 90)
    per_pair: dict[int, int] = dict.fromkeys(Pair.objects.filter(bundle__study=study).values_list("pk", flat=True), 0)
    answered = Answer.objects.filter(item__participant__study=study, item__participant__completed_at__isnull=False,
                                     item__expected_choice="").values_list("item__pair", flat=True)  # fmt: skip
    for pair in answered:
        per_pair[pair] += 1
    cells: dict[tuple[str, int], list[int]] = defaultdict(list)
    for pair, question_type, dataset in Pair.objects.filter(bundle__study=study).values_list("pk", "question_type", "dataset"):
        cells[(question_type, dataset)].append(per_pair[pair])
    completed = Participant.objects.filter(study=study, completed_at__isnull=False).count()
    return {"completed": completed, "spread": {cell: max(c) - min(c) for cell, c in cells.items()}, "cells": dict(cells)}


def test_with_release_the_answers_of_completed_participants_stay_balanced_within_one(study: Study):
    result = _simulate(study, release_after_minutes=60)
    print("with release:", result["cells"])
    assert result["completed"] == 40
    assert max(result["spread"].values()) <= 1, result["cells"]


def test_without_release_abandoned_sessions_unbalance_the_cells(study: Study):
    result = _simulate(study, release_after_minutes=0)
    print("without release:", result["cells"])
    assert result["completed"] == 40
    assert max(result["spread"].values()) >= 2, result["cells"]


def test_a_drafts_researcher_sees_the_no_consent_page_as_a_preview(study: Study):
    Study.objects.filter(pk=study.pk).update(status=Study.Status.DRAFT, completion_redirect_url=PROLIFIC)
    page = researcher_client("ada", study).get(reverse("studyapp:no_consent", args=[study.slug]))
    html = page.content.decode()
    assert page.status_code == 200 and "data-preview" in html and _code_on(html) == study.no_consent_code
    assert f"cc={study.no_consent_code}" in html  # where participants would be sent
