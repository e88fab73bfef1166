"""The dashboard's live picture: per comparison the preference shares so far, with participant-clustered
intervals, and the completion progress, as geometry for a server-rendered SVG (no script, strict CSP).

The numbers are the analysis's own (``analysis.statistics.preference_table`` on a fresh export,
pooled over datasets), imported on first use; they are cached until an answer or an exclusion
changes them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from django.core.cache import cache
from django.db.models import Count, Max, Q, Sum

from contracts.vocabulary import method_name, parse_question_type
from studyapp.console.report import ReportUnavailable, counted_answers, fresh_export
from studyapp.models import Answer, Participant, Study

WIDTH = 600.0
LIVE_BOOTSTRAP = 1000
LIVE_CONFIDENCE = 0.95
CACHE_SECONDS = 3600


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


def _percent(text: object) -> float | None:
    """A percentage the analysis wrote as text ('' or NaN where undefined)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def comparison_bars(study: Study, include_simulated: bool = False) -> list[ComparisonBar]:
    """The live bars of the study (answers of participants not excluded, finished or not)."""
    if not Answer.objects.filter(item__participant__study=study).exists():
        return []  # nothing to draw, and no need to load the analysis stack for it
    key = _cache_key(study, include_simulated)
    bars = cache.get(key)
    if bars is None:
        bars = _compute_bars(study, include_simulated)
        cache.set(key, bars, CACHE_SECONDS)
    return bars


def _cache_key(study: Study, include_simulated: bool) -> str:
    """Changes with every answer, exclusion, deletion and simulated flag of the study's participants."""
    answers = Answer.objects.filter(item__participant__study=study).aggregate(n=Count("id"), last=Max("id"))
    people = Participant.objects.filter(study=study).aggregate(
        n=Count("id"), last=Max("id"), n_excluded=Count("id", filter=Q(excluded=True)),
        excluded_ids=Sum("id", filter=Q(excluded=True)), n_simulated=Count("id", filter=Q(simulated=True)),
    )  # fmt: skip
    state = ":".join(str(v) for v in (*answers.values(), *people.values()))
    return f"studyapp:live:{study.pk}:{int(include_simulated)}:{state}"


def _compute_bars(study: Study, include_simulated: bool) -> list[ComparisonBar]:
    from analysis.statistics import ALL_DATASETS, preference_table

    with fresh_export(study) as export_dir:
        try:
            selection = counted_answers(export_dir, include_simulated=include_simulated, include_incomplete=True)
        except ReportUnavailable:
            return []
    table = preference_table(selection.answers, n_boot=LIVE_BOOTSTRAP, confidence=LIVE_CONFIDENCE)
    rows = table[table["dataset"] == ALL_DATASETS]
    return [_bar(row) for row in rows.itertuples()]


def _bar(row: object) -> ComparisonBar:
    first, second = parse_question_type(row.question_type)
    others = "/".join(method_name(m) for m in str(row.other_methods).split("+")) or method_name(second)
    counts = ((method_name(first), row.bla_t, "first"), ("equally reasonable", row.equal, "equal"),
              (others, row.other, "second"))  # fmt: skip
    segments, x = [], 0.0
    for label, count, css in counts:
        percent = 100.0 * count / row.n_answers if row.n_answers else 0.0
        segments.append(Segment(label, percent, x, WIDTH * percent / 100, css))
        x += WIDTH * percent / 100
    return ComparisonBar(
        title=f"{method_name(first)} vs {others}", answers=int(row.n_answers), participants=int(row.n_participants),
        segments=tuple(segments), ci_low=_percent(row.ci_low), ci_high=_percent(row.ci_high),
    )  # fmt: skip


def completion_progress(study: Study, started: int, completed: int) -> Progress:
    """The progress bar: completed participants of the target, or of those who started."""
    goal = study.target_participants or started
    label = f"target {study.target_participants}" if study.target_participants else f"{started} started"
    width = WIDTH * min(completed / goal, 1.0) if goal else 0.0
    return Progress(completed=completed, goal=goal, goal_label=label, width=width)
