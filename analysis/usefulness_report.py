"""The usefulness report: usefulness.csv / .md, preference_usefulness.csv, figures (PNG and SVG)
and a self-contained usefulness.html, written atomically like the preference report.

With a preference export, each method's Bradley–Terry strength (analysis.ranking.rank_methods,
the preference report's ranking of the same participants' rules) is set beside its usefulness
scores, with Spearman's rank correlation across methods (scipy.stats.spearmanr) — descriptive:
with a handful of methods a rank correlation can neither show nor rule out a relation.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from analysis import __version__
from analysis.figures import _COLOURS, _STYLE, draw_interval, panel_grid, save_figure
from analysis.io import Export, InputError, load_export
from analysis.ranking import MODEL_SENTENCE, Ranking, rank_methods
from analysis.report import (
    inputs_html,
    left_out_sentence,
    figures_html,
    format_p,
    html_table,
    markdown_table,
    write_staged,
)
from analysis.selection import Inclusion, Selection
from analysis.statistics import DEFAULT_BOOTSTRAP, DEFAULT_CONFIDENCE, MIN_INTERVAL_PARTICIPANTS
from analysis.usefulness import (
    ACCURACY,
    ALL,
    CONFIDENCE,
    GAIN_DIFFERENCE,
    MATCHING,
    MODEL_CORRECT,
    MODEL_INCORRECT,
    NOT_MATCHING,
    POST,
    PRE,
    usefulness_table,
)
from analysis.usefulness_io import load_usefulness_export, tasks_of
from analysis.vocabulary import contender_name
from contracts.columns import (
    PREFERENCE_USEFULNESS_COLUMNS,
    RANK_CORRELATION_COLUMNS,
    USEFULNESS_COLUMNS,
)
from contracts.usefulness import AGREEMENT, DISTINCTION, FORWARD_SIMULATION, NO_EXPLANATION
from contracts.vocabulary import RANDOM_METHOD

# preference_usefulness.csv score column -> (task, measure, split) of usefulness.csv
SCORES: dict[str, tuple[str, str, str]] = {
    "distinction_accuracy": (DISTINCTION, ACCURACY, ALL),
    "agreement_accuracy": (AGREEMENT, ACCURACY, ALL),
    "agreement_accuracy_model_incorrect": (AGREEMENT, ACCURACY, MODEL_INCORRECT),
    "forward_simulation_gain_difference": (FORWARD_SIMULATION, GAIN_DIFFERENCE, ALL),
}
MIN_RANKED_METHODS = 3
PERMUTATIONS = 9999  # exact (every pairing) up to 7 methods
CAPTIONS = {
    "usefulness": "Usefulness per method: share of answers matching the model, pooled and by "
                  "whether the model was correct (distinction, agreement; dashed: chance), and "
                  "pre- and post-test accuracy per forward-simulation arm, with participant-"
                  "cluster bootstrap confidence intervals.",
    "calibration": "Calibration: mean confidence (1 guessing … 4 certain) of answers that "
                   "matched the model and of those that did not, per method (forward "
                   "simulation: post-test), with participant-cluster bootstrap intervals.",
    "preference_usefulness": "Preference (Bradley–Terry strength) against usefulness per "
                             "method, with Spearman's rank correlation (descriptive).",
}
STEMS = {"usefulness": "usefulness", "calibration": "usefulness_calibration",
         "preference_usefulness": "preference_usefulness"}
# Written only with --preference-export (a rerun without it removes an earlier run's).
BESIDE_FILES = ("preference_usefulness.csv", "rank_correlations.csv",
                "preference_usefulness.png", "preference_usefulness.svg")
SPLIT_NAMES = {ALL: "all trials", MODEL_CORRECT: "model correct",
               MODEL_INCORRECT: "model incorrect", PRE: "pre-test", POST: "post-test",
               MATCHING: "matching", NOT_MATCHING: "not matching"}


@dataclass(frozen=True)
class UsefulnessOptions(Inclusion):
    """Who counts (as in the preference report) and how the statistics are computed."""

    n_boot: int = DEFAULT_BOOTSTRAP
    seed: int = 0
    confidence: float = DEFAULT_CONFIDENCE


@dataclass(frozen=True)
class UsefulnessResult:
    """What was written, and the numbers behind it."""

    out_dir: Path
    files: list[Path]
    table: pd.DataFrame
    beside: pd.DataFrame | None
    correlations: pd.DataFrame | None
    selection: Selection
    warnings: tuple[str, ...]


def preference_beside(table: pd.DataFrame, ranking: Ranking) -> tuple[pd.DataFrame, pd.DataFrame]:
    """preference_usefulness.csv (one row per method of either side) and the Spearman rank
    correlation of strength with each usefulness score over the methods that have both."""
    ranked = ranking.table.set_index("method")
    contenders = {m for m in ranked.index if not str(m).startswith(f"{RANDOM_METHOD}(")}
    methods = sorted((set(table["method"]) - {NO_EXPLANATION}) | contenders)
    beside = pd.DataFrame({"method": methods})
    for column, source in (("preference_strength", "strength"), ("preference_ci_low", "ci_low"),
                           ("preference_ci_high", "ci_high"), ("preference_rank", "rank")):
        beside[column] = ranked[source].reindex(methods).to_numpy()
    for column, (task, measure, split) in SCORES.items():
        rows = table[(table["task"] == task) & (table["measure"] == measure)
                     & (table["split"] == split)].set_index("method")["estimate"]
        beside[column] = rows.reindex(methods).to_numpy(dtype=float)
    beside["preference_rank"] = beside["preference_rank"].astype("Int64")
    correlations = [{"score": column, "n_methods": len(both),
                     **rank_correlation(both["preference_strength"].to_numpy(),
                                        both[column].to_numpy())}
                    for column in SCORES
                    for both in [beside[["preference_strength", column]].astype(float).dropna()]]
    return (beside.loc[:, list(PREFERENCE_USEFULNESS_COLUMNS)],
            pd.DataFrame(correlations, columns=list(RANK_CORRELATION_COLUMNS)))


def rank_correlation(x: np.ndarray, y: np.ndarray) -> dict:
    """Spearman's ρ of x and y with its exact two-sided permutation p (all pairings up to 7
    methods; scipy.stats), and a note that says how little a few methods can show."""
    n = len(x)
    empty = {"spearman_rho": math.nan, "p_value": math.nan}
    if n < MIN_RANKED_METHODS:
        return {**empty, "note": f"fewer than {MIN_RANKED_METHODS} methods have both: "
                                 "too few for a rank correlation"}
    if min(len(set(x)), len(set(y))) < 2:
        return {**empty, "note": "every method has the same value: no rank correlation"}

    def rho(a: np.ndarray) -> float:
        return stats.spearmanr(a, y).statistic
    result = stats.permutation_test((x,), rho, permutation_type="pairings", vectorized=False,
                                    n_resamples=PERMUTATIONS, rng=np.random.default_rng(0))
    smallest = 2.0 / math.factorial(n)
    note = (f"only {n} methods: descriptive; no p-value can fall below {smallest:.3f}"
            if smallest > 0.05 else f"{n} methods: descriptive, little power")
    return {"spearman_rho": float(result.statistic), "p_value": float(result.pvalue),
            "note": note}


def arm_name(method: str) -> str:
    """A method's display name; the forward-simulation control arm reads as such."""
    return "none (control)" if method == NO_EXPLANATION else contender_name(method)


def draw_points(ax, rows: pd.DataFrame, splits: tuple[str, ...], reference: float | None,
                ylabel: str) -> None:
    """Per method (x), one marker with its interval per split; a dashed reference line."""
    methods = list(dict.fromkeys(rows["method"]))
    width = 0.6 / max(len(splits), 1)
    for k, split in enumerate(splits):
        part = rows[rows["split"] == split].set_index("method").reindex(methods)
        x = np.arange(len(methods)) + (k - (len(splits) - 1) / 2) * width
        colour = _COLOURS[k % len(_COLOURS)]
        ax.plot(x, part["estimate"].to_numpy(float), "o", color=colour,
                label=SPLIT_NAMES.get(split, split))
        for position, low, high in zip(x, part["ci_low"].to_numpy(float),
                                       part["ci_high"].to_numpy(float)):
            draw_interval(ax, position, low, high, color=colour, capsize=3)
    if reference is not None and math.isfinite(reference):
        ax.axhline(reference, color="black", linestyle="--", linewidth=0.8)
    ax.set_xticks(range(len(methods)), [arm_name(m) for m in methods], rotation=30,
                  ha="right")
    ax.set_xlim(-0.6, len(methods) - 0.4)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)


def task_panels(table: pd.DataFrame, measure: str, ylabel: str, limits: tuple[float, float],
                title: str) -> Figure:
    """One panel per task of ``measure`` rows (accuracy, or confidence)."""
    tasks = [t for t in (DISTINCTION, AGREEMENT, FORWARD_SIMULATION) if t in set(table["task"])]
    fig, axes = panel_grid(1, max(len(tasks), 1), width=2.8, height=2.4)
    for ax, task in zip(axes[0], tasks):
        rows = table[(table["task"] == task) & (table["measure"] == measure)]
        splits = tuple(s for s in SPLIT_NAMES if s in set(rows["split"]))
        reference = None
        if measure == ACCURACY and task != FORWARD_SIMULATION:
            reference = float(rows["reference"].astype(float).mean())
        draw_points(ax, rows, splits, reference, ylabel)
        ax.set_ylim(*limits)
        ax.set_title(task.replace("_", " "), fontsize=9)
    fig.suptitle(title)
    return fig


def preference_figure(beside: pd.DataFrame, correlations: pd.DataFrame) -> Figure:
    """One scatter per usefulness score present: strength (x) against the score (y)."""
    present = [c for c in SCORES if beside[c].notna().any()] or list(SCORES)[:1]
    fig, axes = panel_grid(1, len(present), width=2.6, height=2.3)
    for ax, column in zip(axes[0], present):
        both = beside[["method", "preference_strength", column]].dropna()
        ax.plot(both["preference_strength"], both[column], "o", color=_COLOURS[0])
        for r in both.itertuples():
            ax.annotate(contender_name(r.method), (r.preference_strength, getattr(r, column)),
                        fontsize=7, textcoords="offset points", xytext=(4, 3))
        found = correlations.set_index("score").loc[column]
        rho = ("ρ undefined" if math.isnan(found["spearman_rho"])
               else f"ρ = {found['spearman_rho']:.2f}")
        ax.set_title(f"{column.replace('_', ' ')}\n{rho} ({int(found['n_methods'])} methods)",
                     fontsize=8)
        ax.set_xlabel("Preference strength θ")
        ax.margins(x=0.3, y=0.15)
        ax.spines[["top", "right"]].set_visible(False)
    fig.suptitle("Preference beside usefulness (descriptive)")
    return fig


def render(table: pd.DataFrame, beside: pd.DataFrame | None, correlations: pd.DataFrame | None,
           folder: Path) -> dict[str, list[Path]]:
    """Draw the figures into ``folder`` as PNG and SVG; return their paths by key."""
    with matplotlib.rc_context(_STYLE):
        figures = {
            "usefulness": task_panels(table, ACCURACY, "Share matching the model", (0, 1.05),
                                      "Usefulness of the explanations"),
            "calibration": task_panels(table, CONFIDENCE, "Mean confidence", (1, 4.2),
                                       "Confidence when matching the model or not"),
        }
        if beside is not None:
            figures["preference_usefulness"] = preference_figure(beside, correlations)
        return {key: save_figure(fig, folder, STEMS[key]) for key, fig in figures.items()}


def number(value: float, digits: int = 3) -> str:
    """A number for reading, '–' when undefined."""
    return "–" if value is None or pd.isna(value) else f"{float(value):.{digits}f}"


def table_rows(table: pd.DataFrame, confidence: float) -> list[list[str]]:
    """Header plus one readable row per usefulness.csv row."""
    rows = [["Task", "Method / arm", "Measure", "Split", "Participants", "Trials", "Estimate",
             f"{confidence * 100:g}% CI", "Reference", "p", "p (Holm)", "Note"]]
    for r in table.itertuples():
        interval = "–" if pd.isna(r.ci_low) else f"{number(r.ci_low)} to {number(r.ci_high)}"
        rows.append([r.task, arm_name(r.method), r.measure, r.split, str(r.n_participants),
                     str(r.n_trials), number(r.estimate), interval, number(r.reference),
                     format_p(r.p_value), format_p(r.p_value_holm), r.note])
    return rows


def beside_rows(beside: pd.DataFrame, correlations: pd.DataFrame) -> tuple[list, list]:
    """Readable rows of preference_usefulness.csv and of the rank correlations."""
    rows = [["Method", "Preference rank", "Strength θ", *[c.replace("_", " ") for c in SCORES]]]
    for r in beside.itertuples():
        rows.append([contender_name(r.method), "–" if pd.isna(r.preference_rank)
                     else str(r.preference_rank), number(r.preference_strength),
                     *[number(getattr(r, c)) for c in SCORES]])
    ranks = [["Score", "Methods", "Spearman ρ", "p", "Note"]]
    for r in correlations.itertuples():
        ranks.append([r.score.replace("_", " "), str(r.n_methods), number(r.spearman_rho),
                      format_p(r.p_value), r.note])
    return rows, ranks


def methods_text(options: UsefulnessOptions, selection: Selection) -> str:
    """How the numbers were computed, with this report's settings."""
    level = f"{options.confidence * 100:g}%"
    people = selection.answers.groupby(["study", "participant"]).ngroups
    left_out = left_out_sentence(selection) if selection.left_out["participants"].any() else "none"
    return (
        f"We counted {len(selection.answers)} answered trials of {people} participants (the "
        "preference report's inclusion rules; learning trials and attention checks never count; "
        f"left out: {left_out}). "
        "'Matching' means the answer matches the model's prediction (contracts.usefulness."
        f"matches_model), never the true label. Each {level} interval is a percentile cluster "
        f"bootstrap that resamples participants ({options.n_boot} replicates, seed "
        f"{options.seed}); forward-simulation arms are resampled separately, and a comparison "
        "with the control arm 'none' combines independent replicates of both arms. A share has "
        f"no interval with fewer than {MIN_INTERVAL_PARTICIPANTS} participants and the Wilson "
        "interval where every participant answered alike. Accuracy is tested against chance "
        "(1/k panels, 1/2) and 'says correct' against the share of correct predictions by an "
        "exact participant-level sign-flip test of each participant's excess (with k > 2 panels "
        "it assumes that excess is symmetric under chance); the gain post − "
        "pre and the confidence difference by a sign-flip test of each participant's paired "
        "difference; an arm against the control by a permutation test of the arm labels of "
        f"participants ({options.n_boot} permutations; the utility ratio's test is that of equal "
        "post-test accuracy). p-values are Holm-adjusted across the methods (arms) of each task, "
        "measure and split. The utility ratio is the arm's post-test accuracy over the "
        "control's (Colin, Fel et al. 2022).")


def markdown(table: pd.DataFrame, beside: pd.DataFrame | None,
             correlations: pd.DataFrame | None, selection: Selection, warnings: tuple[str, ...],
             options: UsefulnessOptions) -> str:
    """usefulness.md: the table, the preference comparison, how it was computed, warnings."""
    text = ("# Usefulness\n\n" + markdown_table(table_rows(table, options.confidence)) + "\n\n"
            + methods_text(options, selection) + "\n")
    if beside is not None:
        rows, ranks = beside_rows(beside, correlations)
        text += ("\n# Preference beside usefulness\n\n" + markdown_table(rows) + "\n\n"
                 + markdown_table(ranks) + "\n\n" + correlation_sentence() + "\n")
    return text + "".join(f"\nWarning: {w}\n" for w in warnings)


def correlation_sentence() -> str:
    """How the preference ranking is set beside usefulness, and how far to trust it."""
    return (f"Preference strength is {MODEL_SENTENCE}, fitted to the preference export's "
            "counted answers. Spearman's ρ ranks the methods that have both a strength and the "
            "score, with the exact permutation p-value of all pairings of the methods "
            f"(scipy.stats.permutation_test; sampled {PERMUTATIONS} times above 7 methods). With "
            "a few methods it is descriptive: with k methods no p-value falls below 2/k! "
            "(0.33 for 3, 0.083 for 4), and no ρ is given below "
            f"{MIN_RANKED_METHODS} methods.")


def report_html(export: Export, table: pd.DataFrame, beside: pd.DataFrame | None,
                correlations: pd.DataFrame | None, figures: dict[str, list[Path]],
                selection: Selection, warnings: tuple[str, ...],
                options: UsefulnessOptions) -> str:
    """usefulness.html with the figures embedded, so the file stands alone."""
    esc = html.escape
    captions = {key: CAPTIONS[key] for key in figures}
    embedded = figures_html(figures, captions)
    preference = ""
    if beside is not None:
        rows, ranks = beside_rows(beside, correlations)
        preference = (f"<h2>Preference beside usefulness</h2>{html_table(rows)}"
                      f"{html_table(ranks)}<p>{esc(correlation_sentence())}</p>")
    items = "".join(f"<li>{esc(w)}</li>" for w in warnings) or "<li>none</li>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>BLA Study — usefulness report</title>
<style>body {{ font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto;
padding: 0 1rem; color: #222; }} table {{ border-collapse: collapse; font-size: 0.85rem; }}
th, td {{ border: 1px solid #ccc; padding: 0.25rem 0.5rem; }} img {{ max-width: 100%; }}</style>
</head><body><h1>BLA Study — usefulness report</h1>
<p>{esc(methods_text(options, selection))}</p>
<h2>Input files</h2>{inputs_html(export)}
<h2>Results</h2>{html_table(table_rows(table, options.confidence))}
<p>Machine-readable: <code>usefulness.csv</code> (same rows, full precision).</p>
{embedded}{preference}<h2>Warnings</h2><ul>{items}</ul>
<p>analysis {esc(__version__)}</p></body></html>
"""


def build_usefulness_report(trials_path: Path, participants_path: Path, out_dir: Path,
                            options: UsefulnessOptions = UsefulnessOptions(),
                            preference_dir: Path | None = None) -> UsefulnessResult:
    """Read the export(s), compute the statistics, write every file into ``out_dir``."""
    export = load_usefulness_export(trials_path, participants_path)
    tasks_of(export)
    selection = options.select(export)
    if selection.answers.empty:
        raise InputError(f"{trials_path}: no answered trials are left after the inclusion rules "
                         f"({left_out_sentence(selection)}); see --include-incomplete, "
                         "--include-excluded, --include-simulated and --keep-inattentive")
    table = usefulness_table(selection.answers, options.n_boot, options.seed, options.confidence)
    warnings = export.warnings + selection.warnings()
    beside = correlations = None
    if preference_dir is not None:
        ranking = preference_ranking(Path(preference_dir), options)
        beside, correlations = preference_beside(table, ranking)
        warnings += ranking.warnings

    def write(staging: Path) -> None:
        figures = render(table, beside, correlations, staging)
        table.loc[:, list(USEFULNESS_COLUMNS)].to_csv(staging / "usefulness.csv", index=False,
                                                      na_rep="")
        if beside is not None:
            beside.to_csv(staging / "preference_usefulness.csv", index=False, na_rep="")
            correlations.to_csv(staging / "rank_correlations.csv", index=False, na_rep="")
        (staging / "usefulness.md").write_text(
            markdown(table, beside, correlations, selection, warnings, options), encoding="utf-8")
        (staging / "usefulness.html").write_text(
            report_html(export, table, beside, correlations, figures, selection, warnings,
                        options),
            encoding="utf-8")
    out_dir = Path(out_dir)
    files = write_staged(out_dir, write, BESIDE_FILES)
    return UsefulnessResult(out_dir, files, table, beside, correlations, selection, warnings)


def preference_ranking(folder: Path, options: UsefulnessOptions) -> Ranking:
    """rank_methods of the preference export's answers counted by the same rules."""
    export = load_export(folder / "answers.csv", folder / "participants.csv")
    answers = options.select(export).answers
    if answers.empty:
        raise InputError(f"{folder / 'answers.csv'}: no preference answers are left after the "
                         "inclusion rules")
    return rank_methods(answers, options.n_boot, options.seed, options.confidence)
