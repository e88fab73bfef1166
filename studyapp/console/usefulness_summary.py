"""The dashboard's summary of a usefulness study: per method (forward simulation: per arm and test)
the participants, answered trials and the share of answers that match the model, with its
participant-clustered interval.

Counted as the live chart counts preference answers: participants not excluded, not failing more
attention checks than the analysis allows (``DEFAULT_MAX_FAILED_CHECKS``), simulated ones only when
asked; attention checks and learning trials never count. "Matching" is
``contracts.usefulness.matches_model`` written as SQL. One grouped query gives each participant's
answers n_i and matches a_i per method (one row per participant and method, never per trial); their
sums give the share A/N and contracts.intervals its clustered interval (none under two participants,
the Wilson interval where participants show no spread).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Case, CharField, Count, F, IntegerField, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Cast

from contracts.intervals import CONFIDENCE, ComparisonSums, clustered_interval
from contracts.usefulness import (
    AGREEMENT,
    CORRECT,
    DISTINCTION,
    FORWARD_SIMULATION,
    INCORRECT,
    LEARN,
    NO_EXPLANATION,
    POST,
    PRE,
)
from contracts.vocabulary import DEFAULT_MAX_FAILED_CHECKS, method_name
from studyapp.models import Study, TrialAnswer, TrialItem

SUMMARY_CONFIDENCE = CONFIDENCE


@dataclass(frozen=True)
class Share:
    """The answers of one group matching the model, with the interval of their share (fractions)."""

    matches: int
    answers: int
    participants: int
    low: float | None
    high: float | None

    @property
    def percent(self) -> float:
        return 100.0 * self.matches / self.answers if self.answers else 0.0

    @property
    def low_percent(self) -> float | None:
        return None if self.low is None else 100.0 * self.low

    @property
    def high_percent(self) -> float | None:
        return None if self.high is None else 100.0 * self.high


@dataclass(frozen=True)
class MethodSummary:
    """One row of the table: a method (forward simulation: an arm) and its shares.

    ``share`` pools every counted answer of the row; ``pre`` and ``post`` are forward simulation's
    tests (None for the other tasks).
    """

    method: str
    title: str
    participants: int
    answered: int
    share: Share
    pre: Share | None = None
    post: Share | None = None


def _matches(task: str) -> Case:
    """1 where a TrialAnswer matches the model (contracts.usefulness.matches_model), else 0."""
    if task == DISTINCTION:
        rule = Q(answer=Cast("item__prediction_panel", CharField()))
    elif task == AGREEMENT:
        rule = Q(answer=CORRECT, item__trial__model_correct=True) | Q(answer=INCORRECT, item__trial__model_correct=False)
    else:
        rule = Q(answer=F("item__trial__predicted_class"))
    return Case(When(rule, then=Value(1)), default=Value(0), output_field=IntegerField())


def inattentive_trial_participants(study: Study) -> QuerySet:
    """Ids of the study's participants who failed more trial attention checks than the analysis allows."""
    failed = (TrialItem.objects.filter(participant__study=study, answer__isnull=False)
              .exclude(expected_answer="").exclude(answer__answer=F("expected_answer")))  # fmt: skip
    return (failed.values("participant_id").annotate(failed=Count("id"))
            .filter(failed__gt=DEFAULT_MAX_FAILED_CHECKS).values("participant_id"))  # fmt: skip


def check_counts(study: Study) -> dict[str, Count]:
    """Annotations of a participant's attention checks answered and passed (``checks_answered``,
    ``checks_passed``): a preference study's questions, a usefulness study's trials."""
    if study.is_usefulness:
        check, answer = ~Q(trial_items__expected_answer=""), "trial_items__answer"
        passed = Q(trial_items__answer__answer=F("trial_items__expected_answer"))
    else:
        check, answer = ~Q(items__expected_choice=""), "items__answer"
        passed = Q(items__answer__choice=F("items__expected_choice"))
    return {"checks_answered": Count(answer, filter=check), "checks_passed": Count(answer, filter=check & passed)}


def _per_participant(study: Study, include_simulated: bool) -> list[tuple[str, str, int, int, int]]:
    """(method or arm, phase, participant id, answers, matches) of every counted participant."""
    people = Q(item__participant__study=study, item__participant__excluded=False, item__expected_answer="")
    if not include_simulated:
        people &= Q(item__participant__simulated=False)
    forward = study.task == FORWARD_SIMULATION
    key = "item__participant__arm" if forward else "item__trial__method"
    rows = (
        TrialAnswer.objects.filter(people).exclude(item__trial__phase=LEARN)
        .exclude(item__participant__in=inattentive_trial_participants(study))
        .values(key, "item__trial__phase", "item__participant_id").order_by()
        .annotate(n=Count("id"), a=Sum(_matches(study.task)))
        .values_list(key, "item__trial__phase", "item__participant_id", "n", "a")
    )  # fmt: skip
    return list(rows)


def _share(groups: list[tuple[int, int]], confidence: float) -> Share:
    """The share of matches over (answers, matches) per participant, with its clustered interval."""
    sums = ComparisonSums(
        comparison="", participants=len(groups), method_1=sum(a for _, a in groups),
        method_2=sum(n - a for n, a in groups), equal=0, a2=sum(a * a for _, a in groups),
        an=sum(a * n for n, a in groups), n2=sum(n * n for n, _ in groups),
    )  # fmt: skip
    interval = clustered_interval(sums, confidence)
    low, high = (None, None) if interval is None else interval
    return Share(int(sums.method_1), int(sums.answers), sums.participants, low, high)


def method_title(method: str) -> str:
    """The row's name: the method's, or the control arm's."""
    return "No explanation (control)" if method == NO_EXPLANATION else method_name(method or "—")


def usefulness_summary(study: Study, include_simulated: bool = False,
                       confidence: float = SUMMARY_CONFIDENCE) -> list[MethodSummary]:
    """The table's rows, one per method (forward simulation: per arm), sorted by key; none before answers."""
    if not study.is_usefulness:
        return []
    pooled: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    phases: dict[tuple[str, str], dict[int, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for method, phase, participant, n, a in _per_participant(study, include_simulated):
        for table in (pooled[method][participant], phases[(method, phase)][participant]):
            table[0] += n
            table[1] += a

    def share(groups: dict[int, list[int]]) -> Share:
        return _share([(n, a) for n, a in groups.values()], confidence)

    forward = study.task == FORWARD_SIMULATION
    rows = []
    for method, people in sorted(pooled.items()):
        total = share(people)
        tests = {phase: share(phases[(method, phase)]) if (method, phase) in phases else None for phase in (PRE, POST)}
        rows.append(MethodSummary(
            method=method, title=method_title(method), participants=total.participants, answered=total.answers,
            share=total, pre=tests[PRE] if forward else None, post=tests[POST] if forward else None,
        ))  # fmt: skip
    return rows
