"""An analyst installs the analysis alone: ``pip install '.[analysis]'`` in a fresh venv, then runs a report.

Slow (it downloads the scientific stack from PyPI) but part of ``make test``: it is the only check that the
stage's declared dependencies suffice and bring neither torch nor Django.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from analysis_exports import design_answers, participant_row, write_export

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("contracts", "analysis", "generation", "studyapp", "bla_core", "config")


def _source_copy(folder: Path) -> Path:
    """The project as a source distribution holds it, so the build leaves nothing in the checkout."""
    folder.mkdir()
    shutil.copy2(ROOT / "pyproject.toml", folder)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, folder / package, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def _run(*command: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_analysis_extra_installs_without_torch_or_django_and_makes_a_report(tmp_path: Path) -> None:
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(tmp_path / "venv")
    python = tmp_path / "venv" / "bin" / "python"
    source = _source_copy(tmp_path / "src")
    _run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"{source}[analysis]", cwd=tmp_path)
    installed = _run(python, "-c", "import importlib.util as u; print([m for m in ('torch', 'django') if u.find_spec(m)])",
                     cwd=tmp_path)
    assert installed.stdout.strip() == "[]"

    cells = {(q, "mnist38"): (5, 2, 1) for q in ("bla_t_vs_cam", "bla_t_vs_l2x_f", "bla_t_vs_random")}
    export = tmp_path / "export"
    write_export(export, design_answers(cells, n_participants=4, per_cell=2),
                 [participant_row(f"p{i:03d}") for i in range(4)])
    # Run from tmp_path, not the checkout, so the installed package (not the source tree) is what runs.
    _run(python, "-m", "analysis", "report", "--export-dir", export, "--out", tmp_path / "report", cwd=tmp_path)
    report = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert "bla_t_vs_cam" in report
