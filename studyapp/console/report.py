"""The analysis of a study from a fresh export: the dashboard's report (HTML) and its live preference shares.

``analysis`` (pandas, scipy, matplotlib) is imported inside these functions, on first use, so no
web worker loads it to serve pages. Messages are for the researcher's browser: no command-line
flag and no temporary path.
"""
from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from studyapp.models import Study
from studyapp.operations.export import write_export

if TYPE_CHECKING:
    from analysis.selection import Selection

SIMULATED_HINT = "tick “count simulated participants” to count the bots"


class ReportUnavailable(Exception):
    """No report can be made now; the message is one sentence for the researcher."""


@contextmanager
def fresh_export(study: Study) -> Iterator[Path]:
    """A temporary folder holding the study's answers.csv and participants.csv, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="bla-report-") as folder:
        write_export(study, Path(folder) / "export")
        yield Path(folder) / "export"


def counted_answers(export_dir: Path, *, include_simulated: bool,
                    include_incomplete: bool = False) -> Selection:  # fmt: skip
    """The answers the analysis counts under its inclusion rules; ReportUnavailable when there are none."""
    from analysis.io import InputError, load_export
    from analysis.selection import select

    try:
        export = load_export(export_dir / "answers.csv", export_dir / "participants.csv")
    except InputError as exc:  # the app's own export: only an empty study gets here
        raise ReportUnavailable(str(exc).replace(f"{export_dir}/", "")) from None
    selection = select(export, include_incomplete=include_incomplete, include_simulated=include_simulated)
    if selection.answers.empty:
        raise ReportUnavailable(nothing_counted(selection, include_simulated))
    return selection


def nothing_counted(selection: Selection, include_simulated: bool) -> str:
    """Why no answer is counted: what each inclusion rule left out, and the checkbox that counts bots."""
    left_out = [f"{row.participants} {row.description}" for row in selection.left_out.itertuples() if row.participants]
    sentence = "no answers are counted yet (" + ("; ".join(left_out) or "nobody has answered") + ")"
    simulated = int(selection.left_out.loc[selection.left_out["reason"] == "simulated", "participants"].sum())
    return f"{sentence}; {SIMULATED_HINT}." if simulated and not include_simulated else f"{sentence}."


def study_report_html(study: Study, include_simulated: bool = False) -> str:
    """Export the study's answers, run ``analysis`` on them and return the self-contained report.html.

    Raises ReportUnavailable when no answers are left after the inclusion rules.
    """
    from analysis.report import ReportOptions, build_report

    with fresh_export(study) as export_dir:
        counted_answers(export_dir, include_simulated=include_simulated)
        report_dir = export_dir.parent / "report"
        build_report(export_dir / "answers.csv", export_dir / "participants.csv", report_dir,
                     ReportOptions(include_simulated=include_simulated))
        return (report_dir / "report.html").read_text(encoding="utf-8")
