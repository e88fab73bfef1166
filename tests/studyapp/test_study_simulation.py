"""Simulated participants over real HTTP (live server): forms, cookies, CSRF; nothing lost, bots marked.

The app's bot (studyapp.simulated.participants) and the benches' timed bot on a kept-alive connection (bench/http_client.py).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from studyapp.models import Answer, Participant, Study
from studyapp.simulated.participants import (
    SimulatedParticipant,
    instructed_choice,
    parse_page,
    run_participants,
    simulation_marker,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from http_client import TimedParticipant, run_timed_participants  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)


def _stored_answers() -> set[tuple[str, int, str]]:
    return set(Answer.objects.values_list("item__participant__token", "item__position", "choice"))


@pytest.mark.parametrize("inline", [True, False], ids=["like-study-js", "plain-forms"])
def test_bots_take_the_study_and_every_acknowledged_answer_is_stored(live_server, study: Study, inline: bool):
    url = live_server.url + study.get_absolute_url()
    reports, summary = run_participants(url, 4, concurrency=4, seed=3, marker=simulation_marker(study.slug), inline=inline)
    assert [r.errors for r in reports] == [[]] * 4
    assert summary.completed == 4 and summary.answers == 48 and summary.server_errors == 0
    assert _stored_answers() == {(r.token, pos, c) for r in reports for pos, c in r.acknowledged}
    assert Participant.objects.filter(simulated=True, completed_at__isnull=False).count() == 4
    assert sorted(Participant.objects.values_list("external_id", flat=True)) == sorted(r.external_id for r in reports)


@pytest.mark.parametrize("inline", [True, False], ids=["like-study-js", "plain-forms"])
def test_timed_bots_time_every_request_and_answer(live_server, study: Study, inline: bool):
    url = live_server.url + study.get_absolute_url()
    reports, summary = run_timed_participants(url, 3, seed=3, marker=simulation_marker(study.slug), inline=inline)
    assert [r.errors for r in reports] == [[]] * 3 and summary.answers == 36
    # Study page, consent, demographics (get, post), instructions (get, post), first question: 7 requests.
    # Then study.js's way takes one request per answer (and the thank-you page after the last one),
    # plain forms two (the POST, then the page it redirects to, the last time the thank-you page).
    assert all(len(r.answer_latencies_ms) == len(r.acknowledged_at) == 12 for r in reports)
    assert summary.requests == 3 * (7 + (12 + 1 if inline else 12 * 2))
    assert 0 < summary.answer_p50_ms <= summary.answer_p95_ms
    assert _stored_answers() == {(r.token, pos, c) for r in reports for pos, c in r.acknowledged}


def test_a_bot_without_marker_is_not_simulated_and_a_forged_marker_is_refused(live_server, study: Study):
    url = live_server.url + study.get_absolute_url()
    report = SimulatedParticipant(url, seed=1).run()
    assert report.completed and not Participant.objects.get(token=report.token).simulated
    forged = SimulatedParticipant(url, seed=2, marker="forged").run()
    assert not forged.completed and forged.errors == ["POST /s/pilot/ answered 400"]


@pytest.mark.parametrize("bot_class", [SimulatedParticipant, TimedParticipant])
def test_a_bot_resumes_after_the_server_lost_a_response(live_server, study: Study, monkeypatch, bot_class):
    url = live_server.url + study.get_absolute_url()
    bot = bot_class(url, seed=5)
    real = bot.session.request
    dropped = []

    def flaky(method, target, **kwargs):
        response = real(method, target, **kwargs)
        if method == "POST" and "/q/3/" in target and not dropped:
            dropped.append(target)  # the answer was stored, but the bot never hears back
            raise ConnectionResetError("connection reset")
        return response

    monkeypatch.setattr(bot.session, "request", flaky)
    report = bot.run()
    assert report.completed and report.connection_errors == 1
    assert len(report.acknowledged) == 11  # the lost acknowledgement is not claimed
    assert Answer.objects.filter(item__participant__token=report.token).count() == 12


def test_page_parser_reads_forms():
    forms, images = parse_page(
        '<img src="/img/x.png"><form action="/go"><input type="hidden" name="h" value="1">'
        '<input type="radio" name="r" value="a"><input type="radio" name="r" value="b">'
        '<input type="number" name="n" min="16" max="110"><input type="checkbox" name="c">'
        '<button name="choice" value="A">A</button></form>'
    )
    (form,) = forms
    assert (form.action, form.fields, form.radios, form.numbers, form.checkboxes, form.buttons, images) == (
        "/go", {"h": "1"}, {"r": ["a", "b"]}, {"n": (16, 110)}, ["c"], [("choice", "A")], ["/img/x.png"])


def test_page_parser_reads_unquoted_attributes_entities_and_labels_before_the_key_hint():
    html = ("<p>To show you read, choose <strong>Equally &amp; fairly</strong> for this question.</p>"
            "<form action='/go?a=1&amp;b=2'><input name=h value=x>"
            '<button name="choice" value="A">System A <kbd>A</kbd></button>'
            '<button name="choice" value="equal">Equally &amp; fairly <kbd>E</kbd></button></form>')
    (form,), _ = parse_page(html)
    assert (form.action, form.fields, form.buttons) == ("/go?a=1&b=2", {"h": "x"}, [("choice", "A"), ("choice", "equal")])
    assert instructed_choice(html) == "equal"
