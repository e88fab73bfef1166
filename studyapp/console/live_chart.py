"""The dashboard's live picture: per comparison the result shares so far, with participant-clustered
intervals, and the completion progress, as geometry for a server-rendered SVG (no script, strict
CSP).

Every comparison of the study's design is drawn (N-method designs and random-swap controls alike)
from the per participant counts of studyapp.aggregates: one grouped query sums, per comparison, the
participants G, answers for method 1 a_i and all answers n_i of the participants the report counts
(A = Σa_i, N = Σn_i, Σa_i², Σa_i·n_i, Σn_i²), and contracts.intervals gives method 1's share
with its participant-clustered (sandwich) interval from those sums: none under two participants
(as in the report), the Wilson score interval where the clustered spread is zero (as the analysis
does), other ends clipped to [0, 1]. In an adaptive study each participant's counts in a comparison
are weighted by their design weight 1/(K·p) (studyapp.aggregates), as the analysis weights the export.
"""
from __future__ import annotations

from dataclasses import dataclass

from contracts.intervals import CONFIDENCE, ComparisonSums, clustered_interval
from contracts.vocabulary import method_name, parse_question_type
from studyapp.aggregates import comparison_sums, inattentive_participants  # noqa: F401  (imported from here too)
from studyapp.models import Study

WIDTH = 600.0
LIVE_CONFIDENCE = CONFIDENCE


@dataclass(frozen=True)
class Segment:
    """One outcome's part of a bar: its share in percent and where it lies on the SVG's x axis."""

    label: str
    percent: float
    x: float
    width: float
    css: str


@dataclass(frozen=True)
class ComparisonBar:
    """A comparison's bar: outcome segments, the interval of the first method's share, the counts."""

    title: str
    answers: int
    participants: int
    segments: tuple[Segment, ...]
    ci_low: float | None
    ci_high: float | None

    @property
    def ci_x(self) -> tuple[float, float] | None:
        """The interval's ends on the x axis, or None where the analysis gives none."""
        if self.ci_low is None or self.ci_high is None:
            return None
        return WIDTH * self.ci_low / 100, WIDTH * self.ci_high / 100


@dataclass(frozen=True)
class Progress:
    """Completed participants against the target (or against those who started, without one)."""

    completed: int
    goal: int
    goal_label: str
    width: float

    @property
    def percent(self) -> float:
        return 100.0 * self.completed / self.goal if self.goal else 0.0


def comparison_bars(study: Study, include_simulated: bool = False) -> list[ComparisonBar]:
    """The bars of every comparison of the study (participants the report counts, finished or not); an
    adaptive study's shares and intervals from the weighted sums, its counts still the answers given."""
    counted = comparison_sums(study, include_simulated)
    if not study.is_adaptive:
        return [_bar(sums) for sums in counted]
    weighted = {sums.comparison: sums for sums in comparison_sums(study, include_simulated, weighted=True)}
    return [_bar(weighted[sums.comparison], answers=round(sums.answers)) for sums in counted]


def comparison_title(comparison: str) -> tuple[str, str]:
    """(method 1's name, the contender's name) of a question type (the random control: "Random")."""
    first, second = parse_question_type(comparison)
    return method_name(first), method_name(second)


def _bar(sums: ComparisonSums, answers: int | None = None) -> ComparisonBar:
    """The bar of one comparison's sums (``answers``: the count to show where the sums are weighted)."""
    first, second = comparison_title(sums.comparison)
    counts = ((first, sums.method_1, "first"), ("equally reasonable", sums.equal, "equal"),
              (second, sums.method_2, "second"))  # fmt: skip
    segments, x = [], 0.0
    for label, count, css in counts:
        percent = 100.0 * count / sums.answers
        segments.append(Segment(label, percent, x, WIDTH * percent / 100, css))
        x += WIDTH * percent / 100
    interval = clustered_interval(sums)
    low, high = (None, None) if interval is None else (100 * interval[0], 100 * interval[1])
    return ComparisonBar(title=f"{first} vs {second}", answers=sums.answers if answers is None else answers,
                         participants=sums.participants, segments=tuple(segments),
                         ci_low=low, ci_high=high)


def completion_progress(study: Study, started: int, completed: int) -> Progress:
    """The progress bar: completed participants of the target, or of those who started."""
    goal = study.target_participants or started
    label = f"target {study.target_participants}" if study.target_participants else f"{started} started"
    width = WIDTH * min(completed / goal, 1.0) if goal else 0.0
    return Progress(completed=completed, goal=goal, goal_label=label, width=width)
