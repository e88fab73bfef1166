"""Simulated participants that take a study over real HTTP, as a browser would: forms, cookies, CSRF.

Used by ``simulate_participants``; the load and crash benches time the same bot (bench/http_client.py).
A bot reads the pages it gets (the standard library's HTML parser), fills in the forms it finds and
follows the server's redirects; it never touches the database. Connection failures and 5xx answers are
retried by asking the server where to resume, so a bot survives a server restart; only answers the
server acknowledged (a redirect after the POST, or the next question page in its response) are
reported as acknowledged (a usefulness trial's answer, or "" for a learning trial's Next). Bots answer
as study.js does (``inline``: the next page comes back in the
answer's response) or, with ``inline=False``, as a browser without JavaScript. An attentive bot reads
an attention check's instruction and gives the instructed answer; an inattentive one
(``attentive=False``) never does.
"""
from __future__ import annotations

import http.client
import random
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.cookiejar import CookieJar
from typing import Any, Protocol
from urllib.parse import urlencode, urljoin, urlsplit

from contracts.vocabulary import CHOICES
from studyapp.participation.protocol import INLINE, NEXT_HEADER, PAGE_HEADER

Chooser = Callable[[str, int, random.Random], str]
"""Picks ``A``, ``B`` or ``equal`` for (participant token, position, the bot's generator)."""


TrialChooser = Callable[[str, int, list[str], random.Random], str]
"""Picks a usefulness trial's answer among the page's answer values for (token, position, values, generator)."""
CONFIDENCE = "confidence"


def random_choice(token: str, position: int, rng: random.Random) -> str:
    """The default policy: each answer uniformly at random."""
    return rng.choice(CHOICES)


def random_answer(token: str, position: int, answers: list[str], rng: random.Random) -> str:
    """The default policy of usefulness trials: each answer uniformly at random."""
    return rng.choice(answers)


@dataclass
class Form:
    """A form of a page: where it posts, its prefilled fields, radio groups, and submit buttons."""

    action: str
    fields: dict[str, str] = field(default_factory=dict)
    radios: dict[str, list[str]] = field(default_factory=dict)
    numbers: dict[str, tuple[int, int]] = field(default_factory=dict)
    checkboxes: list[str] = field(default_factory=list)
    buttons: list[tuple[str, str]] = field(default_factory=list)
    images: list[str] = field(default_factory=list)


INSTRUCTION_BEFORE, INSTRUCTION_AFTER = "choose", "for this question"


class PageParser(HTMLParser):
    """Reads a page as a browser would (standard-library HTML parser): forms, images, the answer buttons'
    labels, and an attention check's instructed label ("choose <strong>X</strong> for this question")."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.images: list[str] = []
        self.choice_buttons: list[tuple[str, str]] = []  # (value, label) of each name="choice" button
        self.answer_labels: list[tuple[str, str]] = []  # (value, label) of each name="answer" radio button
        self._label: list[str] | None = None  # text of the open <label> around an answer radio button
        self.instructed_label: str | None = None
        self._button: list[str] | None = None  # label text of the open choice button
        self._strong: list[str] | None = None
        self._before = ""  # the text just before the open or last <strong>
        self._last_strong: str | None = None
        self._after = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): v or "" for k, v in attrs}
        if self._button is not None:  # the label is the text before the key hint (<kbd>A</kbd>)
            self._close_button()
        if tag == "img" and a.get("src"):
            self.images.append(a["src"])
        elif tag == "form":
            self.forms.append(Form(action=a.get("action", "")))
        elif tag == "strong":
            self._strong = []
        elif tag in ("input", "button") and self.forms and "name" in a:
            self._add_field(self.forms[-1], tag, a)
        if tag == "label":
            self._label = []
        elif tag == "input" and a.get("type") == "radio" and a.get("name") == "answer" and self._label is not None:
            self.answer_labels.append((a.get("value", ""), ""))
        if tag == "button" and a.get("name") == "choice":
            self.choice_buttons.append((a.get("value", ""), ""))
            self._button = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "label" and self._label is not None:
            if self.answer_labels and not self.answer_labels[-1][1]:
                self.answer_labels[-1] = (self.answer_labels[-1][0], "".join(self._label).strip())
            self._label = None
        elif tag == "strong" and self._strong is not None:
            self._last_strong, self._after, self._strong = "".join(self._strong).strip(), "", None
        elif tag == "button" and self._button is not None:
            self._close_button()

    def _close_button(self) -> None:
        value, _ = self.choice_buttons[-1]
        self.choice_buttons[-1] = (value, "".join(self._button or []).strip())
        self._button = None

    def handle_data(self, data: str) -> None:
        if self._label is not None:
            self._label.append(data)
        if self._button is not None:
            self._button.append(data)
        if self._strong is not None:
            self._strong.append(data)
            return
        if self._last_strong is not None and self.instructed_label is None:
            self._after += data
            if self._before.rstrip().endswith(INSTRUCTION_BEFORE) and self._after.lstrip().startswith(INSTRUCTION_AFTER):
                self.instructed_label = self._last_strong
        self._before = data

    @staticmethod
    def _add_field(form: Form, tag: str, a: dict[str, str]) -> None:
        name, kind = a["name"], a.get("type", "text" if tag == "input" else "submit")
        if kind == "submit":
            form.buttons.append((name, a.get("value", "")))
        elif kind == "radio":
            form.radios.setdefault(name, []).append(a.get("value", "on"))
        elif kind == "checkbox":
            form.checkboxes.append(name)
        elif kind == "number":
            form.numbers[name] = (int(a.get("min") or 0), int(a.get("max") or 100))
        else:
            form.fields[name] = a.get("value", "")


def _parsed(html: str) -> PageParser:
    parser = PageParser()
    parser.feed(html)
    parser.close()
    return parser


def instructed_choice(html: str) -> str | None:
    """The answer an attention-check page asks for, read as a person would: the instruction's label
    matched to the button that carries it; None on an ordinary question."""
    page = _parsed(html)
    if page.instructed_label is None:
        return None
    offered = page.choice_buttons + page.answer_labels
    values = [value for value, label in offered if label == page.instructed_label]
    if not values:
        raise ValueError(f"the instruction asks for {page.instructed_label!r}, which no answer button offers")
    return values[0]


def parse_page(html: str) -> tuple[list[Form], list[str]]:
    """The forms and image sources of an HTML page."""
    page = _parsed(html)
    return page.forms, page.images


@dataclass(frozen=True)
class Response:
    """What the server answered: status, headers (lower-case names) and the decoded body."""

    status_code: int
    headers: dict[str, str]
    text: str

    @property
    def is_redirect(self) -> bool:
        return self.status_code in (301, 302, 303, 307, 308) and "location" in self.headers


class Session(Protocol):
    """One browser's HTTP: cookies kept, redirects not followed; connection problems raise ``OSError``
    or ``http.client.HTTPException``."""

    def request(self, method: str, url: str, data: dict[str, str] | None = None, *, timeout: float = 10.0,
                headers: dict[str, str] | None = None) -> Response: ...  # fmt: skip

    def close(self) -> None: ...


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the bot follows redirects itself, to see where the server sends it


class BrowserSession:
    """A :class:`Session` on the standard library (``urllib`` with a cookie jar): one connection per request."""

    def __init__(self) -> None:
        self.cookies = CookieJar()
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies), _NoRedirect)

    def request(self, method: str, url: str, data: dict[str, str] | None = None, *, timeout: float = 10.0,
                headers: dict[str, str] | None = None) -> Response:  # fmt: skip
        """Send one request (form-encoded ``data`` for a POST) and read the whole response."""
        body = urlencode(data).encode() if data is not None else None
        req = urllib.request.Request(url, data=body, headers=dict(headers or {}), method=method)
        try:
            with self._opener.open(req, timeout=timeout) as raw:
                return _response(raw.status, raw.headers, raw.read())
        except urllib.error.HTTPError as err:  # 3xx (not followed), 4xx and 5xx: still an answer
            with err:
                return _response(err.code, err.headers, err.read())

    def close(self) -> None:
        """Nothing is kept open between requests."""


def _response(status: int, headers: http.client.HTTPMessage, payload: bytes) -> Response:
    names = {name.lower(): value for name, value in headers.items() if name.lower() != "set-cookie"}
    return Response(status, names, payload.decode(headers.get_content_charset() or "utf-8"))


@dataclass
class BotReport:
    """What one simulated participant did and saw."""

    external_id: str
    attentive: bool = True
    token: str | None = None
    completed: bool = False
    screened_out: bool = False
    """Ended by failed attention checks beyond the study's rule (the screened-out page or its redirect)."""
    turned_away: bool = False
    acknowledged: list[tuple[int, str]] = field(default_factory=list)
    checks: list[tuple[int, str, str]] = field(default_factory=list)
    """Attention checks answered: (position, instructed choice, the choice sent)."""
    server_errors: int = 0
    connection_errors: int = 0
    errors: list[str] = field(default_factory=list)


class ServerUnavailable(Exception):
    """No usable answer from the server (connection failure, timeout or 5xx)."""


@dataclass
class SimulatedParticipant:
    """One bot taking the study at ``study_url`` (the link a researcher hands out).

    It answers after a random pause drawn from ``think_s``. Subclasses may time it through the hooks
    :meth:`_send`, :meth:`_answer_due`, :meth:`_page_arrived` and :meth:`_acknowledge`.
    """

    study_url: str
    seed: int = 0
    external_id: str | None = None
    marker: str | None = None
    chooser: Chooser = random_choice
    trial_chooser: TrialChooser = random_answer
    think_s: tuple[float, float] = (0.0, 0.0)
    fetch_images: bool = False
    inline: bool = True
    attentive: bool = True
    timeout_s: float = 10.0
    give_up_after_s: float = 120.0
    max_steps: int = 1000
    session: Session = field(default_factory=BrowserSession)

    report_type = BotReport

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.external_id = self.external_id or f"bot-{uuid.UUID(int=self.rng.getrandbits(128)).hex}"
        self.report = self.report_type(external_id=self.external_id, attentive=self.attentive)

    def run(self) -> BotReport:
        """Take the whole study; never raises, problems end up in the report."""
        try:
            self._take_study()
        except Exception as exc:  # noqa: BLE001 - a bot reports, the caller decides
            self.report.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            self.session.close()
        return self.report

    def entry_url(self) -> str:
        """The study link with this bot's external id (and simulation marker) as query parameters."""
        query = {"PROLIFIC_PID": self.external_id}
        if self.marker:
            query["sim"] = self.marker
        return f"{self.study_url}?{urlencode(query)}"

    def _send(self, method: str, url: str, data: dict[str, str] | None, headers: dict[str, str] | None) -> Response:
        """One request through the session (hook: a timing subclass measures it)."""
        return self.session.request(method, url, data=data, timeout=self.timeout_s, headers=headers)

    def _answer_due(self, answered: int) -> None:
        """Called before the answer after ``answered`` acknowledged ones is sent: the bot thinks."""
        if self.think_s[1] > 0:
            time.sleep(self.rng.uniform(*self.think_s))

    def _page_arrived(self) -> None:
        """Called when the page that follows an answer (or the end of the study) has arrived."""

    def _acknowledge(self, position: int, choice: str) -> None:
        """Called when the server acknowledged the answer ``choice`` at ``position``."""
        self.report.acknowledged.append((position, choice))

    def _request(self, method: str, url: str, data: dict[str, str] | None = None,
                 headers: dict[str, str] | None = None) -> Response:  # fmt: skip
        try:
            response = self._send(method, url, data, headers)
        except (OSError, http.client.HTTPException) as exc:
            self.report.connection_errors += 1
            raise ServerUnavailable(f"{type(exc).__name__}: {exc}") from None
        if response.status_code >= 500:
            self.report.server_errors += 1
            raise ServerUnavailable(f"{method} {urlsplit(url).path} answered {response.status_code}")
        return response

    def _resume_url(self) -> str:
        return urljoin(self.study_url, f"/p/{self.report.token}/") if self.report.token else self.entry_url()

    def _take_study(self) -> None:
        deadline = time.monotonic() + self.give_up_after_s
        url: str | None = self.entry_url()
        page: Response | None = None
        for _ in range(self.max_steps):
            if url is None or self.report.completed or self.report.screened_out or self.report.turned_away:
                return
            try:
                url, page = self._step(url, page)
            except ServerUnavailable as exc:
                if time.monotonic() > deadline:
                    self.report.errors.append(f"gave up: {exc}")
                    return
                time.sleep(0.2 + self.rng.random() * 0.3)
                url, page = self._resume_url(), None
        self.report.errors.append(f"no end after {self.max_steps} steps")

    def _step(self, url: str, page: Response | None) -> tuple[str | None, Response | None]:
        """Submit the form on the page at ``url`` (fetched first unless ``page`` already holds it).

        Returns the next URL (None when finished) and, when an inline answer's response already
        was that page, the page itself.
        """
        response = page or self._request("GET", url)
        if response.is_redirect:
            return self._follow(url, response), None
        self._page_arrived()
        if response.status_code != 200:
            self.report.errors.append(f"GET {urlsplit(url).path} answered {response.status_code}")
            return None, None
        path = urlsplit(url).path
        if path.endswith("/thank-you/"):
            self.report.completed = True
            return None, None
        if path.endswith("/screened-out/"):
            self.report.screened_out = True
            return None, None
        forms, images = parse_page(response.text)
        if not forms:
            self.report.turned_away = "/s/" in path
            if not self.report.turned_away:
                self.report.errors.append(f"no form on {path}")
            return None, None
        if self.fetch_images:
            for src in images:
                self._request("GET", urljoin(url, src))
        form = forms[0]
        instructed = instructed_choice(response.text)
        data, position, choice = self._fill(form, path, instructed)
        if choice is not None:
            self._answer_due(len(self.report.acknowledged))
        target = urljoin(url, form.action or path)
        inline = self.inline and choice is not None
        posted = self._request("POST", target, data, headers={NEXT_HEADER: INLINE} if inline else None)
        if posted.status_code == 403 and "/s/" in path:
            self.report.turned_away = True
            return None, None
        next_page = posted.headers.get(PAGE_HEADER.lower()) if inline and posted.status_code == 200 else None
        if not posted.is_redirect and next_page is None:
            self.report.errors.append(f"POST {path} answered {posted.status_code}")
            return None, None
        if position is not None and choice is not None:
            self._acknowledge(position, choice)
            if instructed is not None:
                self.report.checks.append((position, instructed, choice))
        if next_page is not None:
            return urljoin(target, next_page), posted
        return self._follow(target, posted), None

    def _follow(self, url: str, response: Response) -> str | None:
        location = urljoin(url, response.headers["location"])
        parts = urlsplit(location)
        if parts.netloc != urlsplit(self.study_url).netloc:  # the study's completion redirect
            self._page_arrived()
            if urlsplit(url).path.endswith("/screened-out/"):
                self.report.screened_out = True
            else:
                self.report.completed = True
            return None
        if parts.path.startswith("/p/"):
            self.report.token = parts.path.split("/")[2]
        return location

    def _fill(self, form: Form, path: str, instructed: str | None) -> tuple[dict[str, str], int | None, str | None]:
        data = dict(form.fields)
        data.update({name: "on" for name in form.checkboxes})
        data.update({name: self.rng.choice(values) for name, values in form.radios.items()})
        data.update({name: str(self.rng.randint(max(lo, 18), min(hi, 75))) for name, (lo, hi) in form.numbers.items()})
        position = choice = None
        choice_values = [value for name, value in form.buttons if name == "choice"]
        if "/q/" in path and "shown" in form.fields and not choice_values:  # a usefulness trial
            position = int(path.rstrip("/").rsplit("/", 1)[-1])
            answers = form.radios.get("answer", [])
            choice = self.trial_chooser(self.report.token or "", position, answers, self.rng) if answers else ""
            if answers and choice not in answers:
                raise ValueError(f"trial chooser returned {choice!r}, not one of {answers}")
            if instructed is not None:
                choice = self._check_answer(instructed, choice, answers)
            if answers:
                data.update({"answer": choice, CONFIDENCE: self.rng.choice(form.radios[CONFIDENCE])})
            data["client_ms"] = str(self.rng.randint(400, 6000))
        elif choice_values:
            position = int(path.rstrip("/").rsplit("/", 1)[-1])
            choice = self.chooser(self.report.token or "", position, self.rng)
            if choice not in choice_values:
                raise ValueError(f"chooser returned {choice!r}, not one of {choice_values}")
            if instructed is not None:
                choice = self._check_answer(instructed, choice, choice_values)
            data["choice"] = choice
            data["client_ms"] = str(self.rng.randint(400, 6000))
        return data, position, choice

    def _check_answer(self, instructed: str, chosen: str, choice_values: list[str]) -> str:
        """The instructed answer from an attentive bot; from an inattentive one its own choice, never the instructed."""
        if self.attentive:
            return instructed
        return chosen if chosen != instructed else self.rng.choice([c for c in choice_values if c != instructed])


@dataclass(frozen=True)
class Totals:
    """What many bots did, as ``simulate_participants`` prints it."""

    participants: int
    completed: int
    turned_away: int
    screened_out: int
    failed: int
    answers: int
    seconds: float
    server_errors: int
    connection_errors: int
    attention_checks: int
    attention_checks_passed: int


def totals(reports: list[BotReport], seconds: float) -> Totals:
    """Counts over the bots' reports (``seconds``: how long they ran)."""
    return Totals(
        participants=len(reports),
        completed=sum(r.completed for r in reports),
        turned_away=sum(r.turned_away for r in reports),
        screened_out=sum(r.screened_out for r in reports),
        failed=sum(bool(r.errors) for r in reports),
        answers=sum(len(r.acknowledged) for r in reports),
        seconds=seconds,
        server_errors=sum(r.server_errors for r in reports),
        connection_errors=sum(r.connection_errors for r in reports),
        attention_checks=sum(len(r.checks) for r in reports),
        attention_checks_passed=sum(instructed == sent for r in reports for _, instructed, sent in r.checks),
    )


def make_participants(study_url: str, n: int, *, seed: int = 0, inattentive_share: float = 0.0,
                      bot: type[SimulatedParticipant] = SimulatedParticipant, **options: Any,
                      ) -> list[SimulatedParticipant]:  # fmt: skip
    """``n`` bots of class ``bot`` with seeds derived from ``seed``; ``inattentive_share`` of them (drawn
    from ``seed``) answer every attention check wrongly; ``options`` go to every bot."""
    inattentive = set(random.Random(seed).sample(range(n), round(n * inattentive_share)))
    return [bot(study_url, seed=seed * 1_000_003 + i, attentive=i not in inattentive, **options) for i in range(n)]


def run_bots(bots: Iterable[SimulatedParticipant], *, concurrency: int | None = None,
             on_done: Callable[[BotReport], None] | None = None) -> tuple[list[BotReport], float]:  # fmt: skip
    """Run the bots, ``concurrency`` at a time (default: all at once); their reports and the seconds taken."""
    bots = list(bots)

    def run(bot: SimulatedParticipant) -> BotReport:
        report = bot.run()
        if on_done:
            on_done(report)
        return report

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency or max(len(bots), 1)) as pool:
        reports = list(pool.map(run, bots))
    return reports, time.perf_counter() - start


def run_participants(
    study_url: str,
    n: int,
    *,
    concurrency: int | None = None,
    seed: int = 0,
    inattentive_share: float = 0.0,
    on_done: Callable[[BotReport], None] | None = None,
    **options: Any,
) -> tuple[list[BotReport], Totals]:
    """Run ``n`` bots (see :func:`make_participants`, :func:`run_bots`); return their reports and totals.

    ``options`` go to every :class:`SimulatedParticipant` (``marker``, ``chooser``, ``inline``, ...).
    """
    bots = make_participants(study_url, n, seed=seed, inattentive_share=inattentive_share, **options)
    reports, seconds = run_bots(bots, concurrency=concurrency, on_done=on_done)
    return reports, totals(reports, seconds)


def simulation_marker(study_slug: str) -> str:
    """The signed marker that makes the server store a bot with ``simulated=True`` (needs SECRET_KEY)."""
    from studyapp.participation.forms import simulated_stamp

    return simulated_stamp(study_slug)
