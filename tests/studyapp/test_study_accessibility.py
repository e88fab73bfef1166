"""Accessibility of the participant pages in real Chromium: an axe-core audit (axe-playwright-python)
of every page (consent, about you and its errors, instructions, a question, an attention check,
thank-you, unavailable) at desktop and phone widths, in English and German, finds no serious or
critical violation; the answer buttons work by keyboard and carry clean accessible names; image
alt texts name no method.

With ``STUDY_SCREENSHOTS=<folder>`` the audit also saves the question page at both widths there.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from studyapp.models import Participant, Study
from studyapp.participation.blinding import find_leaks, forbidden_terms

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WIDTHS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
BLOCKING = {"serious", "critical"}


def audit(page, name: str, screenshot: Path | None = None) -> list[str]:
    """The serious and critical axe-core violations of the page at both widths, one line each
    (with ``screenshot``, the page at each width is also saved as ``<screenshot>-<width>.png``)."""
    from axe_playwright_python.sync_playwright import Axe

    problems = []
    for width, viewport in WIDTHS.items():
        page.set_viewport_size(viewport)
        if screenshot is not None:
            page.screenshot(path=f"{screenshot}-{width}.png", full_page=True)
        for violation in Axe().run(page).response["violations"]:
            if violation["impact"] in BLOCKING:
                nodes = "; ".join(node["html"][:160] for node in violation["nodes"][:3])
                problems.append(f"{name} ({width}): {violation['id']} [{violation['impact']}] {violation['help']}: {nodes}")
    page.set_viewport_size(WIDTHS["phone"])
    return problems


def enter_demographics(page) -> None:
    page.locator("input[name=gender]").first.check()
    page.locator("input[name=age]").fill("33")
    page.locator("input[name=ml_experience]").nth(2).check()
    page.locator("input[name=xai_experience]").nth(1).check()
    page.locator("form button[type=submit]").click()


@pytest.mark.parametrize(("language", "switch"), [("en", True), ("de", False)])
def test_every_participant_page_passes_the_axe_audit(live_server, checked_study: Study, browser_page, language, switch):
    from playwright.sync_api import expect

    study = checked_study
    Study.objects.filter(pk=study.pk).update(language=language, allow_browser_language=switch)
    page = browser_page
    shots = Path(os.environ["STUDY_SCREENSHOTS"]) if os.environ.get("STUDY_SCREENSHOTS") else None
    if shots is not None:
        shots.mkdir(parents=True, exist_ok=True)
    problems = []
    page.goto(f"{live_server.url}{study.get_absolute_url()}?PROLIFIC_PID=axe-{language}")
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.locator("nav.languages")).to_have_count(1 if switch else 0)
    problems += audit(page, "consent")
    page.locator("input[name=agree]").check()
    page.locator("form button[type=submit]").click()

    expect(page.locator("input[name=age]")).to_be_visible()
    problems += audit(page, "about-you")
    page.locator("form button[type=submit]").click()  # nothing filled in: the page with its errors
    expect(page.locator(".errors").first).to_be_visible()
    problems += audit(page, "about-you-errors")
    enter_demographics(page)

    expect(page.locator("form button.primary")).to_be_visible()
    problems += audit(page, "instructions")
    page.locator("form button.primary").click()

    participant = Participant.objects.get(external_id=f"axe-{language}")
    seen = set()
    for position in range(1, participant.sequence_length + 1):
        expect(page).to_have_url(re.compile(rf"/q/{position}/$"))
        page.wait_for_function("() => [...document.querySelectorAll('.systems img')].every(i => i.complete && i.naturalWidth > 0)")
        kind = "attention-check" if page.locator(".instruction").count() else "question"
        if kind not in seen:
            seen.add(kind)
            shot = shots / f"question-{language}" if shots is not None and kind == "question" else None
            problems += audit(page, kind, shot)
        page.wait_for_load_state("domcontentloaded")
        page.locator("button[name=choice][value=equal]").click()
    assert seen == {"question", "attention-check"}

    expect(page.locator("[data-completion-code]")).to_have_text(study.completion_code)
    problems += audit(page, "thank-you")
    Study.objects.filter(pk=study.pk).update(status=Study.Status.CLOSED)
    page.context.clear_cookies()
    page.goto(f"{live_server.url}{study.get_absolute_url()}")
    expect(page.locator("h1")).to_have_text(study.title)
    problems += audit(page, "unavailable")
    assert not problems, "\n".join(problems)


def test_the_answer_buttons_work_by_keyboard_and_name_only_their_answer(live_server, study: Study, browser_page):
    """Screen readers hear "System A", "System B", "Equally reasonable" in the group of the question
    (key hints are aria-hidden, the keys are aria-keyshortcuts); Tab and Enter answer; alt texts are
    present and name no method."""
    from playwright.sync_api import expect

    page = browser_page
    page.goto(f"{live_server.url}{study.get_absolute_url()}?PROLIFIC_PID=keyboard-1")
    page.locator("input[name=agree]").check()
    page.locator("form button[type=submit]").click()
    enter_demographics(page)
    page.locator("form button.primary").click()
    expect(page).to_have_url(re.compile(r"/q/1/$"))

    group = page.get_by_role("group", name="Which system behaves more reasonably?")
    for name, key in (("System A", "A"), ("System B", "B"), ("Equally reasonable", "E")):
        button = group.get_by_role("button", name=name, exact=True)
        expect(button).to_have_count(1)
        expect(button).to_have_attribute("aria-keyshortcuts", key)
    terms = forbidden_terms(study)
    alts = page.locator(".systems img").evaluate_all("images => images.map(i => i.getAttribute('alt'))")
    assert len(alts) == 3 and all(alt and alt.strip() for alt in alts)
    assert [find_leaks(alt, terms) for alt in alts] == [[], [], []]

    page.wait_for_load_state("domcontentloaded")
    for _ in range(40):  # Tab through the page until the first answer button has the focus
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.getAttribute('value')") == "A":
            break
    else:
        pytest.fail("Tab never reached the System A button")
    page.keyboard.press("Tab")  # on to System B
    assert page.evaluate("() => document.activeElement.getAttribute('value')") == "B"
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/q/2/$"))
    participant = Participant.objects.get(external_id="keyboard-1")
    assert list(participant.items.filter(answer__isnull=False).values_list("position", "answer__choice")) == [(1, "B")]


@pytest.mark.parametrize("viewport", [{"width": 390, "height": 844}, {"width": 360, "height": 740}],
                         ids=["390x844", "360x740"])
def test_on_a_phone_the_two_explanations_are_side_by_side_without_scrolling(
        live_server, study: Study, browser_page, viewport):
    """A participant compares System A with System B: on a phone both panels sit in one row, at the same
    height and size, wholly inside the first screen of the question page; the image above them too."""
    from playwright.sync_api import expect

    page = browser_page
    page.set_viewport_size(viewport)
    page.goto(f"{live_server.url}{study.get_absolute_url()}?PROLIFIC_PID=phone-{viewport['width']}")
    page.locator("input[name=agree]").check()
    page.locator("form button[type=submit]").click()
    enter_demographics(page)
    page.locator("form button.primary").click()
    expect(page).to_have_url(re.compile(r"/q/1/$"))
    page.wait_for_function("() => [...document.querySelectorAll('.systems img')].every(i => i.complete && i.naturalWidth > 0)")

    original, a, b = (page.locator(".systems figure").nth(i).bounding_box() for i in range(3))
    assert page.evaluate("() => window.scrollY") == 0
    assert a["y"] == b["y"] and a["width"] == b["width"] and a["height"] == b["height"]
    assert a["x"] + a["width"] <= b["x"]  # A left of B, not overlapping
    for box in (original, a, b):
        assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"]
        assert box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"], (box, viewport)
    assert original["y"] + original["height"] <= a["y"]
