"""The analysis report of a study, made from a fresh export (the dashboard's "Make report" button)."""
from __future__ import annotations

import tempfile
from pathlib import Path

from .export import write_export
from .models import Study


def study_report_html(study: Study, include_simulated: bool = False) -> str:
    """Export the study's answers, run ``analysis`` on them and return the self-contained report.html.

    Raises ``analysis.io.InputError`` when no answers are left after the inclusion rules. ``analysis``
    (pandas, scipy, matplotlib) is imported here, on the first report, so no web worker loads it to serve pages.
    """
    from analysis.report import ReportOptions, build_report

    with tempfile.TemporaryDirectory(prefix="bla-report-") as folder:
        export_dir, report_dir = Path(folder) / "export", Path(folder) / "report"
        write_export(study, export_dir)
        build_report(export_dir / "answers.csv", export_dir / "participants.csv", report_dir,
                     ReportOptions(include_simulated=include_simulated))
        return (report_dir / "report.html").read_text(encoding="utf-8")
