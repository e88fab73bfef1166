"""``manage.py simulate_participants``: bots over real HTTP with a choice policy, marked simulated."""
from __future__ import annotations

import socket
import time

import pytest
from django.core.management import CommandError, call_command

from studyapp.models import Answer, Participant, Study

pytestmark = pytest.mark.django_db(transaction=True)


def test_prefer_bla_t_policy_answers_through_the_live_server(live_server, study: Study, capsys):
    call_command("simulate_participants", "--study", study.slug, "--n", "3", "--url", live_server.url,
                 "--policy", "prefer:bla_t:1.0", "--concurrency", "3")
    assert "3 of 3 simulated participants completed" in capsys.readouterr().out
    participants = Participant.objects.filter(study=study)
    assert participants.count() == 3 and all(p.simulated and p.completed_at for p in participants)
    answers = Answer.objects.select_related("item__stimulus_a", "item__stimulus_b").filter(item__participant__study=study)
    assert answers.count() == 3 * participants[0].sequence_length
    chosen = {(a.item.stimulus_a if a.choice == "A" else a.item.stimulus_b).method for a in answers}
    assert chosen == {"bla_t"}  # every pair has a BLA-T side and p = 1


@pytest.mark.parametrize(
    "policy, message",
    [("sometimes", "unknown policy 'sometimes'"), ("prefer:bla_t:1.5", "between 0 and 1")],
)
def test_bad_policy_is_one_clear_error_and_nobody_is_created(study: Study, policy, message):
    with pytest.raises(CommandError, match=message):
        call_command("simulate_participants", "--study", study.slug, "--n", "1", "--policy", policy)
    assert not Participant.objects.exists()


def test_nothing_listening_at_the_url_is_one_clear_error_within_seconds(study: Study):
    with socket.socket() as sock:  # a port nobody listens on: bound, never listened, then closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(CommandError, match=rf"^Nothing answers at --url http://127.0.0.1:{port} \(.+\): start the study server"):
        call_command("simulate_participants", "--study", study.slug, "--n", "2", "--url", f"http://127.0.0.1:{port}")
    assert time.monotonic() - start < 10
    assert not Participant.objects.exists()


def test_an_url_without_a_host_is_refused(study: Study):
    with pytest.raises(CommandError, match="is not an http:// or https:// address with a host"):
        call_command("simulate_participants", "--study", study.slug, "--url", "127.0.0.1:8000")
