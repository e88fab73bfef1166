"""Usefulness trial pages in real Chromium: the axe-core audit finds no serious or critical
violation, the radio answers work by keyboard alone, and on a phone the panels to compare sit
side by side inside the first screen."""

from __future__ import annotations

import re
from itertools import pairwise
from pathlib import Path

import pytest
from test_study_accessibility import WIDTHS, audit, enter_demographics
from usefulness_helpers import usefulness_study

from contracts.usefulness import AGREEMENT, DISTINCTION, FORWARD_SIMULATION
from studyapp.models import Participant, TrialAnswer

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
IMAGES_LOADED = (
    "() => [...document.querySelectorAll('.systems img')]"
    ".every(i => i.complete && i.naturalWidth > 0)"
)


@pytest.fixture(autouse=True)
def media(settings, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


def _begin(page, url: str) -> None:
    page.goto(url)
    page.locator("input[name=agree]").check()
    page.locator("form button[type=submit]").click()
    enter_demographics(page)
    page.locator("form button.primary").click()
    page.wait_for_url(re.compile(r"/q/1/$"))
    page.wait_for_function(IMAGES_LOADED)


def _answer_by_keyboard(page) -> None:
    """Tab to the first answer, pick it with Space, Tab to the confidence, pick, Enter on Next."""
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.getAttribute('name')") == "answer":
            break
    else:
        pytest.fail("Tab never reached an answer")
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.getAttribute('name')") == "confidence"
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.getAttribute('name')") == "next"
    page.keyboard.press("Enter")


@pytest.mark.parametrize("task", [DISTINCTION, AGREEMENT, FORWARD_SIMULATION])
def test_trial_pages_pass_the_axe_audit_and_work_by_keyboard(
    live_server, tmp_path, browser_page, task
):
    study = usefulness_study(tmp_path, task, checks=1)
    page = browser_page
    _begin(page, f"{live_server.url}{study.get_absolute_url()}?PROLIFIC_PID=axe-{task}")
    participant = Participant.objects.get(external_id=f"axe-{task}")
    problems, seen = [], set()
    for position in range(1, participant.sequence_length + 1):
        page.wait_for_url(re.compile(rf"/q/{position}/$"))
        page.wait_for_function(IMAGES_LOADED)
        kind = "check" if page.locator(".instruction").count() else "learn"
        kind = (
            kind if kind == "check" or not page.locator("input[name=answer]").count() else "trial"
        )
        if kind not in seen:
            seen.add(kind)
            problems += audit(page, f"{task} {kind}")
        if kind == "learn":
            page.locator("button[name=next]").click()
        else:
            _answer_by_keyboard(page)
    page.wait_for_url(re.compile(r"/thank-you/$"))
    assert seen == (
        {"trial", "check", "learn"} if task == FORWARD_SIMULATION else {"trial", "check"}
    )
    assert not problems, "\n".join(problems)
    stored = TrialAnswer.objects.filter(item__participant=participant).exclude(answer="")
    assert stored.count() == participant.sequence_length - (
        4 if task == FORWARD_SIMULATION else 0
    )  # 4 learning trials
    assert set(stored.values_list("confidence", flat=True)) == {1}  # Space picked the first level


@pytest.mark.parametrize(
    "viewport",
    list(WIDTHS.values())[1:] + [{"width": 360, "height": 740}],
    ids=["390x844", "360x740"],
)
@pytest.mark.parametrize("task", [DISTINCTION, AGREEMENT])
def test_on_a_phone_the_panels_are_side_by_side_without_scrolling(
    live_server, tmp_path, browser_page, viewport, task
):
    study = usefulness_study(tmp_path, task)
    page = browser_page
    page.set_viewport_size(viewport)
    _begin(page, f"{live_server.url}{study.get_absolute_url()}?PROLIFIC_PID=phone-{task}")
    figures = page.locator(".systems figure")
    boxes = [figures.nth(i).bounding_box() for i in range(figures.count())]
    original, panels = boxes[0], boxes[1:]
    assert page.evaluate("() => window.scrollY") == 0 and panels
    for box in boxes:
        assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"]
        assert box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"], (box, viewport)
    if task == DISTINCTION:  # the k panels in one row under the image, all the same size
        assert len({(b["y"], b["width"], b["height"]) for b in panels}) == 1
        assert all(a["x"] + a["width"] <= b["x"] for a, b in pairwise(panels))
        assert original["y"] + original["height"] <= panels[0]["y"]
    else:  # the image and its one explanation side by side
        (panel,) = panels
        assert original["y"] == panel["y"] and original["x"] + original["width"] <= panel["x"]
