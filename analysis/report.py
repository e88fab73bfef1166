"""The preference report: preferences.csv / .md, Figures 4 and 7–11, and a self-contained report.html.

All files are first written to a staging folder inside the output folder and moved into place
only when every one of them has been written, so a failure leaves no half-written report.
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from analysis import __version__
from analysis.figures import render_figures
from analysis.io import Export, InputError, load_export
from analysis.percentages import DEFAULT_DECIMALS
from analysis.selection import Selection, select
from analysis.statistics import (
    DEFAULT_BOOTSTRAP, DEFAULT_CONFIDENCE, PREFERENCE_COLUMNS, preference_table,
)
from analysis.vocabulary import QUESTION_TYPES

FIGURE_CAPTIONS: dict[str, str] = {
    "figure4": "Figure 4. User preference for explanations, pooled over datasets. Whiskers: "
               "bootstrap confidence interval of the BLA-T share.",
    "figure7": "Figure 7. User preference by dataset and question type.",
    "figure8": "Figure 8. Gender of the participants counted.",
    "figure9": "Figure 9. Age of the participants counted.",
    "figure10": "Figure 10. ML/AI experience of the participants counted.",
    "figure11": "Figure 11. XAI experience of the participants counted.",
}


@dataclass(frozen=True)
class ReportOptions:
    """Who counts and how the statistics are computed."""

    include_incomplete: bool = False
    include_excluded: bool = False
    include_simulated: bool = False
    n_boot: int = DEFAULT_BOOTSTRAP
    seed: int = 0
    confidence: float = DEFAULT_CONFIDENCE
    decimals: int = DEFAULT_DECIMALS
    dataset_labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportResult:
    """What was written, and the numbers behind it."""

    out_dir: Path
    files: list[Path]
    table: pd.DataFrame
    selection: Selection
    warnings: tuple[str, ...]


def build_report(answers_path: Path, participants_path: Path, out_dir: Path,
                 options: ReportOptions = ReportOptions(),
                 step: Callable[[str], None] = lambda name: None) -> ReportResult:
    """Read the export, compute the statistics, write every report file into ``out_dir``.

    ``step`` is called with the name of each stage as it starts (for progress display).
    """
    step("reading the export")
    export = load_export(answers_path, participants_path)
    selection = select(export, options.include_incomplete, options.include_excluded,
                       options.include_simulated)
    if selection.answers.empty:
        raise InputError(f"{answers_path}: no answers are left after the inclusion rules "
                         f"({_left_out_sentence(selection)}); see --include-incomplete, "
                         "--include-excluded and --include-simulated")
    step("computing statistics")
    table = preference_table(selection.answers, options.n_boot, options.seed,
                             options.confidence, options.decimals)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".analysis-staging-", dir=out_dir))
    try:
        step("drawing figures")
        figures = render_figures(table, selection.participants, staging, options.dataset_labels)
        step("writing the report")
        write_preferences_csv(table, staging / "preferences.csv")
        (staging / "preferences.md").write_text(preferences_markdown(table, options),
                                                encoding="utf-8")
        (staging / "report.html").write_text(
            report_html(export, selection, table, figures, options), encoding="utf-8")
        files = []
        for path in sorted(staging.iterdir()):
            os.replace(path, out_dir / path.name)
            files.append(out_dir / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ReportResult(out_dir, files, table, selection, export.warnings)


def write_preferences_csv(table: pd.DataFrame, path: Path) -> None:
    """preferences.csv: the table with full-precision floats and empty cells for 'undefined'."""
    table.loc[:, list(PREFERENCE_COLUMNS)].to_csv(path, index=False, na_rep="")


def format_p(p: float) -> str:
    """A p-value for reading: three decimals, '< 0.001' below that, '–' when undefined."""
    if p is None or math.isnan(p):
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def display_rows(table: pd.DataFrame, options: ReportOptions) -> list[list[str]]:
    """Header plus one row of readable cells per preference row (used by Markdown and HTML)."""
    level = f"{options.confidence * 100:g}%"
    header = ["Dataset", "Question type", "Answers", "Participants", "BLA-T", "Other",
              "Equal", f"BLA-T share {level} CI", "p (answers)", "p (participants)",
              "Cohen's h", "BLA-T − other [pp]", "Datasets differ"]
    rows = [header]
    for _, r in table.iterrows():
        dataset = options.dataset_labels.get(r["dataset"], r["dataset"])
        between = "" if pd.isna(r["between_datasets_df1"]) else (
            f"F({r['between_datasets_df1']}, {r['between_datasets_df2']}) = "
            f"{r['between_datasets_f']:.2f}, p {format_p(r['between_datasets_p'])}")
        rows.append([
            dataset, r["question_type"], str(r["n_answers"]), str(r["n_participants"]),
            f"{r['bla_t']} ({r['bla_t_pct']}%)", f"{r['other']} ({r['other_pct']}%)",
            f"{r['equal']} ({r['equal_pct']}%)",
            f"{r['ci_low']}–{r['ci_high']}%" if r["ci_low"] != "" else "–",
            format_p(r["p_value"]), format_p(r["p_value_participants"]),
            "–" if math.isnan(r["cohens_h"]) else f"{r['cohens_h']:.2f}",
            r["difference_pct"], between,
        ])
    return rows


def preferences_markdown(table: pd.DataFrame, options: ReportOptions) -> str:
    """preferences.md: the same rows as a Markdown table, with the rounding rule stated."""
    rows = display_rows(table, options)
    lines = ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    lines.insert(1, "|" + "---|" * len(rows[0]))
    return ("# User preferences\n\n" + "\n".join(lines) + "\n\n"
            + rounding_sentence(options.decimals) + "\n")


def rounding_sentence(decimals: int) -> str:
    """How every percentage in the report was rounded."""
    return (f"Percentages are 100 · count / total computed exactly from the integer counts and "
            f"rounded to {decimals} decimal place{'s' if decimals != 1 else ''}, ties to even; "
            "they need not sum to 100.")


def methods_paragraph(selection: Selection, table: pd.DataFrame,
                      options: ReportOptions) -> str:
    """The methods text, with this report's numbers and settings filled in."""
    included = ["status 'completed'"]
    if options.include_incomplete:
        included.append("'incomplete'")
    if options.include_excluded:
        included.append("'excluded'")
    who = " or ".join(included) + ("" if options.include_simulated else ", not simulated")
    level = f"{options.confidence * 100:g}%"
    return (
        f"We counted {len(selection.answers)} answers of {selection.answers.groupby(['study', 'participant']).ngroups} "
        f"participants ({who}). For each question type, pooled over datasets and per dataset, "
        "we report how often BLA-T, the other method, or 'equally reasonable' was chosen. "
        f"{rounding_sentence(options.decimals)} The {level} confidence interval of the BLA-T "
        f"share is a percentile interval from a cluster bootstrap with {options.n_boot} "
        f"replicates (seed {options.seed}): participants, not answers, are resampled with "
        "replacement, because the answers of one person are not independent. BLA-T is tested "
        "against the other method with an exact two-sided binomial sign test (p = 1/2), "
        "'equally reasonable' answers excluded, over answers as in the paper; because that "
        "test treats answers as independent we also give the sign test over participants "
        "(each participant counts once, for the method they chose more often; ties excluded). "
        "Effect sizes are Cohen's h of the BLA-T share among decisive answers against 1/2 "
        "(0.2 small, 0.5 medium, 0.8 large) and the difference of the BLA-T and other shares "
        "in percentage points. Whether preferences differ between datasets is tested per "
        "question type with an adjusted Wald F test (Korn and Graubard) of equal BLA-T and other "
        "shares in all datasets, whose covariance is cluster-robust (a participant-level "
        "sandwich estimate). A Pearson chi-square test of the dataset × answer table would "
        "treat all answers as independent, although each participant answers several "
        "questions in every dataset, and so misstate the evidence in either direction. "
        "P-values are not adjusted for multiple comparisons."
    )


def report_html(export: Export, selection: Selection, table: pd.DataFrame,
                figures: dict[str, list[Path]], options: ReportOptions) -> str:
    """report.html with every figure embedded as base64 PNG, so the file stands alone."""
    esc = html.escape
    rows = display_rows(table, options)
    results = "<table><thead><tr>" + "".join(f"<th>{esc(c)}</th>" for c in rows[0]) + \
        "</tr></thead><tbody>" + "".join(
            "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows[1:]
        ) + "</tbody></table>"
    figure_html = "".join(
        f'<figure><img alt="{esc(FIGURE_CAPTIONS[key])}" src="data:image/png;base64,'
        f'{base64.b64encode(paths[0].read_bytes()).decode("ascii")}">'
        f"<figcaption>{esc(FIGURE_CAPTIONS[key])}</figcaption></figure>"
        for key, paths in figures.items())
    warnings = "".join(f"<li>{esc(w)}</li>" for w in export.warnings) or "<li>none</li>"
    studies = ", ".join(sorted(export.answers["study"].unique()))
    question_types = ", ".join(q for q in QUESTION_TYPES if q in set(table["question_type"]))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>BLA Study — preference report</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; line-height: 1.45; }}
table {{ border-collapse: collapse; font-size: 0.85rem; margin: 1rem 0; }}
th, td {{ border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: right; }}
th {{ background: #f3f3f3; }} td:first-child, td:nth-child(2) {{ text-align: left; }}
figure {{ margin: 1.5rem 0; }} img {{ max-width: 100%; }} figcaption {{ font-size: 0.9rem; }}
code {{ background: #f3f3f3; padding: 0 0.2rem; }}
</style></head><body>
<h1>BLA Study — preference report</h1>
<p>Study: {esc(studies)}. Question types: {esc(question_types)}.</p>
<h2>Data</h2>
{_inputs_html(export)}
{_counts_html(selection)}
<h3>Warnings</h3><ul>{warnings}</ul>
<h2>Methods</h2>
<p>{esc(methods_paragraph(selection, table, options))}</p>
<h2>Results</h2>
{results}
<p>Machine-readable: <code>preferences.csv</code> (same rows, full precision).</p>
<h2>Figures</h2>
{figure_html}
<h2>Settings</h2>
<p>analysis {esc(__version__)}; seed {options.seed}; bootstrap replicates {options.n_boot};
confidence {options.confidence:g}; decimals {options.decimals};
include incomplete {options.include_incomplete}, excluded {options.include_excluded},
simulated {options.include_simulated}.</p>
</body></html>
"""


def _inputs_html(export: Export) -> str:
    """The two input files with their SHA-256, so a report can be traced to its data."""
    items = "".join(
        f"<li><code>{html.escape(path.name)}</code> — sha256 "
        f"<code>{hashlib.sha256(path.read_bytes()).hexdigest()}</code></li>"
        for path in (export.answers_path, export.participants_path))
    return f"<ul>{items}</ul>"


def _counts_html(selection: Selection) -> str:
    """Participants and answers in the files, counted, and left out per reason."""
    used_people = selection.answers.groupby(["study", "participant"]).ngroups
    rows = [("In the export files", selection.total_participants, selection.total_answers),
            ("Counted", len(selection.participants), len(selection.answers))]
    rows += [(f"Left out: {r.description}", r.participants, r.answers)
             for r in selection.left_out.itertuples()]
    body = "".join(f"<tr><td>{html.escape(label)}</td><td>{p}</td><td>{a}</td></tr>"
                   for label, p, a in rows)
    silent = len(selection.participants) - used_people
    note = (f"<p>{silent} counted participant(s) gave no answers; they appear in Figures "
            "8–11 only.</p>") if silent else ""
    return ("<table><thead><tr><th></th><th>Participants</th><th>Answers</th></tr></thead>"
            f"<tbody>{body}</tbody></table>{note}")


def _left_out_sentence(selection: Selection) -> str:
    """'3 participants excluded by the researcher, …' for an error message."""
    parts = [f"{r.participants} {r.description}" for r in selection.left_out.itertuples()
             if r.participants]
    return "; ".join(parts) or "no participants"
