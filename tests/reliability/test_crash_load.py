"""Crash under load (CI size): gunicorn + PostgreSQL SIGKILLed twice mid-run; no acknowledged answer lost."""
from __future__ import annotations

import sys
from pathlib import Path

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from crash_load import DEFAULT_POSTGRES, run_crash_load  # noqa: E402


@pytest.fixture
def postgres() -> str:
    try:
        psycopg.connect(DEFAULT_POSTGRES, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server at {DEFAULT_POSTGRES} ({exc})")
    return DEFAULT_POSTGRES


def test_sigkill_twice_under_load_loses_no_acknowledged_answer(postgres):
    result = run_crash_load(40, crashes=2, questions_per_cell=2, workers=2, threads=4, down_s=0.5, postgres=postgres)
    print("\n".join(result.lines()))
    assert result.crashes == 2 and result.connection_errors > 0  # the kills really cut participants off
    assert result.acknowledged >= 40 * 12 - 2 * 8  # at most one cut response per server thread per crash
    assert result.found_once == result.acknowledged and result.wrong_choice == 0 and result.duplicates == 0
    assert result.completed_bots == result.completed_in_export == 40
    assert result.server_errors == 0 and result.bot_errors == [] and result.export_problems == []
    assert result.stored == 40 * 12
