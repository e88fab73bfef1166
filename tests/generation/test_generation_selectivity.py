"""`generation build` refuses the explanations of a run judged not selective, writes nothing, and builds with
--allow-unselective; files without a verdict (older files, post-hoc maps) build as before."""

import json
from pathlib import Path

from conftest import write_explanations
import numpy as np

from generation.cli import main

UNSELECTIVE = {"selective": False, "reasons": ["large_masks"], "run": "/runs/bla_t-seed17", "seed": 17,
               "reason_texts": ["90% of images select more than half of the 49 cells (median 30, mean 29.5)"]}


def _build(fixture, out: Path, *extra: str) -> int:
    return main(["build", "--explanations", *fixture.paths, "--out", str(out), "--per-type", "2", "--seed", "5",
                 "--size", "56", "--workers", "1", *extra])


def _mark(fixture, method: str, verdict: dict) -> None:
    fields = {**np.load(fixture.files[method]), "selectivity": np.array(json.dumps(verdict))}
    write_explanations(fixture.files[method], **fields)


def test_an_unselective_file_is_refused_naming_file_run_and_reason(fixture_files, tmp_path: Path, capsys) -> None:
    _mark(fixture_files, "bla_t", UNSELECTIVE)
    out = tmp_path / "bundle"
    assert _build(fixture_files, out) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(fixture_files.files["bla_t"]) in err
    assert "run /runs/bla_t-seed17 (seed 17)" in err and "90% of images select more than half" in err
    assert "--allow-unselective" in err and not out.exists()


def test_allow_unselective_builds_and_a_selective_or_unknown_verdict_needs_no_flag(fixture_files, tmp_path: Path) -> None:
    _mark(fixture_files, "bla_t", UNSELECTIVE)
    assert _build(fixture_files, tmp_path / "allowed", "--allow-unselective") == 0
    assert (tmp_path / "allowed" / "manifest.json").is_file()
    _mark(fixture_files, "bla_t", {**UNSELECTIVE, "selective": True, "reasons": [], "reason_texts": []})
    assert _build(fixture_files, tmp_path / "selective") == 0


def test_a_malformed_verdict_is_one_clear_error(fixture_files, tmp_path: Path, capsys) -> None:
    _mark(fixture_files, "bla_t", {"selective": "maybe"})
    assert _build(fixture_files, tmp_path / "bundle") == 2
    assert "field 'selectivity' must be a JSON object" in capsys.readouterr().err
