"""Fixtures of the reliability tests: the study-app fixtures reused, and a tally of fuzzed cases."""
from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path

import pytest

STUDYAPP_TESTS = Path(__file__).resolve().parents[1] / "studyapp"
sys.path.insert(0, str(STUDYAPP_TESTS))  # study_helpers


def _load_studyapp_fixtures():
    spec = importlib.util.spec_from_file_location("studyapp_test_fixtures", STUDYAPP_TESTS / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_fixtures = _load_studyapp_fixtures()
media_root = _fixtures.media_root
bundle_dir = _fixtures.bundle_dir
study = _fixtures.study

FUZZ_CASES = pytest.StashKey[Counter]()


@pytest.fixture
def fuzz_tally(request: pytest.FixtureRequest) -> Counter:
    """Counts the cases hypothesis tried, per endpoint; printed at the end of the run."""
    return request.config.stash.setdefault(FUZZ_CASES, Counter())


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    tally = config.stash.get(FUZZ_CASES, None)
    if tally:
        parts = ", ".join(f"{name} {count}" for name, count in sorted(tally.items()))
        terminalreporter.write_line(f"hypothesis: {sum(tally.values())} cases fuzzed ({parts})")
