"""Study health on the dashboard: participant anomaly flags and the planner's participants still needed.

**Anomaly flags.** Each participant's anomaly p is :mod:`contracts.anomaly`'s, exactly as
``analysis.quality`` computes it for ``participants_quality.csv``: Fisher's method over the
participant's answers' mid-p values under the outcome shares of the participants the report counts
(completed, not excluded, not inattentive, bots only when asked), the participant's own answers
taken out. Shares come from the per participant count rows of studyapp.aggregates: the counted
totals per comparison, each scored participant's own rows subtracted from them. One pass over the
study's count rows gives the totals and the summary's flagged count (each distinct (comparison,
counts) term and each distinct participant profile computed once); it is cached under the
participants' state (how many, answers so far, completed, excluded), so a refresh without news
costs one aggregate over the participant rows, and the table scores only the page's participants.

**Planner.** On demand (its own page, never on the dashboard itself) the study's counted answers so
far are the pilot of ``analysis.planning``: its pilot design, simulated at its participant grid
with a bounded number of replays, gives the participants needed for the target power on every
comparison (Holm), with the Monte-Carlo interval from the power's Wilson interval. Estimates are
cached under the study's participants' state (answers so far, completed, excluded), so reopening the
page costs nothing until someone answers.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.contrib.admin.views.decorators import staff_member_required
from django.core.cache import cache
from django.db.models import BooleanField, Count, ExpressionWrapper, F, Q, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from contracts.anomaly import DEFAULT_ANOMALY_ALPHA, AnomalyTerms, combined_anomaly_p, comparison_terms
from contracts.comparisons import RESULTS
from studyapp.console.access import study_or_403
from studyapp.console.live_chart import inattentive_participants
from studyapp.models import ComparisonCount, Participant, Study

if TYPE_CHECKING:
    import pandas as pd

ANOMALY_ALPHA = DEFAULT_ANOMALY_ALPHA  # the report's flag threshold (analysis.quality)
PLANNER_TARGET_POWER = 0.8
PLANNER_MIN_PARTICIPANTS = 5  # counted participants the planner needs as a pilot
PLANNER_REPLAYS = 100  # simulated studies per participant number: the page answers in seconds
PLANNER_SEED = 0
PLANNER_CACHE_SECONDS = 24 * 60 * 60  # keyed by the participants' state, so only unused entries expire
ANOMALY_CACHE_SECONDS = 60 * 60  # keyed by the participants' state, so only unused entries expire
logger = logging.getLogger(__name__)
CountRow = tuple[int, str, int, int, int, bool]  # participant, comparison, method 1, method 2, equal, counted


@dataclass(frozen=True)
class StudyHealth:
    """What the dashboard shows of the study's health: the anomaly threshold and flagged count."""

    alpha: float
    anomalous: int
    scored: int
    planner_power: float = 100 * PLANNER_TARGET_POWER


@dataclass(frozen=True)
class PlannerEstimate:
    """The planner's answer for a running study: a sentence, and the numbers when it could plan."""

    sentence: str
    counted: int
    more: int | None = None
    more_low: int | None = None
    more_high: int | None = None
    needed: int | None = None
    target: float = PLANNER_TARGET_POWER
    replays: int = PLANNER_REPLAYS


def counted_people(study: Study, include_simulated: bool = False) -> Q:
    """Count rows (ComparisonCount) of the participants the report counts: completed, not excluded,
    not inattentive, bots only with ``include_simulated`` (analysis.selection's defaults)."""
    people = Q(participant__study=study, participant__excluded=False, participant__completed_at__isnull=False)
    if not include_simulated:
        people &= Q(participant__simulated=False)
    return people & ~Q(participant__in=inattentive_participants(study))


def _count_rows(study: Study, include_simulated: bool, participant_ids: list[int] | None = None) -> list[CountRow]:
    """The study's count rows with answers (of ``participant_ids`` only, when given), each marked
    counted or not, ordered by participant and comparison."""
    rows = ComparisonCount.objects.filter(participant__study=study)
    if participant_ids is not None:
        rows = rows.filter(participant_id__in=participant_ids)
    counted = ExpressionWrapper(counted_people(study, include_simulated), output_field=BooleanField())
    return list(
        rows.annotate(n=F("method_1") + F("method_2") + F("equal"), counted=counted).filter(n__gt=0)
        .values_list("participant_id", "comparison", "method_1", "method_2", "equal", "counted")
        .order_by("participant_id", "comparison")
    )  # fmt: skip


def reference_totals(study: Study, include_simulated: bool = False) -> dict[str, tuple[int, ...]]:
    """Per comparison the counted participants' answers per outcome (RESULTS order), one query."""
    rows = (
        ComparisonCount.objects.filter(counted_people(study, include_simulated))
        .values("comparison").order_by("comparison")
        .annotate(s1=Sum("method_1"), s2=Sum("method_2"), se=Sum("equal"))
    )  # fmt: skip
    return {row["comparison"]: (row["s1"], row["s2"], row["se"]) for row in rows}


class _Scorer:
    """Anomaly p of count rows against fixed reference totals, each distinct term computed once."""

    def __init__(self, totals: dict[str, tuple[int, ...]]) -> None:
        self.totals = totals
        self.terms: dict[tuple[str, tuple[int, ...], bool], AnomalyTerms] = {}

    def term(self, comparison: str, counts: tuple[int, ...], counted: bool) -> AnomalyTerms:
        """One comparison's terms; the others are the reference less the participant when counted."""
        key = (comparison, counts, counted)
        if key not in self.terms:
            reference = self.totals.get(comparison, (0,) * len(RESULTS))
            # Never below zero: an answer stored between the two queries may outrun the totals.
            others = [max(t - c, 0) for t, c in zip(reference, counts, strict=True)] if counted else list(reference)
            self.terms[key] = comparison_terms(counts, others)
        return self.terms[key]

    def scores(self, rows: Iterable[CountRow]) -> dict[int, float]:
        """Participant id → anomaly p of rows ordered by participant and comparison; participants
        whose rows are alike (the same comparisons, counts and counted status) are combined once."""
        per_person: dict[int, list[tuple[str, tuple[int, ...], bool]]] = {}
        for participant, comparison, first, second, equal, counted in rows:
            per_person.setdefault(participant, []).append((comparison, (first, second, equal), bool(counted)))
        combined: dict[tuple[tuple[str, tuple[int, ...], bool], ...], float | None] = {}
        scores = {}
        for participant, keys in per_person.items():
            profile = tuple(keys)
            if profile not in combined:
                combined[profile] = combined_anomaly_p(self.term(*key) for key in keys)
            if combined[profile] is not None:
                scores[participant] = combined[profile]
        return scores


def anomaly_scores(study: Study, participant_ids: list[int], include_simulated: bool = False) -> dict[int, float]:
    """Anomaly p of the given participants of ``study`` (those with answers): two queries whatever the
    study's size — the counted totals per comparison and the participants' own count rows."""
    if not participant_ids:
        return {}
    scorer = _Scorer(reference_totals(study, include_simulated))
    return scorer.scores(_count_rows(study, include_simulated, participant_ids))


@dataclass(frozen=True)
class AnomalySummary:
    """The counted totals per comparison (the reference) and the study's flagged and scored participants."""

    totals: dict[str, tuple[int, ...]]
    flagged: int
    scored: int


def anomaly_summary(study: Study, include_simulated: bool = False) -> AnomalySummary:
    """The reference totals and the flagged count over the whole study in one pass over its count
    rows (the totals are summed from the same rows)."""
    rows = _count_rows(study, include_simulated)
    sums: dict[str, list[int]] = {}
    for _, comparison, first, second, equal, counted in rows:
        if counted:
            total = sums.setdefault(comparison, [0] * len(RESULTS))
            total[0], total[1], total[2] = total[0] + first, total[1] + second, total[2] + equal
    totals = {key: tuple(value) for key, value in sums.items()}
    scores = _Scorer(totals).scores(rows)
    return AnomalySummary(totals, sum(p < ANOMALY_ALPHA for p in scores.values()), len(scores))


def anomalous_count(study: Study, include_simulated: bool = False) -> tuple[int, int]:
    """(participants flagged at ANOMALY_ALPHA, participants scored) of the whole study."""
    summary = anomaly_summary(study, include_simulated)
    return summary.flagged, summary.scored


def _state_key(study: Study) -> str:
    """The study and its participants' state, for cache keys: pk and creation time (a deleted study's pk
    may come back on SQLite), the attention-check rule (which participants count), and how many
    participants there are, their answers so far (every answer raises a participant's ``answered``)
    and which completed or are excluded — one aggregate over the participant rows."""
    state = Participant.objects.filter(study=study).aggregate(
        n=Count("id"), answered=Sum("answered"), done=Sum("id", filter=Q(completed_at__isnull=False)),
        out=Sum("id", filter=Q(excluded=True)))  # fmt: skip
    return ("{}@{:.6f}:{}:{n}:{answered}:{done}:{out}"
            .format(study.pk, study.created_at.timestamp(), study.max_failed_checks, **state))


def cached_anomaly_summary(study: Study, include_simulated: bool = False) -> AnomalySummary:
    """:func:`anomaly_summary`, cached under the study's participants' state (:func:`_state_key`): one
    aggregate over the participant rows instead of a pass over every count row on each refresh."""
    key = f"study-health:anomalous:{_state_key(study)}:{include_simulated}"
    summary = cache.get(key)
    if summary is None:
        summary = anomaly_summary(study, include_simulated)
        cache.set(key, summary, ANOMALY_CACHE_SECONDS)
    return summary


def study_health(study: Study, participants: list[Participant], include_simulated: bool = False) -> StudyHealth:
    """Set ``anomaly_p`` (None without answers) and ``anomalous`` on the page's participants and
    count the flagged participants of the whole study, for the dashboard: the page's own count rows
    are scored against the (cached) reference totals."""
    summary = cached_anomaly_summary(study, include_simulated)
    ids = [person.pk for person in participants]
    scores = _Scorer(summary.totals).scores(_count_rows(study, include_simulated, ids)) if ids else {}
    for person in participants:
        person.anomaly_p = scores.get(person.pk)
        person.anomalous = person.anomaly_p is not None and person.anomaly_p < ANOMALY_ALPHA
    return StudyHealth(alpha=ANOMALY_ALPHA, anomalous=summary.flagged, scored=summary.scored)


def _percent(power: float) -> str:
    return f"{100 * power:g} %"


def _more_from_curve(curve: pd.DataFrame, target: float, counted: int) -> tuple[int | None, int | None, int | None]:
    """(participants needed, low and high ends of its Monte-Carlo interval) of the Holm family from
    the power curve: the first participant number whose power (its Wilson interval's upper end,
    lower end) reaches ``target``; None where none of the grid does."""
    from analysis.planning import ALL_COMPARISONS

    family = curve[curve["comparison"] == ALL_COMPARISONS]
    family = family if len(family) else curve  # one comparison: no 'all' row

    def first(column: str) -> int | None:
        reached = family.loc[family[column] >= target, "participants"]
        return int(reached.min()) if len(reached) else None

    return first("power"), first("power_high"), first("power_low")


def _estimate_sentence(counted: int, needed: int | None, low: int | None, high: int | None,
                       target: float, largest: int) -> tuple[str, int | None, int | None, int | None]:  # fmt: skip
    """The planner's sentence and the participants still needed (with interval ends) from totals."""
    power = _percent(target)
    if needed is None:
        return (f"Even {largest} participants would not give {power} power on every comparison (Holm) "
                f"with the answers so far ({counted} counted participants): the differences are too small "
                "to plan for with the planner's participant numbers.", None, None, None)  # fmt: skip
    more, more_low = max(needed - counted, 0), max((low or needed) - counted, 0)
    more_high = None if high is None else max(high - counted, 0)
    high_text = f"{more_high}" if more_high is not None else f"more than {largest - counted}"
    interval = f"Monte-Carlo interval {more_low}–{high_text}"
    if more == 0:
        return (f"Enough participants for {power} power on every comparison (Holm): {counted} counted, "
                f"the planner needs about {needed} ({interval} more).", 0, more_low, more_high)  # fmt: skip
    return (f"About {more} more participants for {power} power on every comparison (Holm) ({interval}); "
            f"{counted} counted so far, about {needed} needed in all.", more, more_low, more_high)  # fmt: skip


def planner_estimate(study: Study, target: float = PLANNER_TARGET_POWER, replays: int | None = None) -> PlannerEstimate:
    """The planner's participants still needed for ``target`` power, from the study's counted answers
    so far as the pilot (``replays`` simulated studies per participant number, PLANNER_REPLAYS unless
    given); a sentence instead when there are too few to plan. Never raises."""
    from analysis.io import PARTICIPANT_KEY, InputError
    from analysis.planning import DEFAULT_GRID, pilot_design, plan
    from studyapp.console.report import ReportUnavailable, counted_answers, fresh_export

    replays = PLANNER_REPLAYS if replays is None else replays
    if study.is_usefulness:
        return PlannerEstimate("The planner plans preference studies; this study asks a usefulness task.", 0)
    try:
        with fresh_export(study) as export_dir:
            try:
                selection = counted_answers(export_dir, include_simulated=False)
            except ReportUnavailable:
                selection = None
            counted = 0 if selection is None else len(selection.answers[PARTICIPANT_KEY].drop_duplicates())
            if counted < PLANNER_MIN_PARTICIPANTS:
                return PlannerEstimate(
                    f"Too few answers to plan yet: {counted} counted participant(s) (completed, not excluded, "
                    f"not simulated); the planner needs at least {PLANNER_MIN_PARTICIPANTS} as a pilot.", counted)
            design = pilot_design(export_dir)
        result = plan(design, grid=DEFAULT_GRID, replays=replays, seed=PLANNER_SEED, targets=(target,))
    except InputError as exc:
        return PlannerEstimate(f"The answers so far cannot be planned from: {exc}.", 0)
    except Exception:  # the dashboard's researcher gets a sentence, never a 500
        logger.exception("planner estimate of study %s failed", study.slug)
        return PlannerEstimate("The planner failed on this study's answers (details are in the server log).", 0)
    needed, low, high = _more_from_curve(result.curve, target, counted)
    sentence, more, more_low, more_high = _estimate_sentence(counted, needed, low, high, target, max(DEFAULT_GRID))
    return PlannerEstimate(sentence, counted, more, more_low, more_high, needed, target, replays)


def cached_planner_estimate(study: Study, target: float = PLANNER_TARGET_POWER,
                            replays: int | None = None) -> PlannerEstimate:  # fmt: skip
    """:func:`planner_estimate`, cached under the study's participants' state (:func:`_state_key`)."""
    replays = PLANNER_REPLAYS if replays is None else replays
    key = f"study-health:plan:{_state_key(study)}:{target}:{replays}"
    estimate = cache.get(key)
    if estimate is None:
        estimate = planner_estimate(study, target, replays)
        cache.set(key, estimate, PLANNER_CACHE_SECONDS)
    return estimate


@never_cache
@staff_member_required
@require_GET
def planner_page(request: HttpRequest, slug: str) -> HttpResponse:
    """The planner's estimate of participants still needed for the study (only the study's researchers)."""
    study = study_or_403(request.user, slug)
    context = {"study": study, "estimate": cached_planner_estimate(study)}
    return render(request, "studyapp/dashboard/plan.html", context)
