"""The preference report: comparisons.csv / ranking.csv / comparisons.md for any comparisons of
methods, the paper's preferences.csv / .md and Figures 4 and 7 for its BLA-T comparisons,
participants_quality.csv, Figures 8–11, two data-quality figures, the ranking and preference-matrix
figures, and a self-contained report.html.

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
from typing import Callable, Collection

import pandas as pd

from analysis import __version__
from analysis.comparisons import comparison_table
from analysis.figures import render_figures
from analysis.io import Export, InputError, load_export
from analysis.percentages import DEFAULT_DECIMALS, WEIGHTED, format_shares
from analysis.quality import (
    QUALITY_COLUMNS,
    QualityThresholds,
    SampleChecks,
    participant_quality,
    sample_checks,
)
from analysis.ranking import MODEL_SENTENCE, Ranking, rank_methods
from analysis.selection import Inclusion, Selection
from analysis.statistics import (
    DEFAULT_BOOTSTRAP,
    DEFAULT_CONFIDENCE,
    MIN_INTERVAL_PARTICIPANTS,
    PREFERENCE_COLUMNS,
    PREFERENCE_PERCENTS,
    preference_numbers,
)
from analysis.vocabulary import COMPARISON_COLUMNS, RANKING_COLUMNS, contender_name

FIGURE_CAPTIONS: dict[str, str] = {
    "figure4": "Figure 4. User preference for explanations, pooled over datasets. Whiskers: "
               "bootstrap confidence interval of the BLA-T share (none where the table gives "
               "none).",
    "figure7": "Figure 7. User preference by dataset and question type.",
    "figure8": "Figure 8. Gender of the participants counted.",
    "figure9": "Figure 9. Age of the participants counted.",
    "figure10": "Figure 10. ML/AI experience of the participants counted.",
    "figure11": "Figure 11. XAI experience of the participants counted.",
    "side_a": "Side bias: each counted participant's share of decisive answers on System A, "
              "and the share over all their decisive answers with its participant-level "
              "bootstrap confidence interval.",
    "positions": "Fatigue and learning: share of the answers choosing the first method of "
                 "their comparison (BLA-T in the paper's) in each quarter of a "
                 "participant's sequence, with participant-level bootstrap confidence "
                 "intervals.",
    "ranking": "Ranking of the methods by human preference: Bradley–Terry strengths (Davidson's "
               "model with ties) with participant-cluster bootstrap confidence intervals.",
    "matrix": "Preference matrix: the share of the answers comparing two methods in which the row "
              "method was chosen ('equally reasonable' answers count in the total).",
}
QUALITY_FIGURES = ("side_a", "positions")
RANKING_FIGURES = ("ranking", "matrix")


@dataclass(frozen=True)
class ReportOptions(Inclusion):
    """Who counts (:class:`analysis.selection.Inclusion`) and how the statistics are computed."""

    quality: QualityThresholds = QualityThresholds()
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
    comparisons: pd.DataFrame
    ranking: Ranking
    selection: Selection
    quality: pd.DataFrame
    warnings: tuple[str, ...]


def build_report(answers_path: Path, participants_path: Path, out_dir: Path,
                 options: ReportOptions = ReportOptions(),
                 step: Callable[[str], None] = lambda name: None) -> ReportResult:
    """Read the export, compute the statistics, write every report file into ``out_dir``.

    ``step`` is called with the name of each stage as it starts (for progress display).
    """
    step("reading the export")
    export = load_export(answers_path, participants_path)
    selection = options.select(export)
    if selection.answers.empty:
        raise InputError(f"{answers_path}: no answers are left after the inclusion rules "
                         f"({left_out_sentence(selection)}); see --include-incomplete, "
                         "--include-excluded, --include-simulated and --keep-inattentive")
    step("computing statistics")
    numbers = preference_numbers(selection.answers, options.n_boot, options.seed,
                                 options.confidence)
    table = format_shares(numbers, PREFERENCE_PERCENTS, options.decimals)
    comparisons = comparison_table(selection.answers, options.n_boot, options.seed,
                                   options.confidence, options.decimals)
    ranking = rank_methods(selection.answers, options.n_boot, options.seed, options.confidence)
    quality = participant_quality(export, selection, options.quality, options.decimals)
    checks = sample_checks(selection, export.checks, options.n_boot, options.seed,
                           options.confidence)
    warnings = (export.warnings + selection.warnings() + tuple(checks.warnings())
                + ranking.warnings)
    def write(staging: Path) -> None:
        step("drawing figures")
        figures = render_figures(numbers, selection.participants, checks, ranking, staging,
                                 options.dataset_labels, options.decimals)
        step("writing the report")
        if not table.empty:  # the paper's BLA-T comparisons
            write_preferences_csv(table, staging / "preferences.csv")
            (staging / "preferences.md").write_text(preferences_markdown(table, options),
                                                    encoding="utf-8")
        comparisons.loc[:, list(COMPARISON_COLUMNS)].to_csv(staging / "comparisons.csv",
                                                            index=False, na_rep="")
        ranking.table.loc[:, list(RANKING_COLUMNS)].to_csv(staging / "ranking.csv",
                                                           index=False, na_rep="")
        (staging / "comparisons.md").write_text(
            comparisons_markdown(comparisons, ranking, options), encoding="utf-8")
        quality.loc[:, list(QUALITY_COLUMNS)].to_csv(staging / "participants_quality.csv",
                                                     index=False, na_rep="")
        (staging / "report.html").write_text(
            report_html(export, selection, table, comparisons, ranking, quality, checks,
                        figures, warnings, options), encoding="utf-8")
    out_dir = Path(out_dir)
    files = write_staged(out_dir, write)
    return ReportResult(out_dir, files, table, comparisons, ranking, selection, quality,
                        warnings)


def write_staged(out_dir: Path, write: Callable[[Path], None],
                 optional: Collection[str] = ()) -> list[Path]:
    """Run ``write(staging)`` in a fresh hidden folder inside ``out_dir`` (created if missing),
    then move each file it wrote into ``out_dir``: a failure leaves nothing half-written.

    ``optional`` names files a run writes only sometimes: an earlier run's copy that this run
    did not write is removed, so the folder never mixes two runs.
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".analysis-staging-", dir=out_dir))
    except (FileExistsError, NotADirectoryError):
        raise InputError(f"{out_dir}: not a folder (--out names the report folder)") from None
    except PermissionError:
        raise InputError(f"{out_dir}: no permission to write there") from None
    try:
        write(staging)
        files = []
        for path in sorted(staging.iterdir()):
            os.replace(path, out_dir / path.name)
            files.append(out_dir / path.name)
        for name in set(optional) - {path.name for path in files}:
            (out_dir / name).unlink(missing_ok=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return files


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
              "Equal", f"BLA-T share {level} CI", "p (sign-flip)", "p (sign-flip, Holm)",
              "p (sign test, participants)", "p (answers as independent)",
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
            format_p(r["p_value"]), format_p(r["p_value_holm"]),
            format_p(r["p_value_participants"]), format_p(r["p_value_answers_naive"]),
            "–" if math.isnan(r["cohens_h"]) else f"{r['cohens_h']:.2f}",
            r["difference_pct"], between,
        ])
    return rows


def markdown_table(rows: list[list[str]]) -> str:
    """A header row and data rows as a Markdown table."""
    lines = ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    lines.insert(1, "|" + "---|" * len(rows[0]))
    return "\n".join(lines)


def html_table(rows: list[list[str]]) -> str:
    """A header row and data rows as an HTML table (cells escaped)."""
    esc = html.escape
    return ("<table><thead><tr>" + "".join(f"<th>{esc(c)}</th>" for c in rows[0])
            + "</tr></thead><tbody>" + "".join(
                "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>"
                for row in rows[1:]) + "</tbody></table>")


def preferences_markdown(table: pd.DataFrame, options: ReportOptions) -> str:
    """preferences.md: the same rows as a Markdown table, with the rounding rule stated."""
    return ("# User preferences\n\n" + markdown_table(display_rows(table, options)) + "\n\n"
            + rounding_sentence(options.decimals) + " " + no_interval_sentence()
            + weighting_sentence(table) + "\n")


def comparison_rows(comparisons: pd.DataFrame, options: ReportOptions) -> list[list[str]]:
    """Header plus one readable row per comparisons.csv row."""
    level = f"{options.confidence * 100:g}%"
    rows = [["Dataset", "Question type", "Method 1", "Method 2", "Answers", "Participants",
             "Method 1", "Method 2", "Equal", f"Method 1 share {level} CI", "p (sign-flip)",
             "p (sign-flip, Holm)"]]
    for r in comparisons.itertuples():
        rows.append([
            options.dataset_labels.get(r.dataset, r.dataset), r.question_type,
            contender_name(r.method_1), contender_name(r.method_2), str(r.n_answers),
            str(r.n_participants), f"{r.method_1_count} ({r.method_1_pct}%)",
            f"{r.method_2_count} ({r.method_2_pct}%)", f"{r.equal} ({r.equal_pct}%)",
            f"{r.ci_low}–{r.ci_high}%" if r.ci_low != "" else "–",
            format_p(r.p_value), format_p(r.p_value_holm)])
    return rows


def ranking_rows(ranking: Ranking, options: ReportOptions) -> list[list[str]]:
    """Header plus one readable row per ranking.csv row."""
    level = f"{options.confidence * 100:g}%"

    def number(value: float) -> str:
        return "–" if pd.isna(value) else f"{value:.3f}"
    rows = [["Rank", "Method", "Strength θ", f"{level} CI", "Answers"]]
    for r in ranking.table.itertuples():
        rows.append(["–" if pd.isna(r.rank) else str(r.rank), contender_name(r.method),
                     number(r.strength),
                     "–" if pd.isna(r.ci_low) else f"{number(r.ci_low)} to {number(r.ci_high)}",
                     str(r.n_answers)])
    return rows


def ranking_paragraph(ranking: Ranking, options: ReportOptions) -> str:
    """How the ranking was made, with this report's numbers."""
    tie = "" if ranking.fit is None else f" The fitted tie parameter is ν = {ranking.fit.tie:.3f}."
    return (f"Across all comparisons the methods are ranked by {MODEL_SENTENCE}. A random-swap "
            "control of method m (m's map of another image) is a contender of its own, "
            f"random(m).{tie} The {options.confidence * 100:g}% intervals are percentiles of "
            f"a cluster bootstrap that resamples participants ({ranking.replicates} usable of "
            f"{options.n_boot} replicates, seed {options.seed}); replicates in which a "
            "comparison lost all its answers or the likelihood had no finite maximum are "
            "skipped. Rank 1 is the strongest; no ranks are given when the comparison graph "
            "is not connected.")


def comparisons_markdown(comparisons: pd.DataFrame, ranking: Ranking,
                         options: ReportOptions) -> str:
    """comparisons.md: every comparison, then the ranking, with how each was computed."""
    return ("# Comparisons\n\n" + markdown_table(comparison_rows(comparisons, options))
            + "\n\n" + comparisons_sentence(options) + " "
            + rounding_sentence(options.decimals) + weighting_sentence(comparisons)
            + "\n\n# Ranking\n\n"
            + markdown_table(ranking_rows(ranking, options)) + "\n\n"
            + ranking_paragraph(ranking, options) + "\n"
            + "".join(f"\nWarning: {w}\n" for w in ranking.warnings))


def comparisons_sentence(options: ReportOptions) -> str:
    """How the comparison rows were computed."""
    return (f"Each comparison {{method 1}}_vs_{{method 2}} has a pooled row (dataset 'all') and "
            "one per dataset: the method-1 share of all answers with a participant-cluster "
            f"bootstrap {options.confidence * 100:g}% interval, and the exact participant-level "
            "sign-flip test of method 1 against method 2, Holm-adjusted over the comparisons "
            f"of each dataset row. {no_interval_sentence()}")


def weighting_sentence(table: pd.DataFrame) -> str:
    """' Adaptive design: …' where ``table`` (comparisons or preferences) holds weighted counts,
    else ''."""
    if f"{WEIGHTED}n_answers" not in table.columns:
        return ""
    return (" Adaptive design: estimates inverse-probability weighted. Each answer counts with "
            "its design weight 1/(K·p) (answers.csv's design_weight: p the probability with which "
            "the design gave its comparison to the participant, K the comparisons), so shares, "
            "intervals, sign-flip tests (Monte Carlo over weighted per-participant differences) "
            "and the ranking estimate what a balanced study of the same participants would; "
            "answer counts are the answers given, percentages the weighted shares.")


def no_interval_sentence() -> str:
    """When a share has no interval ('–'), and why."""
    return (f"A share has no interval ('–') when fewer than {MIN_INTERVAL_PARTICIPANTS} "
            "participants answered it. Where every participant answered in the same proportions, "
            "resampling people shows no spread although the share is not certain; there the "
            "interval is the Wilson score interval of the answers.")


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
    if not options.keep_inattentive:
        who += (f", at most {selection.max_failed_checks} failed attention check(s) "
                f"({selection.max_failed_rule})")
    level = f"{options.confidence * 100:g}%"
    counted = (f"We counted {len(selection.answers)} answers of "
               f"{selection.answers.groupby(['study', 'participant']).ngroups} participants "
               f"({who}); attention-check items never count as answers.")
    if table.empty:  # none of the paper's BLA-T comparisons: comparisons and ranking only
        return f"{counted} {rounding_sentence(options.decimals)}"
    return (
        f"{counted} For the paper's BLA-T comparisons, per question type, pooled over "
        "datasets and per dataset, we report how often BLA-T, the other method, or 'equally "
        f"reasonable' was chosen. {rounding_sentence(options.decimals)} The {level} confidence "
        f"interval of the BLA-T share is a percentile interval from a cluster bootstrap with "
        f"{options.n_boot} replicates (seed {options.seed}): participants, not answers, are "
        "resampled with replacement, because the answers of one person are not independent. "
        "The headline test of BLA-T against the other method ('equally reasonable' answers "
        "excluded) is an exact participant-level sign-flip test: its statistic is the sum over "
        "participants of BLA-T answers minus other-method answers, and its null distribution "
        "gives each participant's difference a random sign. It assumes only that participants "
        "are independent of each other and that, without a preference in the population, a "
        "participant's difference is as likely positive as negative; people may differ in "
        "taste and one person's answers may depend on each other in any way. (For a null "
        "mean with skewed tastes it holds its level approximately, as a t-test on the "
        "per-participant differences would.) We preferred it to GEE with participant clusters, "
        "whose robust Wald test rejects a true null too often with few participants, and to a "
        "mixed-effects logistic model, which assumes normally distributed tastes on the logit "
        "scale. Headline p-values are Holm-adjusted over the question types of the report, "
        "separately for the pooled rows and for each dataset. We also give the exact sign test "
        "over participants (each participant counts once, for the method they chose more "
        "often; ties excluded), which tests the median participant rather than the pooled "
        "share, and, for comparison only, the exact binomial sign test over answers, which "
        "treats answers as independent and so overstates the evidence when people differ in "
        "taste. Effect sizes are Cohen's h of the BLA-T share among decisive answers against "
        "1/2 (0.2 small, 0.5 medium, 0.8 large) and the difference of the BLA-T and other "
        "shares in percentage points. Whether preferences differ between datasets is tested "
        "per question type with an adjusted Wald F test (Korn and Graubard) of equal BLA-T and "
        "other shares in all datasets, whose covariance is cluster-robust (a participant-level "
        "sandwich estimate); a Pearson chi-square test of the dataset × answer table would "
        "treat all answers as independent, although each participant answers several "
        "questions in every dataset. The between-datasets p-values are not adjusted."
    )


def quality_html(quality: pd.DataFrame, checks: SampleChecks, figures: dict[str, list[Path]],
                 options: ReportOptions) -> str:
    """The data-quality section: flag rules and counts, side bias, position trend, figures."""
    esc = html.escape
    counted = quality["counted"].to_numpy()
    flag_rows = "".join(
        f"<tr><td>{esc(name)}</td><td>{esc(rule)}</td>"
        f"<td>{int(quality['flags'].str.contains(name).sum())}</td>"
        f"<td>{int(quality.loc[counted, 'flags'].str.contains(name).sum())}</td></tr>"
        for name, rule in options.quality.flag_descriptions().items())
    given = int(quality["checks_given"].sum())
    checks_sentence = (
        f"{given} attention check(s) were given, {int(quality['checks_passed'].sum())} passed."
        if given else "The export has no attention checks.")
    low, high = checks.side_a_ci
    if math.isnan(low):
        verdict = "no interval (fewer than two participants): side bias untested."
    elif checks.warnings():
        verdict = "the interval excludes 50%: a side bias."
    else:
        verdict = "the interval includes 50%: no side bias detected."
    side = (f"System A was chosen in {percent_text(checks.side_a_share)} of the "
            f"{checks.decisive} decisive counted answers ({options.confidence * 100:g}% CI "
            f"{interval_text(low, high)}, participant-level bootstrap); {verdict}")
    quarters = "".join(
        f"<tr><td>{r.quarter}</td><td>{r.answers}</td><td>{r.method_1}</td>"
        f"<td>{percent_text(r.method_1_share)}</td>"
        f"<td>{interval_text(r.ci_low, r.ci_high)}</td></tr>"
        for r in checks.positions.itertuples())
    return (
        "<p>One row per participant in <code>participants_quality.csv</code>: answers, median "
        "response time, share of decisive answers on System A, longest run of one choice, "
        "attention checks passed of those given, and flags. Flags inform; only failed "
        "attention checks leave a participant out (see Data). "
        f"{esc(checks_sentence)}</p>"
        "<table><thead><tr><th>Flag</th><th>Rule</th><th>Participants</th><th>Of them counted"
        f"</th></tr></thead><tbody>{flag_rows}</tbody></table>"
        f"<p>{esc(side)}</p>"
        "<table><thead><tr><th>Quarter</th><th>Answers</th><th>Method 1</th><th>Method-1 share</th>"
        f"<th>{options.confidence * 100:g}% CI</th></tr></thead><tbody>{quarters}</tbody>"
        "</table>" + figures_html({key: figures[key] for key in QUALITY_FIGURES}))


def percent_text(share: float) -> str:
    """A share in [0, 1] as '12.3%', '–' when undefined (no decisive answers)."""
    return "–" if math.isnan(share) else f"{100 * share:.1f}%"


def interval_text(low: float, high: float) -> str:
    """An interval of shares as '12.3–45.6%', '–' when there is none."""
    return "–" if math.isnan(low) else f"{100 * low:.1f}–{100 * high:.1f}%"


def figures_html(figures: dict[str, list[Path]],
                 captions: dict[str, str] = FIGURE_CAPTIONS) -> str:
    """Each figure's PNG embedded as base64 with its caption (``captions`` by figure key)."""
    esc = html.escape
    return "".join(
        f'<figure><img alt="{esc(captions[key])}" src="data:image/png;base64,'
        f'{base64.b64encode(paths[0].read_bytes()).decode("ascii")}">'
        f"<figcaption>{esc(captions[key])}</figcaption></figure>"
        for key, paths in figures.items())


def report_html(export: Export, selection: Selection, table: pd.DataFrame,
                comparisons: pd.DataFrame, ranking: Ranking, quality: pd.DataFrame,
                checks: SampleChecks, figures: dict[str, list[Path]],
                warnings: tuple[str, ...], options: ReportOptions) -> str:
    """report.html with every figure embedded as base64 PNG, so the file stands alone."""
    esc = html.escape
    results = (html_table(display_rows(table, options))
               + "<p>Machine-readable: <code>preferences.csv</code> (same rows, full "
               "precision).</p>") if not table.empty else (
        "<p>The study has none of the paper's BLA-T comparisons; see Comparisons.</p>")
    figure_html = figures_html({key: paths for key, paths in figures.items()
                                if key not in QUALITY_FIGURES + RANKING_FIGURES})
    warning_items = "".join(f"<li>{esc(w)}</li>" for w in warnings) or "<li>none</li>"
    studies = ", ".join(sorted(export.answers["study"].unique()))
    question_types = ", ".join(dict.fromkeys(comparisons["question_type"]))
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
{inputs_html(export)}
{_counts_html(selection)}
<h3>Warnings</h3><ul>{warning_items}</ul>
<h2>Methods</h2>
<p>{esc(methods_paragraph(selection, table, options))}</p>
<p>{esc(comparisons_sentence(options) + weighting_sentence(comparisons))}</p>
<p>{esc(ranking_paragraph(ranking, options))}</p>
<h2>Comparisons</h2>
{html_table(comparison_rows(comparisons, options))}
<p>Machine-readable: <code>comparisons.csv</code> (same rows, full precision).</p>
<h2>Ranking</h2>
{html_table(ranking_rows(ranking, options))}
<p>Machine-readable: <code>ranking.csv</code>.</p>
{figures_html({key: figures[key] for key in RANKING_FIGURES})}
<h2>Results (the paper's BLA-T comparisons)</h2>
{results}
<h2>Figures</h2>
{figure_html}
<h2>Data quality</h2>
{quality_html(quality, checks, figures, options)}
<h2>Settings</h2>
<p>analysis {esc(__version__)}; seed {options.seed}; bootstrap replicates {options.n_boot};
confidence {options.confidence:g}; decimals {options.decimals};
include incomplete {options.include_incomplete}, excluded {options.include_excluded},
simulated {options.include_simulated}; keep inattentive {options.keep_inattentive},
max failed checks {selection.max_failed_checks} ({esc(selection.max_failed_rule)});
speeder below {options.quality.speeder_ms:g} ms,
straight-liner from {options.quality.straight_line_share:g} of answers.</p>
</body></html>
"""


def inputs_html(export: Export) -> str:
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
    if selection.counted_simulated:
        rows.append(("Counted, of them simulated (bots)", selection.counted_simulated,
                     selection.counted_simulated_answers))
    rows += [(f"Left out: {r.description}", r.participants, r.answers)
             for r in selection.left_out.itertuples()]
    body = "".join(f"<tr><td>{html.escape(label)}</td><td>{p}</td><td>{a}</td></tr>"
                   for label, p, a in rows)
    silent = len(selection.participants) - used_people
    note = (f"<p>{silent} counted participant(s) gave no answers; they appear in Figures "
            "8–11 only.</p>") if silent else ""
    return ("<table><thead><tr><th></th><th>Participants</th><th>Answers</th></tr></thead>"
            f"<tbody>{body}</tbody></table>{note}")


def left_out_sentence(selection: Selection) -> str:
    """'3 participants excluded by the researcher, …' for an error message."""
    parts = [f"{r.participants} {r.description}" for r in selection.left_out.itertuples()
             if r.participants]
    return "; ".join(parts) or "no participants"
