"""The benches' load metrics (bench/http_client.py): the steady window, its rate and latencies, percentiles."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from http_client import TimedReport, summarize, steady_answer_latencies, steady_rate, steady_window  # noqa: E402


def test_steady_window_counts_only_answers_while_every_bot_was_answering():
    early = TimedReport("a", acknowledged_at=[1.0, 2.0, 3.0, 4.0], answer_latencies_ms=[900.0, 10.0, 20.0, 30.0],
                        answer_arrived_at=[1.5, 2.1, 3.1, 4.1])  # fmt: skip
    late = TimedReport("b", acknowledged_at=[2.5, 3.5, 5.0], answer_latencies_ms=[40.0, 50.0, 800.0],
                       answer_arrived_at=[2.6, 3.6, 5.1])  # fmt: skip
    assert steady_window([early, late]) == (2.5, 4.0)
    assert sorted(steady_answer_latencies([early, late])) == [20.0, 40.0, 50.0]  # arrived in (2.5, 4.0]
    rate, seconds = steady_rate([early, late])
    assert seconds == 1.5 and rate == 3 / 1.5  # acknowledged at 3.0, 4.0 and 3.5
    assert steady_window([TimedReport("c", acknowledged_at=[1.0])]) is None


def test_summary_counts_and_percentiles_over_all_bots():
    done = TimedReport("a", completed=True, acknowledged=[(1, "A"), (2, "B")], latencies_ms=[10.0, 20.0, 30.0],
                       answer_latencies_ms=[10.0, 30.0], checks=[(2, "B", "B")])  # fmt: skip
    failed = TimedReport("b", errors=["gave up"], connection_errors=2, latencies_ms=[40.0, 50.0], checks=[(1, "A", "equal")])
    summary = summarize([done, failed], seconds=2.0)
    assert (summary.participants, summary.completed, summary.failed, summary.answers, summary.requests) == (2, 1, 1, 2, 5)
    assert (summary.answers_per_s, summary.connection_errors) == (1.0, 2)
    assert (summary.p50_ms, summary.p95_ms) == (30.0, 48.0)  # inclusive: 10, 20, 30, 40, 50
    assert (summary.answer_p50_ms, summary.attention_checks, summary.attention_checks_passed) == (20.0, 2, 1)
