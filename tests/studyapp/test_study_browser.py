"""One participant in real Chromium (Playwright): consent → about you → instructions → questions
(reloading once in the middle, answering by mouse and by keyboard, study.js sending the answers
and swapping in the next question) → thank-you; then the export. A German browser takes a study
that follows the browser's language in German and uses the language switch mid-study."""
from __future__ import annotations

import csv
import io

import pytest
from django.core.management import call_command

from studyapp.models import Participant, Study

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


ENGLISH = {"agree": "I have read the information above and agree to take part.", "start": "Start",
           "about_you": "About you", "gender": "Female", "age": "Age (years)",
           "ml": ("I have technical experience with ML/AI:", "Agree"),
           "xai": ("I have technical experience with XAI (explainable AI):", "Undecided"),
           "continue": "Continue", "instructions": "Instructions"}
GERMAN = {"agree": "Ich habe die Informationen oben gelesen und bin mit der Teilnahme einverstanden.",
          "start": "Starten", "about_you": "Über Sie", "gender": "Weiblich", "age": "Alter (Jahre)",
          "ml": ("Ich habe technische Erfahrung mit ML/KI:", "Stimme zu"),
          "xai": ("Ich habe technische Erfahrung mit XAI (erklärbarer KI):", "Unentschieden"),
          "continue": "Weiter", "instructions": "Anleitung"}


def consent_and_about_you(page, labels: dict, age: str) -> None:
    """Consent and the about-you page as a participant does it, by the labels a screen reader hears
    (in the page's language), up to the instructions."""
    from playwright.sync_api import expect

    page.get_by_label(labels["agree"]).check()
    page.get_by_role("button", name=labels["start"]).click()
    expect(page.get_by_role("heading", name=labels["about_you"])).to_be_visible()
    page.get_by_label(labels["gender"]).check()
    page.get_by_label(labels["age"]).fill(age)
    for group, answer in (labels["ml"], labels["xai"]):
        page.get_by_role("group", name=group).get_by_label(answer, exact=True).check()
    page.get_by_role("button", name=labels["continue"]).click()
    expect(page.get_by_role("heading", name=labels["instructions"])).to_be_visible()


def test_participant_takes_the_study_in_chromium(live_server, study: Study, browser_page, tmp_path):
    from playwright.sync_api import expect

    page = browser_page
    page.goto(f"{live_server.url}{study.get_absolute_url()}?PROLIFIC_PID=browser-1")
    consent_and_about_you(page, ENGLISH, age="29")
    page.get_by_role("button", name="Begin").click()

    answer_posts = []
    page.on("request", lambda r: answer_posts.append(r.resource_type) if r.method == "POST" and "/q/" in r.url else None)
    choices = []
    for position in range(1, 13):
        expect(page.get_by_text(f"Question {position} of 12")).to_be_visible()
        expect(page.locator("text=Which system behaves more reasonably?")).to_be_visible()
        assert page.url.endswith(f"/q/{position}/")  # the address follows the swapped-in question
        images = page.locator(".systems img")
        expect(images).to_have_count(3)
        page.wait_for_function("() => [...document.querySelectorAll('.systems img')].every(i => i.complete && i.naturalWidth > 0)")
        for i in range(3):  # every image really loaded and scaled to the phone's width
            assert images.nth(i).bounding_box()["width"] <= 390
        if position == 6:
            page.reload()
            expect(page.get_by_text("Question 6 of 12")).to_be_visible()
        if position % 3 == 0:
            page.keyboard.press("e")  # keys answer too
            choices.append("equal")
        else:
            choice = "A" if position % 2 else "B"
            page.get_by_role("button", name=f"System {choice}").click()
            choices.append(choice)
        if position < 12:
            expect(page.get_by_text(f"Question {position + 1} of 12")).to_be_visible()

    expect(page.get_by_role("heading", name="Thank you!")).to_be_visible()
    expect(page.locator("[data-completion-code]")).to_have_text(study.completion_code)
    assert answer_posts == ["fetch"] * 12  # study.js sent every answer; no page was posted plainly

    participant = Participant.objects.get(external_id="browser-1")
    assert participant.status == "completed" and participant.answered == 12
    out = tmp_path / "export"
    call_command("export_responses", "--study", study.slug, "--out", str(out), stdout=io.StringIO())
    with (out / "answers.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["choice"] for r in rows] == choices
    assert [r["position"] for r in rows] == [str(i) for i in range(1, 13)]
    assert all(r["participant"] == participant.public_id and 0 <= int(r["response_ms"]) < 600_000 for r in rows)
    with (out / "participants.csv").open(encoding="utf-8") as handle:
        (person,) = list(csv.DictReader(handle))
    assert (person["status"], person["gender"], person["age"], person["ml_experience"], person["xai_experience"],
            person["simulated"]) == ("completed", "female", "29", "agree", "undecided", "false")  # fmt: skip


def test_an_answer_whose_response_is_lost_is_sent_again_plainly_and_stored_once(live_server, study: Study, browser_page):
    """study.js's fetch fails after the server stored the answer (a dropped connection): the script
    falls back to the plain form, the server sees a repeat and moves on; the answer exists once."""
    from playwright.sync_api import expect

    page = browser_page
    page.goto(f"{live_server.url}{study.get_absolute_url()}?PROLIFIC_PID=browser-2")
    page.get_by_label("I have read the information above and agree to take part.").check()
    page.get_by_role("button", name="Start").click()
    page.get_by_label("Male", exact=True).check()
    page.get_by_label("Age (years)").fill("41")
    page.get_by_role("group", name="I have technical experience with ML/AI:").get_by_label("Disagree", exact=True).check()
    page.get_by_role("group", name="I have technical experience with XAI (explainable AI):").get_by_label("Disagree", exact=True).check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Begin").click()
    expect(page.get_by_text("Question 1 of 12")).to_be_visible()

    def lose_the_response(route):
        if route.request.resource_type == "fetch":
            route.fetch()  # the server gets the answer and stores it ...
            route.abort("connectionreset")  # ... but its response never arrives
        else:
            route.continue_()

    posts = []
    page.on("request", lambda r: posts.append(r.resource_type) if r.method == "POST" else None)
    page.route("**/q/1/", lose_the_response)
    page.get_by_role("button", name="System B").click()
    expect(page.get_by_text("Question 2 of 12")).to_be_visible()
    assert page.url.endswith("/q/2/") and posts == ["fetch", "document"]
    participant = Participant.objects.get(external_id="browser-2")
    assert participant.answered == 1
    assert list(participant.items.filter(answer__isnull=False).values_list("position", "answer__choice")) == [(1, "B")]


def test_the_last_answer_leads_to_the_completion_redirect_after_it_is_stored(live_server, study: Study, browser_page):
    """The fetched answer's redirect chain ends on another site (blocked for fetch by the page's
    policy); study.js falls back to the plain form, which the server sends on to the completion URL."""
    from playwright.sync_api import expect

    completion = "https://completion.example.org/submissions/complete?cc=ABC123"
    Study.objects.filter(pk=study.pk).update(completion_redirect_url=completion)
    page = browser_page
    page.route("https://completion.example.org/**", lambda route: route.fulfill(body="<h1>Completed</h1>", content_type="text/html"))
    page.goto(f"{live_server.url}{study.get_absolute_url()}?PROLIFIC_PID=browser-3")
    page.get_by_label("I have read the information above and agree to take part.").check()
    page.get_by_role("button", name="Start").click()
    page.get_by_label("Other", exact=True).check()
    page.get_by_label("Age (years)").fill("52")
    page.get_by_role("group", name="I have technical experience with ML/AI:").get_by_label("Undecided").check()
    page.get_by_role("group", name="I have technical experience with XAI (explainable AI):").get_by_label("Undecided").check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Begin").click()
    for position in range(1, 13):
        expect(page.get_by_text(f"Question {position} of 12")).to_be_visible()
        page.wait_for_load_state("domcontentloaded")  # the deferred study.js listens for keys from then on
        page.keyboard.press("a")
    expect(page.get_by_role("heading", name="Completed")).to_be_visible()
    assert page.url == completion
    participant = Participant.objects.get(external_id="browser-3")
    assert participant.answered == 12 and participant.completed_at is not None


def test_a_german_browser_takes_the_study_in_german_and_switches_mid_study(live_server, study: Study, browser_page, tmp_path):
    """A study that follows the browser's language: Chromium asks for German (Accept-Language), every
    page is German; the switch on question 3 shows it in English with the progress kept, switching
    back continues in German; the export records ``de``."""
    from playwright.sync_api import expect

    Study.objects.filter(pk=study.pk).update(allow_browser_language=True)
    page = browser_page
    page.set_extra_http_headers({"Accept-Language": "de-AT,de;q=0.9,en;q=0.5"})
    page.goto(f"{live_server.url}{study.get_absolute_url()}?PROLIFIC_PID=browser-de")
    expect(page.locator("html")).to_have_attribute("lang", "de")
    consent_and_about_you(page, GERMAN, age="38")
    expect(page.get_by_text("Es gibt 12 Fragen.")).to_be_visible()
    page.get_by_role("button", name="Beginnen").click()
    for position in range(1, 13):
        expect(page.get_by_text(f"Frage {position} von 12")).to_be_visible()
        expect(page.locator("text=Welches System verhält sich vernünftiger?")).to_be_visible()
        if position == 3:
            page.get_by_role("navigation", name="Sprache").get_by_role("link", name="English").click()
            expect(page.get_by_text("Question 3 of 12")).to_be_visible()
            expect(page.locator("html")).to_have_attribute("lang", "en")
            assert Participant.objects.get(external_id="browser-de").answered == 2
            page.get_by_role("navigation", name="Language").get_by_role("link", name="Deutsch").click()
            expect(page.get_by_text("Frage 3 von 12")).to_be_visible()
        page.wait_for_load_state("domcontentloaded")
        page.get_by_role("button", name="Gleich vernünftig").click()
    expect(page.get_by_role("heading", name="Vielen Dank!")).to_be_visible()
    expect(page.get_by_text("Alle Ihre Antworten wurden gespeichert. Vielen Dank für Ihre Teilnahme.")).to_be_visible()

    participant = Participant.objects.get(external_id="browser-de")
    assert (participant.answered, participant.language) == (12, "de")
    out = tmp_path / "export"
    call_command("export_responses", "--study", study.slug, "--out", str(out), stdout=io.StringIO())
    with (out / "participants.csv").open(encoding="utf-8") as handle:
        (person,) = list(csv.DictReader(handle))
    assert (person["participant"], person["status"], person["language"]) == (participant.public_id, "completed", "de")
