"""The load and crash benches' HTTP client: a lean kept-alive transport and the study bot timed.

The transport is deliberately lean (``http.client`` on one kept-alive connection per bot): in a load
test the bots share the machine's cores with the server, so every millisecond of client CPU is taken
from the server being measured. :class:`TimedParticipant` is the app's participant bot
(``studyapp.simulated.participants``) with every request and answer timed and, optionally, a fixed answer schedule;
:func:`summarize` turns the reports into throughput and latency percentiles.
"""
from __future__ import annotations

import http.client
import select
import statistics
import time
from dataclasses import asdict, dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode, urlsplit

from studyapp.simulated.participants import (
    BotReport,
    Response,
    SimulatedParticipant,
    Totals,
    make_participants,
    run_bots,
    totals,
)


class KeepAliveSession:
    """One browser's HTTP: a kept-alive connection to one host and its cookies; redirects are not followed.

    Connection problems raise ``OSError`` (or ``http.client.HTTPException``) after the connection is
    dropped, so the next request opens a fresh one.
    """

    def __init__(self) -> None:
        self.cookies: dict[str, str] = {}
        self._conn: http.client.HTTPConnection | None = None
        self._netloc = ""

    def request(
        self, method: str, url: str, data: dict[str, str] | None = None, *,
        timeout: float = 10.0, headers: dict[str, str] | None = None,
    ) -> Response:
        """Send one request (form-encoded ``data`` for a POST) and read the whole response."""
        parts = urlsplit(url)
        body = urlencode(data) if data is not None else None
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn = self._connection(parts.netloc, timeout)
        try:
            conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), body=body, headers=headers)
            raw = conn.getresponse()
            payload = raw.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        response_headers = {}
        for name, value in raw.getheaders():
            name = name.lower()
            if name == "set-cookie":
                self._store_cookie(value)
            else:
                response_headers[name] = value
        if raw.will_close:
            self.close()
        return Response(raw.status, response_headers, payload.decode(raw.headers.get_content_charset() or "utf-8"))

    def _connection(self, netloc: str, timeout: float) -> http.client.HTTPConnection:
        if self._conn is not None and (netloc != self._netloc or self._dropped()):
            self.close()
        if self._conn is None:
            self._conn = http.client.HTTPConnection(netloc, timeout=timeout)
            self._netloc = netloc
        return self._conn

    def _dropped(self) -> bool:
        """Whether the server closed the idle connection (readable with nothing to read means EOF)."""
        sock = self._conn.sock if self._conn else None
        return sock is not None and bool(select.select([sock], [], [], 0)[0])

    def _store_cookie(self, header: str) -> None:
        for morsel in SimpleCookie(header).values():
            if morsel["max-age"] == "0":
                self.cookies.pop(morsel.key, None)
            else:
                self.cookies[morsel.key] = morsel.value

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@dataclass
class TimedReport(BotReport):
    """A bot's report with its timings (``time.perf_counter`` seconds, milliseconds)."""

    acknowledged_at: list[float] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    answer_latencies_ms: list[float] = field(default_factory=list)
    answer_arrived_at: list[float] = field(default_factory=list)


@dataclass
class TimedParticipant(SimulatedParticipant):
    """The study bot on a kept-alive connection, every request and answer timed.

    By default the bot answers after a random pause drawn from ``think_s``. With ``answer_every_s``
    it follows a fixed schedule instead (open loop): its k-th answer is due ``schedule_offset_s +
    k * answer_every_s`` after it first sees a question, and a late answer is sent at once. An
    answer's latency runs from the moment it was due (or sent, without a schedule) until the page
    the server redirected to has arrived, so a slow server cannot hide behind a bot that waited.
    """

    answer_every_s: float | None = None
    schedule_offset_s: float = 0.0
    session: KeepAliveSession = field(default_factory=KeepAliveSession)

    report_type = TimedReport

    def __post_init__(self) -> None:
        super().__post_init__()
        self._schedule_origin: float | None = None
        self._answer_started: float | None = None

    def _send(self, method: str, url: str, data: dict[str, str] | None, headers: dict[str, str] | None) -> Response:
        start = time.perf_counter()
        try:
            response = super()._send(method, url, data, headers)
        except (OSError, http.client.HTTPException):
            self._answer_started = None  # the answer's page will not arrive on this connection
            raise
        self.report.latencies_ms.append((time.perf_counter() - start) * 1000)
        return response

    def _answer_due(self, answered: int) -> None:
        """Sleep until the next answer is due; remember when it was due (or sent) for its latency."""
        if self.answer_every_s is None:
            super()._answer_due(answered)
            self._answer_started = time.perf_counter()
            return
        if self._schedule_origin is None:
            self._schedule_origin = time.perf_counter() + self.schedule_offset_s
        due = self._schedule_origin + answered * self.answer_every_s
        time.sleep(max(0.0, due - time.perf_counter()))
        self._answer_started = min(due, time.perf_counter())

    def _page_arrived(self) -> None:
        """Record the latency of the answer in flight: the page it leads to has arrived."""
        if self._answer_started is not None:
            now = time.perf_counter()
            self.report.answer_latencies_ms.append((now - self._answer_started) * 1000)
            self.report.answer_arrived_at.append(now)
            self._answer_started = None

    def _acknowledge(self, position: int, choice: str) -> None:
        super()._acknowledge(position, choice)
        self.report.acknowledged_at.append(time.perf_counter())


@dataclass(frozen=True)
class RunSummary(Totals):
    """The bots' totals with throughput and latency percentiles, as the benchmarks print them."""

    requests: int
    answers_per_s: float
    p50_ms: float
    p95_ms: float
    answer_p50_ms: float
    answer_p95_ms: float
    steady_answers_per_s: float = 0.0
    steady_seconds: float = 0.0
    steady_answer_p50_ms: float = 0.0
    steady_answer_p95_ms: float = 0.0


def _percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def steady_window(reports: list[BotReport]) -> tuple[float, float] | None:
    """The time while every bot was answering: from the last first answer to the first last answer
    (no ramp-up with enrolments, no ramp-down with fewer participants); None if there is none."""
    times = [r.acknowledged_at for r in reports if r.acknowledged_at]
    if not times:
        return None
    start, end = max(t[0] for t in times), min(t[-1] for t in times)
    return (start, end) if end > start else None


def steady_rate(reports: list[BotReport]) -> tuple[float, float]:
    """Answers per second in the :func:`steady_window` and its length: the sustained rate."""
    window = steady_window(reports)
    if window is None:
        return 0.0, 0.0
    start, end = window
    inside = sum(start < at <= end for r in reports for at in r.acknowledged_at)
    return inside / (end - start), end - start


def steady_answer_latencies(reports: list[BotReport]) -> list[float]:
    """Latencies of the answers whose next page arrived inside the :func:`steady_window`."""
    window = steady_window(reports)
    if window is None:
        return []
    start, end = window
    return [ms for r in reports for ms, at in zip(r.answer_latencies_ms, r.answer_arrived_at, strict=True)
            if start < at <= end]  # fmt: skip


def summarize(reports: list[TimedReport], seconds: float) -> RunSummary:
    """Throughput and latency percentiles: all requests; answers (until the next page has arrived) over
    the whole run and in the :func:`steady_window`."""
    latencies = [ms for r in reports for ms in r.latencies_ms]
    answer_latencies = [ms for r in reports for ms in r.answer_latencies_ms]
    steady_latencies = steady_answer_latencies(reports)
    counted = totals(reports, seconds)
    steady, steady_seconds = steady_rate(reports)
    return RunSummary(
        **asdict(counted),
        requests=len(latencies),
        answers_per_s=counted.answers / seconds if seconds > 0 else 0.0,
        p50_ms=_percentile(latencies, 50),
        p95_ms=_percentile(latencies, 95),
        answer_p50_ms=_percentile(answer_latencies, 50),
        answer_p95_ms=_percentile(answer_latencies, 95),
        steady_answers_per_s=steady,
        steady_seconds=steady_seconds,
        steady_answer_p50_ms=_percentile(steady_latencies, 50),
        steady_answer_p95_ms=_percentile(steady_latencies, 95),
    )


def timed_participants(study_url: str, n: int, *, seed: int = 0, answer_every_s: float | None = None,
                       **options: Any) -> list[TimedParticipant]:  # fmt: skip
    """``n`` timed bots; with ``answer_every_s`` their schedules spread evenly over one interval, so
    together they offer ``n / answer_every_s`` answers per second."""
    bots = make_participants(study_url, n, seed=seed, bot=TimedParticipant, answer_every_s=answer_every_s, **options)
    for i, bot in enumerate(bots):
        bot.schedule_offset_s = (answer_every_s or 0.0) * i / max(n, 1)
    return bots


def run_timed_participants(study_url: str, n: int, *, concurrency: int | None = None, seed: int = 0,
                           answer_every_s: float | None = None, **options: Any,
                           ) -> tuple[list[TimedReport], RunSummary]:  # fmt: skip
    """Run ``n`` timed bots (``options`` as for :class:`TimedParticipant`); their reports and summary."""
    bots = timed_participants(study_url, n, seed=seed, answer_every_s=answer_every_s, **options)
    reports, seconds = run_bots(bots, concurrency=concurrency)
    return reports, summarize(reports, seconds)
