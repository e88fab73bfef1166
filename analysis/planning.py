"""Sample-size planning by simulation: how many participants a clustered paired-preference study
needs (``python -m analysis plan``).

Generative model, per comparison: each answer is a tie ('equally reasonable') with probability
``tie_rate``; otherwise participant i prefers method 1 with probability
expit(mu + sigma * u_i), u_i ~ N(0, 1) drawn once per participant and comparison (logit-normal
heterogeneity). mu is set so that the population share of method 1 among decisive answers is
``share``. Every participant gives ``answers`` answers to every comparison.

Each replay is analysed exactly as ``comparisons.csv`` of the report does: the exact
participant-level sign-flip test (:func:`analysis.statistics.sign_flip_test`) of method 1
against method 2, Holm-adjusted over the comparisons, and the interval of the method-1 share of
all answers (cluster bootstrap, :func:`analysis.statistics.usable_intervals`). So the power is
the power of the report's headline test.

From a pilot export the share and tie rate are the pooled proportions and sigma is a
method-of-moments estimate: the between-participant variance of decisive shares beyond binomial
noise, matched to the variance of the logit-normal distribution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.polynomial.hermite_e import hermegauss
from scipy import optimize, special
from statsmodels.stats.proportion import proportion_confint

from analysis.comparisons import COMPARISON_KEY, FIRST, SECOND, TIE
from analysis.io import InputError, load_export
from analysis.selection import select
from analysis.statistics import cluster_bootstrap_ci, sign_flip_test, usable_intervals

DEFAULT_REPLAYS = 1000
DEFAULT_ALPHA = 0.05
DEFAULT_TARGETS = (0.8, 0.9)
DEFAULT_GRID = (5, 10, 15, 20, 30, 40, 50, 60, 80, 100, 150, 200, 300)
PLAN_BOOTSTRAP = 500  # cluster-bootstrap replicates per replay for the interval width
MAX_SIGMA = 10.0
ALL_COMPARISONS = "all"
POWER_COLUMNS = ("participants", "comparison", "power", "power_low", "power_high",
                 "median_ci_width_pct", "wrong_sign")
_NODES, _WEIGHTS = hermegauss(64)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


@dataclass(frozen=True)
class ComparisonModel:
    """One comparison's truth: method-1 share of decisive answers, tie rate, logit SD of people."""

    name: str
    share: float
    tie_rate: float
    sigma: float

    def __post_init__(self) -> None:
        if not 0 < self.share < 1:
            raise InputError(f"share of {self.name} is {self.share:g}; it must lie strictly "
                             "between 0 and 1")
        if not 0 <= self.tie_rate < 1:
            raise InputError(f"tie rate of {self.name} is {self.tie_rate:g}; it must be at least "
                             "0 and below 1")
        if not 0 <= self.sigma <= MAX_SIGMA:
            raise InputError(f"participant heterogeneity of {self.name} is {self.sigma:g}; it "
                             f"must be between 0 and {MAX_SIGMA:g}")


@dataclass(frozen=True)
class Design:
    """The comparisons of a study (one Holm family), answers per participant and comparison,
    and the significance level."""

    comparisons: tuple[ComparisonModel, ...]
    answers: int
    alpha: float = DEFAULT_ALPHA

    def __post_init__(self) -> None:
        if not self.comparisons:
            raise InputError("the design has no comparison")
        if self.answers < 1:
            raise InputError(f"answers per participant is {self.answers}; it must be at least 1")
        if not 0 < self.alpha < 1:
            raise InputError(f"alpha is {self.alpha:g}; it must lie strictly between 0 and 1")


@dataclass(frozen=True)
class Plan:
    """The power curve (one row per participants × comparison, plus 'all' = every comparison
    significant) and the smallest participant number reaching each target power."""

    design: Design
    curve: pd.DataFrame
    needed: pd.DataFrame
    replays: int


def logit_centre(share: float, sigma: float) -> float:
    """mu with E[expit(mu + sigma Z)] = share (Gauss–Hermite quadrature)."""
    if sigma == 0:
        return float(special.logit(share))
    return float(optimize.brentq(
        lambda mu: float(_WEIGHTS @ special.expit(mu + sigma * _NODES)) - share, -50.0, 50.0))


def share_variance(share: float, sigma: float) -> float:
    """Between-participant variance of personal decisive shares for a population share."""
    values = special.expit(logit_centre(share, sigma) + sigma * _NODES)
    return float(_WEIGHTS @ (values - share) ** 2)


def sigma_from_variance(share: float, variance: float) -> float:
    """The logit SD whose logit-normal population has this variance of personal shares."""
    if variance <= 0:
        return 0.0
    if variance >= share_variance(share, MAX_SIGMA):
        return MAX_SIGMA
    return float(optimize.brentq(lambda s: share_variance(share, s) - variance, 0.0, MAX_SIGMA))


def moment_sigma(wins: np.ndarray, losses: np.ndarray) -> float:
    """Method-of-moments logit SD from per-participant decisive counts.

    With y_i = w_i / n_i, E[(y_i - p)^2] = tau^2 + (p(1-p) - tau^2) / n_i, so
    tau^2 = (S - p(1-p) h) / (1 - h) with S the mean squared deviation (n/(n-1) corrected) and
    h the mean of 1/n_i over participants with at least two decisive answers.
    """
    n = wins + losses
    keep = n >= 2
    if keep.sum() < 2:
        return 0.0
    y, n = wins[keep] / n[keep], n[keep].astype(np.float64)
    p = float(wins[keep].sum() / n.sum())
    spread = float(((y - p) ** 2).mean()) * keep.sum() / (keep.sum() - 1)
    h = float((1.0 / n).mean())
    return sigma_from_variance(p, (spread - p * (1 - p) * h) / (1 - h))


def pilot_design(export_dir: Path, answers: int | None = None,
                 alpha: float = DEFAULT_ALPHA) -> Design:
    """The design estimated from a pilot export: per comparison of its counted answers the share,
    tie rate and sigma; answers per participant = the pilot's median unless given."""
    if not export_dir.is_dir():
        raise InputError(f"pilot export {export_dir} is not a folder")
    data = select(load_export(export_dir / "answers.csv", export_dir / "participants.csv")).answers
    if data.empty:
        raise InputError(f"pilot export {export_dir} has no counted preference answers")
    models, sizes = [], []
    for key, group in data.groupby(COMPARISON_KEY, sort=True, observed=True):
        counts = pd.crosstab([group["study"], group["participant"]], group["result"])
        counts = counts.reindex(columns=[FIRST, SECOND, TIE], fill_value=0).to_numpy()
        wins, losses, ties = counts[:, 0], counts[:, 1], counts[:, 2]
        sizes.append(np.median(counts.sum(axis=1)))
        decisive = int(wins.sum() + losses.sum())
        if decisive == 0 or wins.sum() in (0, decisive):
            raise InputError(f"pilot comparison {_name(key)} has "
                             f"{'no decisive answers' if decisive == 0 else 'one-sided answers'}; "
                             "its share cannot be estimated: give --share instead")
        models.append(ComparisonModel(_name(key), wins.sum() / decisive,
                                      float(ties.sum() / counts.sum()),
                                      moment_sigma(wins, losses)))
    return Design(tuple(models), answers or max(1, round(float(np.median(sizes)))), alpha)


def _name(key: tuple) -> str:
    return f"{key[0]} ({key[1]} vs {key[2]})"


def simulate_counts(design: Design, participants: int, replays: int,
                    rng: np.random.Generator) -> np.ndarray:
    """Counts replays × participants × comparisons × (method 1, method 2, equal) of the model."""
    shape = (replays, participants, len(design.comparisons))
    tie_rate = np.array([c.tie_rate for c in design.comparisons])
    sigma = np.array([c.sigma for c in design.comparisons])
    centre = np.array([logit_centre(c.share, c.sigma) for c in design.comparisons])
    personal = special.expit(centre + sigma * rng.standard_normal(shape))
    ties = rng.binomial(design.answers, np.broadcast_to(tie_rate, shape))
    wins = rng.binomial(design.answers - ties, personal)
    return np.stack([wins, design.answers - ties - wins, ties], axis=-1)


def holm_matrix(p_values: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values of each row (one family per replay) for all replays in one numpy
    pass, as :func:`analysis.statistics.holm` gives them: undefined (NaN) ones stay NaN and do
    not count in the family."""
    order = np.argsort(p_values, axis=1)  # NaN sort last
    ranked = np.take_along_axis(p_values, order, axis=1)
    family = np.isfinite(p_values).sum(axis=1, keepdims=True)
    factors = np.maximum(family - np.arange(p_values.shape[1]), 1)
    adjusted_sorted = np.minimum(np.maximum.accumulate(ranked * factors, axis=1), 1.0)
    adjusted = np.empty_like(adjusted_sorted)
    np.put_along_axis(adjusted, order, adjusted_sorted, axis=1)
    return adjusted


def analyse_replay(counts: np.ndarray, rng: np.random.Generator,
                   n_boot: int = PLAN_BOOTSTRAP) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The report's numbers of one replay (participants × comparisons × results) per comparison:
    sign-flip p-value, sign of method 1 minus method 2, interval width of the method-1 share."""
    differences = counts[..., 0] - counts[..., 1]
    p_values = np.array([sign_flip_test(differences[:, k]) for k in range(counts.shape[1])])
    hits, totals = counts[..., 0], counts.sum(axis=-1)
    bounds = cluster_bootstrap_ci(hits, totals, n_boot, rng)
    intervals = usable_intervals(hits, totals, bounds)
    return p_values, np.sign(differences.sum(axis=0)), intervals[:, 1] - intervals[:, 0]


def power_point(design: Design, participants: int, replays: int,
                rng: np.random.Generator) -> list[dict]:
    """Power rows at one participant number: each comparison and 'all' (every one significant)."""
    counts = simulate_counts(design, participants, replays, rng)
    p_values, signs, widths = (np.array(part) for part in
                               zip(*(analyse_replay(replay, rng) for replay in counts)))
    with np.errstate(invalid="ignore"):
        significant = holm_matrix(p_values) < design.alpha  # NaN (nobody decided): not
    truth = np.sign([c.share - 0.5 for c in design.comparisons])
    rows = []
    for k, model in enumerate(design.comparisons):
        wrong = (signs[:, k] != truth[k]) & significant[:, k]
        rows.append(_power_row(participants, model.name, significant[:, k], replays,
                               100 * float(np.nanmedian(widths[:, k])),
                               float(wrong.sum() / significant[:, k].sum())
                               if truth[k] != 0 and significant[:, k].any() else math.nan))
    if len(design.comparisons) > 1:
        rows.append(_power_row(participants, ALL_COMPARISONS, significant.all(axis=1), replays,
                               math.nan, math.nan))
    return rows


def _power_row(participants: int, name: str, significant: np.ndarray, replays: int,
               width: float, wrong_sign: float) -> dict:
    """One row of the curve; the Wilson interval is widened by rounding error to hold power."""
    power = int(significant.sum()) / replays
    low, high = proportion_confint(int(significant.sum()), replays, method="wilson")
    return dict(zip(POWER_COLUMNS, (participants, name, power, min(float(low), power),
                                    max(float(high), power), width, wrong_sign)))


def plan(design: Design, grid: tuple[int, ...] = DEFAULT_GRID, replays: int = DEFAULT_REPLAYS,
         seed: int = 0, targets: tuple[float, ...] = DEFAULT_TARGETS) -> Plan:
    """Simulate ``replays`` studies at every participant number of ``grid`` (fixed seed)."""
    if not grid or min(grid) < 2:
        raise InputError("participant numbers must be at least 2")
    if replays < 1:
        raise InputError(f"replays is {replays}; it must be at least 1")
    for target in targets:
        if not 0 < target < 1:
            raise InputError(f"target power {target:g} must lie strictly between 0 and 1")
    rows = []
    for index, participants in enumerate(sorted(set(grid))):
        rows += power_point(design, participants, replays, np.random.default_rng([seed, index]))
    curve = pd.DataFrame(rows, columns=list(POWER_COLUMNS))
    return Plan(design, curve, needed_participants(curve, targets), replays)


def needed_participants(curve: pd.DataFrame, targets: tuple[float, ...]) -> pd.DataFrame:
    """Smallest participant number of the grid whose power reaches each target (NA if none)."""
    rows = []
    for name, group in curve.groupby("comparison", sort=False):
        row: dict = {"comparison": name}
        for target in targets:
            reached = group.loc[group["power"] >= target, "participants"]
            row[f"participants_{round(100 * target)}"] = (int(reached.min()) if len(reached)
                                                          else pd.NA)
        rows.append(row)
    return pd.DataFrame(rows).astype({c: "Int64" for c in rows[0] if c != "comparison"})


def plan_markdown(result: Plan) -> str:
    """plan.md: the design, the participants needed and the power curve."""
    design = result.design
    summary = (f"{design.answers} answers per participant and comparison, alpha "
               f"{design.alpha:g} (Holm over {len(design.comparisons)} comparisons), "
               f"{result.replays} simulated studies per participant number; test: the report's "
               "participant-level sign-flip test.")
    lines = ["# Sample-size plan", "", summary, "",
             "| comparison | share (decisive) | tie rate | sigma (logit) |", "|---|---|---|---|"]
    lines += [f"| {c.name} | {c.share:.3f} | {c.tie_rate:.3f} | {c.sigma:.3f} |"
              for c in design.comparisons]
    lines += ["", "## Participants needed", "", _markdown_table(result.needed), "",
              "## Power curve (Wilson 95 % Monte-Carlo interval)", "",
              _markdown_table(result.curve.round(3)), ""]
    return "\n".join(lines)


def _markdown_table(table: pd.DataFrame) -> str:
    cells = table.astype(object).where(table.notna(), "")
    rows = [list(table.columns), ["---"] * table.shape[1]] + cells.astype(str).values.tolist()
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def write_plan(result: Plan, out_dir: Path) -> list[Path]:
    """power.csv, plan.md and power.png (the power curves with their intervals) in ``out_dir``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "power.csv", out_dir / "plan.md", out_dir / "power.png"]
    result.curve.to_csv(paths[0], index=False)
    paths[1].write_text(plan_markdown(result), encoding="utf-8")
    figure = Figure(figsize=(6.4, 4.2))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for name, group in result.curve.groupby("comparison", sort=False):
        axes.plot(group["participants"], group["power"], marker="o", label=name)
        axes.fill_between(group["participants"], group["power_low"], group["power_high"],
                          alpha=0.2)
    for target in DEFAULT_TARGETS:
        axes.axhline(target, color="grey", linestyle=":", linewidth=1)
    axes.set(xlabel="participants", ylabel="power (Holm-adjusted sign-flip test)", ylim=(0, 1))
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(paths[2], dpi=120)
    return paths
