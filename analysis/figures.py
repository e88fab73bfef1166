"""The paper's Figures 4 and 7–11, drawn with matplotlib's object API on the Agg canvas.

Preference bars show relative frequencies; every bar carries its percentage, printed by the
same rule as ``preferences.csv`` (:mod:`analysis.percentages`), and the BLA-T bar a whisker
for its bootstrap confidence interval. Demographic figures show counts of the participants
the analysis counted. Two data-quality figures show the side-A share of decisive answers and
the method-1 share by quarter of the sequence. For any study, the ranking figure draws every
method's Bradley–Terry strength with its bootstrap interval, and the preference matrix each
method's share of the answers against every other (rounded like the CSVs). Figures 4 and 7 are
drawn only when the study has the paper's BLA-T comparisons. Each figure is written as PNG and
as SVG (text kept as text).
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from analysis.percentages import DEFAULT_DECIMALS, WEIGHTED, format_percent
from analysis.quality import SampleChecks
from analysis.ranking import Ranking
from analysis.vocabulary import (
    EQUAL_NAME,
    EXPERIENCE_LABELS,
    GENDERS,
    NOT_GIVEN,
    QUESTION_TYPES,
    contender_name,
    other_method_name,
)

FIGURE_STEMS: dict[str, str] = {
    "figure4": "figure4_preferences",
    "figure7": "figure7_preferences_by_dataset",
    "figure8": "figure8_gender",
    "figure9": "figure9_age",
    "figure10": "figure10_ml_experience",
    "figure11": "figure11_xai_experience",
    "side_a": "quality_side_a",
    "positions": "quality_positions",
    "ranking": "ranking_strengths",
    "matrix": "preference_matrix",
}
_STYLE = {"svg.fonttype": "none", "svg.hashsalt": "bla-study", "font.size": 9}
_COLOURS = ("#1f77b4", "#ff7f0e", "#7f7f7f")
_DPI = 150
_MAX_AGE_POINTS = 300  # above this Figure 9 shows the box plot alone
# Fixed margins in inches (constrained layout costs more than all drawing at 10,000 people).
_LEFT, _RIGHT, _GAP, _TITLE, _BOTTOM, _SUPTITLE = 0.75, 0.2, 0.6, 0.55, 0.6, 0.35


def panel_grid(rows: int, cols: int, width: float = 2.45, height: float = 2.2,
               suptitle: bool = True):
    """A figure of rows × cols axes, each ``width`` × ``height`` inches, with fixed margins."""
    top = _SUPTITLE if suptitle else 0.0
    fig_width = _LEFT + cols * width + (cols - 1) * _GAP + _RIGHT
    fig_height = top + rows * (_TITLE + height + _BOTTOM)
    fig = Figure(figsize=(fig_width, fig_height))
    axes = fig.subplots(rows, cols, squeeze=False, gridspec_kw={
        "left": _LEFT / fig_width, "right": 1 - _RIGHT / fig_width,
        "wspace": _GAP / width, "top": 1 - (top + _TITLE) / fig_height,
        "bottom": _BOTTOM / fig_height, "hspace": (_TITLE + _BOTTOM) / height})
    return fig, axes


def panel_title(question_type: str, other_methods: str) -> str:
    """'BLA-T vs. CAM' for a question type, naming the methods actually shown."""
    return f"BLA-T vs. {other_method_name(set(other_methods.split('+')))}"


def draw_interval(ax, position: float, low: float, high: float, horizontal: bool = False,
                  **style) -> None:
    """A whisker from ``low`` to ``high`` at ``position`` (nothing when undefined).

    Drawn from its two ends, not as distances from a point, so an interval that does not contain
    its point estimate (possible for a percentile bootstrap) is drawn where it lies.
    """
    if not (np.isfinite(low) and np.isfinite(high)):
        return
    middle, half = (low + high) / 2, max(high - low, 0.0) / 2
    style = {"color": "black", "capsize": 4, "linewidth": 1, **style}
    if horizontal:
        ax.errorbar([middle], [position], xerr=[half], fmt="none", **style)
    else:
        ax.errorbar([position], [middle], yerr=[half], fmt="none", **style)


def draw_preference_panel(ax, row: pd.Series, title: str,
                          decimals: int = DEFAULT_DECIMALS) -> float:
    """Bars BLA-T / other / equal as relative frequencies with percentage labels, from the
    unrounded row of :func:`analysis.statistics.preference_numbers`; the whisker is the BLA-T
    share's interval in percent (none where the table gives none).

    Returns the height the panel needs, so that a figure can give all panels one y scale.
    """
    n = row["n_answers"]
    total = row.get(f"{WEIGHTED}n_answers", n)  # an adaptive design's weighted sums, if any
    counts = [row.get(f"{WEIGHTED}{column}", row[column]) for column in ("bla_t", "other", "equal")]
    heights = np.array(counts, dtype=float) / total
    labels = ["BLA-T", other_method_name(set(row["other_methods"].split("+"))),
              EQUAL_NAME.replace(" ", "\n")]
    bars = ax.bar(labels, heights, color=_COLOURS, width=0.65)
    low, high = float(row["ci_low"]) / 100, float(row["ci_high"]) / 100
    draw_interval(ax, 0, low, high)
    tops = heights.copy()
    if np.isfinite(high):
        tops[0] = max(tops[0], high)
    for bar, top, count in zip(bars, tops, counts):
        ax.text(bar.get_x() + bar.get_width() / 2, top + 0.015,
                f"{format_percent(count, total, decimals)}%", ha="center", va="bottom")
    ax.set_title(f"{title}\n(n = {n} answers, {row['n_participants']} participants)",
                 fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    return min(1.12, max(0.5, float(tops.max()) + 0.12))


def share_y_scale(axes, tops: list[float]) -> None:
    """One y range for every panel, so bar heights compare across panels as in the paper."""
    for ax in axes:
        ax.set_ylim(0, max(tops, default=1.0))


def figure4(table: pd.DataFrame, decimals: int = DEFAULT_DECIMALS) -> Figure:
    """One panel per question type, pooled over datasets (the paper's Figure 4)."""
    pooled = table[table["dataset"] == "all"].reset_index(drop=True)
    fig, axes = panel_grid(1, max(len(pooled), 1))
    axes = axes[0]
    tops = [draw_preference_panel(ax, row, panel_title(row["question_type"], row["other_methods"]),
                                  decimals)
            for ax, (_, row) in zip(axes, pooled.iterrows())]
    share_y_scale(axes, tops)
    axes[0].set_ylabel("Relative frequency")
    fig.suptitle("User preference for explanations")
    return fig


def figure7(table: pd.DataFrame, dataset_labels: dict[str, str],
            decimals: int = DEFAULT_DECIMALS) -> Figure:
    """One panel per question type (rows) × dataset (columns) (the paper's Figure 7)."""
    cells = table[table["dataset"] != "all"]
    question_types = [q for q in QUESTION_TYPES if q in set(cells["question_type"])]
    datasets = list(dict.fromkeys(cells["dataset"]))
    fig, axes = panel_grid(max(len(question_types), 1), max(len(datasets), 1))
    tops = []
    for i, question_type in enumerate(question_types):
        for j, dataset in enumerate(datasets):
            ax = axes[i, j]
            found = cells[(cells["question_type"] == question_type)
                          & (cells["dataset"] == dataset)]
            name = dataset_labels.get(dataset, dataset)
            if found.empty:
                ax.set_axis_off()
                ax.set_title(f"{name}: no answers", fontsize=9)
                continue
            row = found.iloc[0]
            tops.append(draw_preference_panel(
                ax, row, f"{name}: {panel_title(question_type, row['other_methods'])}", decimals))
        axes[i, 0].set_ylabel("Relative frequency")
    share_y_scale(axes.ravel(), tops)
    fig.suptitle("User preference by dataset")
    return fig


def count_figure(values: pd.Series, order: Sequence[str], title: str, xlabel: str) -> Figure:
    """Bar chart of how many participants gave each answer, in ``order`` (others appended)."""
    counts = values.value_counts()
    categories = [c for c in order if c != NOT_GIVEN or c in counts.index]
    categories += sorted(c for c in counts.index if c not in categories)
    heights = [int(counts.get(c, 0)) for c in categories]
    fig, axes = panel_grid(1, 1, width=max(2.5, 0.85 * len(categories)), suptitle=False)
    ax = axes[0, 0]
    bars = ax.bar([textwrap.fill(c.capitalize(), 11) for c in categories], heights,
                  color=_COLOURS[0])
    ax.bar_label(bars, labels=[str(h) for h in heights], padding=2)
    ax.set_ylim(0, max(heights + [1]) * 1.15)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("Participants")
    ax.set_xlabel(xlabel)
    ax.set_title(f"{title} (n = {len(values)})", fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def age_figure(ages: pd.Series) -> Figure:
    """Box plot of participants' ages, with every participant as a point when few (Figure 9)."""
    given = ages.dropna().astype(float).to_numpy()
    fig, axes = panel_grid(1, 1, width=2.2, height=2.6, suptitle=False)
    ax = axes[0, 0]
    if given.size:
        ax.boxplot(given, widths=0.5, showfliers=given.size > _MAX_AGE_POINTS)
        if given.size <= _MAX_AGE_POINTS:
            jitter = np.random.default_rng(0).uniform(-0.12, 0.12, size=given.size)
            ax.scatter(1 + jitter, given, s=8, alpha=0.6, color=_COLOURS[0], zorder=3)
        median = np.median(given)
        ax.set_title(f"Age\n(n = {given.size}, median {median:g}"
                     f"{f', {len(ages) - given.size} not given' if len(ages) > given.size else ''})",
                     fontsize=10)
    else:
        ax.text(0.5, 0.5, "no ages given", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(f"Age (n = {len(ages)})", fontsize=10)
    ax.set_xticks([])
    ax.set_ylabel("Age [yrs]")
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def side_a_figure(checks: SampleChecks) -> Figure:
    """Histogram of participants' side-A shares, with the pooled share, its CI and 1/2."""
    fig, axes = panel_grid(1, 1, width=3.2, height=2.2, suptitle=False)
    ax = axes[0, 0]
    ax.hist(checks.participant_side_a, bins=np.linspace(0, 1, 11), color=_COLOURS[0],
            alpha=0.8, label="participants")
    low, high = checks.side_a_ci
    if np.isfinite(low):
        ax.axvspan(low, high, color=_COLOURS[1], alpha=0.3,
                   label=f"{checks.confidence * 100:g}% CI")
    ax.axvline(checks.side_a_share, color=_COLOURS[1], label="all answers")
    ax.axvline(0.5, color="black", linestyle="--", linewidth=1, label="no side bias")
    ax.set_xlim(0, 1)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("Share of decisive answers on System A")
    ax.set_ylabel("Participants")
    ax.set_title(f"Side A: {100 * checks.side_a_share:.1f}% of {checks.decisive} "
                 "decisive answers", fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def positions_figure(checks: SampleChecks) -> Figure:
    """Method-1 share of answers in each quarter of the sequence, with CI whiskers."""
    fig, axes = panel_grid(1, 1, width=3.2, height=2.2, suptitle=False)
    ax = axes[0, 0]
    rows = checks.positions
    share = rows["method_1_share"].to_numpy()
    ax.plot(rows["quarter"], share, marker="o", color=_COLOURS[0], linewidth=1)
    for quarter, low, high in zip(rows["quarter"], rows["ci_low"], rows["ci_high"]):
        draw_interval(ax, quarter, low, high, color=_COLOURS[0])
    for quarter, value, n in zip(rows["quarter"], share, rows["answers"]):
        ax.annotate(f"{100 * value:.1f}%\n(n = {n})", (quarter, value), fontsize=7,
                    textcoords="offset points", xytext=(8, -4))
    ax.set_xticks(range(1, 5), ["1st", "2nd", "3rd", "4th"])
    ax.set_xlim(0.5, 4.9)
    ax.set_ylim(0, 1)
    ax.set_xlabel("Quarter of each participant's sequence")
    ax.set_ylabel("Method-1 share of answers")
    ax.set_title("Method 1 (BLA-T in the paper) by position", fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def labelled_axes(width: float, height: float, left_chars: int, bottom_chars: int = 0,
                  right: float = _RIGHT):
    """One axes of ``width`` × ``height`` inches with room for tick labels of that many
    characters on the left (and, rotated 45°, below)."""
    left = 0.25 + 0.07 * left_chars
    bottom = _BOTTOM + 0.05 * bottom_chars
    fig = Figure(figsize=(left + width + right, _TITLE + height + bottom))
    ax = fig.add_axes((left / fig.get_figwidth(), bottom / fig.get_figheight(),
                       width / fig.get_figwidth(), height / fig.get_figheight()))
    return fig, ax


def ranking_figure(ranking: Ranking) -> Figure:
    """Each method's strength (log scale of Bradley–Terry) with its CI, strongest on top."""
    rows = ranking.table
    ranks = rows["rank"].astype(object).where(rows["rank"].notna(), "–")
    labels = [f"{r}. {contender_name(m)}" for r, m in zip(ranks, rows["method"])]
    fig, ax = labelled_axes(3.6, max(1.0, 0.3 * len(rows)), max(map(len, labels)))
    y = np.arange(len(rows))[::-1]
    strength = rows["strength"].to_numpy(dtype=float)
    if np.isfinite(strength).any():
        ax.plot(strength, y, "o", color=_COLOURS[0])
        for position, low, high in zip(y, rows["ci_low"].to_numpy(float),
                                       rows["ci_high"].to_numpy(float)):
            draw_interval(ax, position, low, high, horizontal=True, color=_COLOURS[0], capsize=3)
        ax.axvline(0.0, color="black", linestyle="--", linewidth=0.8)
    else:
        ax.text(0.5, 0.5, "no finite maximum-likelihood\nstrengths (see warnings)",
                ha="center", va="center", transform=ax.transAxes)
    ax.set_yticks(y, labels)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_xlabel("Strength θ (log scale; 0 = mean of the methods)")
    ax.set_title(f"Ranking (Bradley–Terry with ties, {ranking.replicates} bootstrap "
                 "replicates)", fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def matrix_figure(ranking: Ranking, decimals: int = DEFAULT_DECIMALS) -> Figure:
    """Method × method: share of their answers in which the row method was chosen."""
    order = list(ranking.table["method"])
    chosen = ranking.chosen.loc[order, order].to_numpy()
    answered = ranking.answered.loc[order, order].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(answered > 0, chosen / answered, np.nan)
    names = [contender_name(m) for m in order]
    size = max(1.6, 0.6 * len(order))
    longest = max(map(len, names))
    fig, ax = labelled_axes(size, size, longest, longest, right=1.0)
    image = ax.imshow(np.ma.masked_invalid(shares), cmap="RdBu", vmin=0.0, vmax=1.0)
    for (i, j), value in np.ndenumerate(shares):
        if answered[i, j]:
            ax.text(j, i, f"{format_percent(chosen[i, j], answered[i, j], decimals)}%",
                    ha="center", va="center", fontsize=7,
                    color="white" if abs(value - 0.5) > 0.3 else "black")
    ax.set_xticks(range(len(order)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(order)), names)
    ax.set_title("Share of answers preferring the row method", fontsize=9)
    box = ax.get_position()
    bar = fig.add_axes((box.x1 + 0.15 / fig.get_figwidth(), box.y0,
                        0.12 / fig.get_figwidth(), box.height))
    fig.colorbar(image, cax=bar)
    return fig


def render_figures(table: pd.DataFrame, participants: pd.DataFrame, checks: SampleChecks,
                   ranking: Ranking, folder: Path,
                   dataset_labels: dict[str, str] | None = None,
                   decimals: int = DEFAULT_DECIMALS) -> dict[str, list[Path]]:
    """Draw Figures 4 and 7 (BLA-T studies only; ``table`` is the unrounded
    :func:`analysis.statistics.preference_numbers`), 8–11, the two data-quality figures, the
    ranking and the preference matrix into ``folder`` as PNG and SVG; return the paths."""
    labels = dataset_labels or {}
    with matplotlib.rc_context(_STYLE):
        figures = {} if table.empty else {
            "figure4": figure4(table, decimals), "figure7": figure7(table, labels, decimals)}
        figures.update({
            "figure8": count_figure(participants["gender"], (*GENDERS, NOT_GIVEN), "Gender",
                                    ""),
            "figure9": age_figure(participants["age"]),
            "figure10": count_figure(participants["ml_experience"],
                                     (*EXPERIENCE_LABELS, NOT_GIVEN), "ML/AI experience",
                                     "I have technical experience with ML/AI:"),
            "figure11": count_figure(participants["xai_experience"],
                                     (*EXPERIENCE_LABELS, NOT_GIVEN), "XAI experience",
                                     "I have technical experience with XAI:"),
            "side_a": side_a_figure(checks),
            "positions": positions_figure(checks),
            "ranking": ranking_figure(ranking),
            "matrix": matrix_figure(ranking, decimals),
        })
        return {key: save_figure(fig, folder, FIGURE_STEMS[key]) for key, fig in figures.items()}


def save_figure(fig: Figure, folder: Path, stem: str) -> list[Path]:
    """Write ``stem``.png and ``stem``.svg (no timestamps, so reruns give identical files)."""
    FigureCanvasAgg(fig)
    paths = [folder / f"{stem}.png", folder / f"{stem}.svg"]
    fig.savefig(paths[0], dpi=_DPI, metadata={"Software": None})
    fig.savefig(paths[1], metadata={"Date": None})
    return paths
