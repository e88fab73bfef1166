"""Simulated participants in usefulness studies: import → bots over real HTTP → export, with a known
policy (answers as the model did with probability p per method) visible in trials.csv."""

from __future__ import annotations

import csv
import io
import random
from collections import defaultdict
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from usefulness_helpers import usefulness_study

from contracts.usefulness import AGREEMENT, DISTINCTION, FORWARD_SIMULATION
from studyapp.models import Participant, TrialAnswer
from studyapp.simulated.participants import instructed_choice, random_answer
from studyapp.simulated.policies import MatchModel, parse_trial_policy

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def media(settings, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


def _trials(study_slug: str, out: Path) -> list[dict[str, str]]:
    call_command("export_responses", "--study", study_slug, "--out", str(out), stdout=io.StringIO())
    with (out / "trials.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("task", [DISTINCTION, AGREEMENT, FORWARD_SIMULATION])
def test_bots_answer_usefulness_trials_as_their_policy_says(task, live_server, tmp_path, capsys):
    study = usefulness_study(tmp_path, task, checks=1)
    call_command(
        "simulate_participants",
        "--study",
        study.slug,
        "--n",
        "3",
        "--url",
        live_server.url,
        "--policy",
        "match:0,bla_t=1",
        "--concurrency",
        "3",
    )
    out = capsys.readouterr().out
    assert (
        "3 of 3 simulated participants completed" in out and "3 of 3 attention checks passed" in out
    )
    people = Participant.objects.filter(study=study)
    assert people.count() == 3 and all(p.simulated and p.completed_at for p in people)
    assert TrialAnswer.objects.count() == sum(p.sequence_length for p in people)
    rows = _trials(study.slug, tmp_path / "export")
    assert len(rows) == sum(p.sequence_length for p in people)  # every trial and the check
    checks = [row for row in rows if row["expected_answer"]]
    assert len(checks) == 3 and all(row["answer"] == row["expected_answer"] for row in checks)
    scored = defaultdict(set)
    for row in rows:
        if row["expected_answer"]:
            continue
        if row["phase"] == "learn":
            assert (row["answer"], row["matches_model"], row["confidence"]) == ("", "", "")
            continue
        assert row["confidence"] in {"1", "2", "3", "4"}
        key = row["arm"] if row["phase"] == "post" else row["method"]
        scored[key or "pre"].add(row["matches_model"])
    if task == FORWARD_SIMULATION:
        assert scored["pre"] == {"false"}  # the default p = 0 holds for the pre-test
        assert all(
            scored[arm] == ({"true"} if arm == "bla_t" else {"false"})
            for arm in scored
            if arm != "pre"
        )
    else:
        assert scored == {"bla_t": {"true"}, "cam": {"false"}}


def test_an_inattentive_bot_fails_the_trial_attention_check(live_server, tmp_path):
    from studyapp.simulated.participants import run_participants, simulation_marker

    study = usefulness_study(tmp_path, AGREEMENT, checks=2)
    reports, totals = run_participants(
        live_server.url + study.get_absolute_url(),
        2,
        marker=simulation_marker(study.slug),
        seed=3,
        inattentive_share=0.5,
    )
    # The inattentive bot fails both checks, more than the default rule allows: screened out at the second.
    assert totals.completed == 1 and totals.screened_out == 1 and totals.attention_checks == 4
    assert totals.attention_checks_passed == 2
    assert {r.attentive for r in reports} == {True, False}


def test_the_instruction_of_a_trial_check_is_read_from_its_radio_labels():
    html = (
        '<p class="prompt instruction">To show that you are reading, choose '
        "<strong>The model is wrong</strong> for this question.</p><form><fieldset><div><div>"
        '<label><input type="radio" name="answer" value="correct"> The model is right</label></div>'
        '<div><label><input type="radio" name="answer" value="incorrect"> The model is wrong'
        "</label></div></div></fieldset></form>"
    )
    assert instructed_choice(html) == "incorrect"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("match", "unknown policy"),
        ("match:1.5", "between 0 and 1"),
        ("match:0.5,cam=x", "between 0 and 1"),
        ("prefer:bla_t:1", "unknown policy"),
    ],
)
def test_a_bad_trial_policy_is_one_clear_error(text, message, tmp_path):
    with pytest.raises(ValidationError, match=message):
        parse_trial_policy(text)
    study = usefulness_study(tmp_path, DISTINCTION)
    with pytest.raises(CommandError, match=f"--policy: .*{message}"):
        call_command("simulate_participants", "--study", study.slug, "--policy", text)
    assert not Participant.objects.exists()


def test_trial_policies_parse_to_their_probabilities():
    assert parse_trial_policy("random") is random_answer
    policy = parse_trial_policy("match:0.5, bla_t=0.9,cam=0.6")
    assert policy == MatchModel(0.5, (("bla_t", 0.9), ("cam", 0.6)))
    assert (policy.probability("bla_t"), policy.probability("none")) == (0.9, 0.5)
    assert random_answer("t", 1, ["a", "b"], random.Random(0)) in {"a", "b"}
