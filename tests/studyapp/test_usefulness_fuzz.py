"""Property-based tampering of usefulness trial pages: malformed answers, confidences and stamps,
other participants' tokens, any position and method. Never a 5xx, never a stored answer."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from usefulness_helpers import answer_trial, ready, usefulness_study

from contracts.usefulness import AGREEMENT, DISTINCTION, FORWARD_SIMULATION
from studyapp.models import Participant, TrialAnswer, TrialItem
from studyapp.participation.forms import shown_stamp

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
NASTY = st.one_of(
    st.text(max_size=30),
    st.integers().map(str),
    st.sampled_from(
        ["", "1", "2", "4", "5", "0", "-1", "correct", "incorrect", "circle", "3", "\x00", "9" * 30]
    ),
    st.text(min_size=1, max_size=3).map(lambda t: t * 3000),
)
FIELDS = st.dictionaries(
    st.sampled_from(["answer", "confidence", "client_ms", "next", "extra"]), NASTY, max_size=4
)


def _state() -> tuple:
    answers = TrialAnswer.objects.order_by("pk").values_list(
        "pk", "item_id", "answer", "confidence"
    )
    people = Participant.objects.order_by("pk").values_list("pk", "answered", "completed_at", "arm")
    return tuple(answers), tuple(people), TrialItem.objects.count()


@pytest.mark.parametrize("task", [DISTINCTION, AGREEMENT, FORWARD_SIMULATION])
def test_fuzz_trial_pages(task, tmp_path: Path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    study = usefulness_study(tmp_path, task)
    half = ready(Client(), study)
    answer_trial(Client(), half)
    other = ready(Client(), study)
    current = TrialItem.objects.get(participant=half, position=2)
    stolen = [shown_stamp(i.pk) for i in TrialItem.objects.filter(participant=other)[:3]]
    stolen.append(shown_stamp(TrialItem.objects.get(participant=half, position=1).pk))  # a replay
    tokens = [half.token, other.token, half.token[:-1] + "x", "nobody"]
    before = _state()

    @FUZZ
    @given(
        method=st.sampled_from(["GET", "POST", "PUT", "HEAD"]),
        token=st.sampled_from(tokens),
        position=st.one_of(st.integers(0, 20), st.integers(21, 10**12)),
        data=FIELDS,
        stamp=st.one_of(st.none(), st.sampled_from(stolen), NASTY),
    )
    def case(method, token, position, data, stamp):
        data = data | ({"shown": stamp} if stamp is not None else {})
        url = f"/p/{token}/q/{position}/"
        client = Client()
        if method == "GET":
            response = client.get(url)
        elif method == "HEAD":
            response = client.head(url)
        elif method == "POST":
            response = client.post(url, data)
        else:
            response = client.generic(method, url, "x=1")
        assert response.status_code < 500
        if 300 <= response.status_code < 400:
            assert response["Location"].startswith("/")
        assert data.get("shown") != shown_stamp(current.pk)
        assert _state() == before

    case()
