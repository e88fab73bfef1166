"""Property-based tampering of every participant endpoint: malformed, oversized, out-of-range and
forged input, wrong methods, other participants' tokens and items, replays. Each request gets a 4xx
or a redirect within the site — never a 5xx — and the database does not change."""
from __future__ import annotations

from collections import Counter
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from study_helpers import answer_current, start, take_study

from studyapp.models import Answer, EnrolmentThrottle, Participant, SequenceItem, Study
from studyapp.participation.forms import shown_stamp

pytestmark = pytest.mark.django_db

FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
METHODS = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
NASTY = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=20).map(lambda t: t + "\x00"),
    st.integers().map(str),
    st.sampled_from(["", " ", "A", "B", "equal", "E", "a", "null", "[]", "-1", "99999999999999999999", "<script>",
                     "' OR 1=1 --", "%00", "../../etc/passwd"]),
    st.text(min_size=1, max_size=3).map(lambda t: t * 3000),  # oversized
)  # fmt: skip
FIELDS = st.dictionaries(st.sampled_from(["choice", "shown", "client_ms", "agree", "external_id", "sim", "gender",
                                          "age", "ml_experience", "xai_experience", "extra"]), NASTY, max_size=6)


def _state() -> tuple:
    """Everything a participant request could change."""
    people = Participant.objects.order_by("pk").values_list(
        "pk", "answered", "demographics_at", "instructions_at", "completed_at", "gender", "age", "ml_experience",
        "xai_experience", "excluded", "external_id",
    )  # fmt: skip
    answers = Answer.objects.order_by("pk").values_list("pk", "item_id", "choice", "response_ms")
    return tuple(people), tuple(answers), SequenceItem.objects.count(), Study.objects.count(), \
        EnrolmentThrottle.objects.count()


def _send(client: Client, method: str, url: str, data: dict[str, str]):
    """One request as a browser or script would send it (query and form data URL-encoded)."""
    if method in ("GET", "HEAD"):
        return getattr(client, method.lower())(url, {k: v[:500] for k, v in data.items()})
    if method == "POST":
        return client.post(url, data)
    return client.generic(method, url, "x=1")


def _assert_safe(response, before: tuple) -> None:
    assert response.status_code < 500
    if 300 <= response.status_code < 400:
        assert response["Location"].startswith("/"), response["Location"]
    assert _state() == before


@pytest.fixture
def cast(study: Study):
    """Participants at every stage: fresh (demographics due), at instructions, half-way, finished."""
    fresh = start(Client(), study, "?PROLIFIC_PID=fresh")
    reader = start(Client(), study, "?PROLIFIC_PID=reader")
    Participant.objects.filter(pk=reader.pk).update(demographics_at=reader.started_at, gender="other", age=40)
    half = start(Client(), study, "?PROLIFIC_PID=half")
    Participant.objects.filter(pk=half.pk).update(demographics_at=half.started_at, instructions_at=half.started_at)
    for choice in "AB":
        answer_current(Client(), half, choice)
    done = take_study(Client(), study, query="?PROLIFIC_PID=done")
    return {p.external_id: Participant.objects.get(pk=p.pk) for p in (fresh, reader, half, done)}


def _token(cast: dict[str, Participant]) -> st.SearchStrategy[str]:
    real = [p.token for p in cast.values()]
    return st.one_of(
        st.sampled_from(real),
        st.sampled_from(real).map(lambda t: t[:-1] + ("A" if t[-1] != "A" else "B")),  # one character off
        st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=80),
        st.text(min_size=1, max_size=30).filter(lambda t: "/" not in t),
    )


def test_fuzz_study_page(study, cast, fuzz_tally: Counter):
    before = _state()

    @FUZZ
    @given(method=METHODS, data=FIELDS, agree=st.sampled_from([None, "", "false"]), pid=st.one_of(st.none(), NASTY))
    def case(method, data, agree, pid):
        data = {k: v for k, v in data.items() if k != "agree"} | ({"agree": agree} if agree is not None else {})
        if "agree" not in data and data.get("sim") and method == "POST":
            data["agree"] = "on"  # consent given, but with a forged simulation marker
        url = study.get_absolute_url()
        if pid is not None and method in ("GET", "HEAD"):
            data = {**data, "PROLIFIC_PID": pid}
        elif pid is not None:
            url += "?" + urlencode({"PROLIFIC_PID": pid[:500]})
        _assert_safe(_send(Client(), method, url, data), before)
        fuzz_tally["study page"] += 1

    case()


@pytest.mark.parametrize("endpoint", ["resume", "demographics", "instructions", "done"])
def test_fuzz_token_pages(endpoint, study, cast, fuzz_tally: Counter):
    before = _state()
    writes = {"demographics": "fresh", "instructions": "reader"}  # a well-formed POST there is a real step

    @FUZZ
    @given(method=METHODS, token=_token(cast), data=FIELDS)
    def case(method, token, data):
        if endpoint in writes and token == cast[writes[endpoint]].token and method == "POST":
            if endpoint == "instructions":
                method = "PUT"
            else:
                data = {**data, "age": "-5"}  # always out of range
        _assert_safe(_send(Client(), method, f"/p/{token}/" + {"resume": "", "demographics": "about-you/",
                     "instructions": "instructions/", "done": "thank-you/"}[endpoint], data), before)  # fmt: skip
        fuzz_tally[endpoint] += 1

    case()


def test_fuzz_question(study, cast, fuzz_tally: Counter):
    before = _state()
    half, done = cast["half"], cast["done"]
    items = {p: list(SequenceItem.objects.filter(participant=p).order_by("position")) for p in (half, done)}
    current = items[half][half.answered]
    # Stamps a forger could get hold of: other participants' items, the half-way one's answered items (replays).
    stolen = [shown_stamp(i.pk) for i in items[done][:4]] + [shown_stamp(i.pk) for i in items[half][: half.answered]]

    @FUZZ
    @given(
        method=METHODS, token=_token(cast), position=st.one_of(st.integers(0, 40), st.integers(41, 10**12)),
        data=FIELDS, stamp=st.one_of(st.none(), st.sampled_from(stolen), NASTY),
    )  # fmt: skip
    def case(method, token, position, data, stamp):
        data = {k: v for k, v in data.items() if k != "shown"} | ({"shown": stamp} if stamp is not None else {})
        response = _send(Client(), method, f"/p/{token}/q/{position}/", data)
        _assert_safe(response, before)
        assert data.get("shown") != shown_stamp(current.pk)  # never the one valid stamp
        fuzz_tally["question"] += 1

    case()


def test_fuzz_replayed_answers_change_nothing(study, cast, fuzz_tally: Counter):
    half = cast["half"]
    client = Client()
    page = client.get(reverse("studyapp:question", args=[half.token, 3]))
    assert page.status_code == 200
    before = _state()
    answered = list(SequenceItem.objects.filter(participant=half, position__lte=2).order_by("position"))

    @FUZZ
    @given(which=st.sampled_from(answered), choice=st.sampled_from(["A", "B", "equal"]), ms=st.integers(0, 10**7))
    def case(which, choice, ms):
        url = reverse("studyapp:question", args=[half.token, which.position])
        response = client.post(url, {"choice": choice, "shown": shown_stamp(which.pk), "client_ms": str(ms)})
        assert response.status_code == 302 and response["Location"] == reverse("studyapp:question", args=[half.token, 3])
        _assert_safe(response, before)
        fuzz_tally["replay"] += 1

    case()


def test_fuzz_image(study, cast, fuzz_tally: Counter):
    before = _state()

    @FUZZ
    @given(method=METHODS, name=st.one_of(st.text(min_size=1, max_size=80).filter(lambda t: "/" not in t),
                                         st.from_regex(r"[A-Za-z0-9_-]{16,64}\.(png|jpg)", fullmatch=True)))  # fmt: skip
    def case(method, name):
        response = _send(Client(), method, f"/img/{name}", {})
        assert response.status_code in (404, 405) or method == "HEAD"
        _assert_safe(response, before)
        fuzz_tally["image"] += 1

    case()
