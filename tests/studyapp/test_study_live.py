"""The dashboard's live picture: the analysis's preference shares and clustered intervals, drawn as inline SVG."""
from __future__ import annotations

import re

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from study_helpers import researcher_client, take_study

from analysis.io import load_export
from analysis.selection import select
from analysis.statistics import ALL_DATASETS, preference_table
from studyapp.console.live_chart import WIDTH, comparison_bars
from studyapp.models import Participant, Study
from studyapp.operations.export import write_export

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_cache():
    """Test databases reuse primary keys, so a cached picture of an earlier test could match."""
    cache.clear()


def comparisons(page: str) -> dict[str, str]:
    return dict(re.findall(r'<div class="comparison" data-comparison="([^"]+)">(.*?)</div>', page, re.S))


def test_the_live_picture_draws_the_analysis_shares_per_comparison(study, tmp_path):
    for choices in ("AAB", "BE", "A"):
        take_study(Client(), study, choices=choices)
    ada = researcher_client("ada", study)
    response = ada.get(reverse("studyapp:dashboard", args=[study.slug]))
    page = response.content.decode()
    assert "script-src 'self'" in response["Content-Security-Policy"] and "<script" not in page
    drawn = comparisons(page)
    write_export(study, tmp_path / "export")
    export = load_export(tmp_path / "export" / "answers.csv", tmp_path / "export" / "participants.csv")
    table = preference_table(select(export, include_incomplete=True).answers, n_boot=100)
    pooled = table[table["dataset"] == ALL_DATASETS]
    assert len(drawn) == len(pooled) == 3
    for row, (title, svg) in zip(pooled.itertuples(), drawn.items(), strict=True):
        assert f"{row.n_answers} answers, {row.n_participants} participants" in svg
        widths = [float(w) for w in re.findall(r'<rect class="\w+" x="[^"]+" y="0" width="([^"]+)"', svg)]
        assert widths[0] == pytest.approx(WIDTH * row.bla_t / row.n_answers, abs=0.1)
        assert sum(widths) == pytest.approx(WIDTH, abs=0.3)
        # Issue 26: the interval is the clustered sandwich interval of database sums (tested against
        # a hand computation in test_live_chart_aggregates), no longer the report's bootstrap.
        bar = next(b for b in comparison_bars(study) if b.title == title)
        low, high = (float(x) for x in re.search(r'<line class="ci" x1="([^"]+)" x2="([^"]+)" y1="9"', svg).groups())
        assert low == pytest.approx(WIDTH * bar.ci_low / 100, abs=0.1)
        assert high == pytest.approx(WIDTH * bar.ci_high / 100, abs=0.1)
        assert bar.ci_low <= 100 * row.bla_t / row.n_answers <= bar.ci_high
        assert title.startswith("BLA-T vs ")


def test_progress_counts_completed_participants_against_the_target(study):
    Study.objects.filter(pk=study.pk).update(target_participants=4)
    take_study(Client(), study)
    page = researcher_client("ada", study).get(reverse("studyapp:dashboard", args=[study.slug])).content.decode()
    progress = re.search(r'<svg[^>]*aria-label="([^"]*)" data-progress>(.*?)</svg>', page, re.S)
    assert progress.group(1) == "1 participants completed, target 4" and "Completed 1 (target 4, 25 %)" in page
    progress = progress.group(2)
    assert f'class="done" x="0" y="0" width="{WIDTH / 4:.1f}"' in progress


def test_bots_are_drawn_only_when_asked_for(study):
    take_study(Client(), study)
    Participant.objects.filter(study=study).update(simulated=True)
    ada = researcher_client("ada", study)
    url = reverse("studyapp:dashboard", args=[study.slug])
    assert "No answers to draw yet." in ada.get(url).content.decode()
    assert len(comparisons(ada.get(url + "?simulated=1").content.decode())) == 3


def test_an_empty_study_has_nothing_to_draw_and_a_report_message_without_flags(study):
    ada = researcher_client("ada", study)
    assert "No answers to draw yet." in ada.get(reverse("studyapp:dashboard", args=[study.slug])).content.decode()
    take_study(Client(), study)
    Participant.objects.filter(study=study).update(simulated=True)
    page = ada.post(reverse("studyapp:report", args=[study.slug]), follow=True).content.decode()
    message = re.search(r'<ul class="messages"><li>(.*?)</li>', page, re.S).group(1)
    assert message.startswith("No report: no answers are counted yet (1 ")
    assert "count simulated participants" in message
    assert "--" not in message and "/tmp" not in message and "bla-report-" not in message
    report = ada.post(reverse("studyapp:report", args=[study.slug]), {"include_simulated": "1"})
    assert report.status_code == 200 and report["Content-Type"].startswith("text/html")


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_the_live_picture_and_preview_in_chromium(live_server, study, browser_page):
    """The SVG draws under the strict CSP at phone width; the preview link leads to the bannered consent page."""
    from playwright.sync_api import expect

    cache.clear()
    for choices in ("AB", "E"):
        take_study(Client(), study, choices=choices)
    ada = researcher_client("ada", study)
    page = browser_page
    page.context.add_cookies([{"name": "sessionid", "value": ada.cookies["sessionid"].value, "url": live_server.url}])
    violations = []
    page.on("console", lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None)
    page.goto(f"{live_server.url}{reverse('studyapp:dashboard', args=[study.slug])}?refresh=0")
    chart = page.locator("[data-live-chart]")
    expect(chart).to_be_visible()
    assert chart.bounding_box()["width"] <= 390
    expect(chart.locator("[data-comparison]")).to_have_count(3)
    first = chart.locator("rect.first").first
    assert page.evaluate("e => getComputedStyle(e).fill", first.element_handle()) == "rgb(31, 111, 180)"  # dashboard.css applies
    page.get_by_role("link", name="Preview as participant").click()
    expect(page.locator("[data-preview]")).to_be_visible()
    page.get_by_label("I have read the information above and agree to take part.").check()
    page.get_by_role("button", name="Start").click()
    expect(page.get_by_role("heading", name="About you")).to_be_visible()
    expect(page.locator("[data-preview]")).to_be_visible()
    assert violations == []
