"""Per participant and comparison answer counts (ComparisonCount) for the live chart.

Database triggers (installed by migration 0006) keep the counts: each inserted answer adds one to
its participant's row of its comparison (method 1, method 2 or equal, oriented as
contracts.comparisons orients it: the chosen side's method is the question type's first method or
not), each deleted answer takes one away, a changed choice moves it. The trigger runs inside the
statement that stores the answer, so a count can never miss or double an answer, the answer path
keeps its one atomic write, and the cost is one indexed upsert whatever the study's size.
Attention checks are not counted. ``backfill`` recounts from the answers (the migration runs it
for answers stored before; it also repairs counts after raw SQL that bypassed the triggers).

``comparison_sums`` sums the rows per comparison into contracts.intervals' ComparisonSums, for the live
chart and the adaptive design alike; weighted, each row's counts are multiplied by its participant's
design weight 1/(K·p) in that comparison (the p stored on their sequence items, joined in the one
grouped query: the cost stays one query per page, whatever the number of answers).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from django.db import models
from django.db.models import Count, F, FloatField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.expressions import Combinable
from django.db.models.functions import Coalesce

from contracts.comparisons import RESULTS, oriented_answer
from contracts.intervals import ComparisonSums
from contracts.vocabulary import PAIR_SEPARATOR
from studyapp.models import Answer, ComparisonCount, SequenceItem, Study

COUNTS = "studyapp_comparisoncount"
TRIGGERS = (
    "studyapp_answer_count_insert",
    "studyapp_answer_count_delete",
    "studyapp_answer_count_update",
)


def recount(
    participant_id: int,
    comparison: str,
    answer_model: type[models.Model] = Answer,
    count_model: type[models.Model] = ComparisonCount,
) -> None:
    """Store the participant's method 1 / method 2 / equal counts in ``comparison`` afresh.

    The models are parameters so that migration 0006 can pass its historical ones.
    """
    answers = answer_model.objects.filter(
        item__participant_id=participant_id,
        item__expected_choice="",
        item__pair__question_type=comparison,
    ).values_list("item__stimulus_a__method", "item__stimulus_b__method", "choice")
    count_model.objects.update_or_create(
        participant_id=participant_id,
        comparison=comparison,
        defaults=result_counts(comparison, answers),
    )


def result_counts(comparison: str, answers: Iterable[tuple[str, str, str]]) -> dict[str, int]:
    """{method_1, method_2, equal: count} of (method on A, method on B, choice) answers."""
    results = Counter(oriented_answer(comparison, a, b, choice)[2] for a, b, choice in answers)
    return {result: results[result] for result in RESULTS}


def backfill(
    answer_model: type[models.Model] = Answer, count_model: type[models.Model] = ComparisonCount
) -> int:
    """Recount every (participant, comparison) that has answers; returns how many rows it wrote."""
    keys = list(
        answer_model.objects.filter(item__expected_choice="")
        .values_list("item__participant_id", "item__pair__question_type")
        .distinct()
    )
    for participant_id, comparison in keys:
        recount(participant_id, comparison, answer_model, count_model)
    return len(keys)


def inattentive_participants(study: Study) -> QuerySet:
    """Ids of the study's participants who failed more attention checks than the study's rule allows
    (``max_failed_checks``, which the export's manifest hands the analysis as its default): the report
    leaves them out, so the chart does."""
    failed = (SequenceItem.objects.filter(participant__study=study, answer__isnull=False)
              .exclude(expected_choice="").exclude(answer__choice=F("expected_choice")))
    return (failed.values("participant_id").annotate(failed=Count("id"))
            .filter(failed__gt=study.max_failed_checks).values("participant_id"))


def design_weight_expression(comparisons: int) -> Combinable:
    """A count row's design weight 1/(K·p), K = ``comparisons``: p is the probability stored on its
    participant's questions of its comparison (contracts.adaptive.design_weight); 1 where none is stored."""
    probability = SequenceItem.objects.filter(
        participant_id=OuterRef("participant_id"), pair__question_type=OuterRef("comparison"),
        design_probability__isnull=False,
    ).values("design_probability")[:1]  # fmt: skip
    return Coalesce(Value(1.0) / (Value(float(comparisons)) * Subquery(probability, output_field=FloatField())),
                    Value(1.0), output_field=FloatField())  # fmt: skip


def comparison_sums(study: Study, include_simulated: bool = False, weighted: bool = False) -> list[ComparisonSums]:
    """The sums of every comparison of ``study`` over the participants the report counts (not excluded, not
    inattentive; bots only when asked); ``weighted``: each participant's counts times their design weight."""
    people = Q(participant__study=study, participant__excluded=False)
    if not include_simulated:
        people &= Q(participant__simulated=False)
    rows = (ComparisonCount.objects.filter(people).exclude(participant__in=inattentive_participants(study))
            .annotate(n=F("method_1") + F("method_2") + F("equal")).filter(n__gt=0))  # fmt: skip
    weight = design_weight_expression(len(study.comparisons())) if weighted else None
    a, b, e, n = (F(name) if weight is None else F(name) * weight for name in ("method_1", "method_2", "equal", "n"))
    sums = (
        rows.values("comparison").order_by("comparison")
        .annotate(participants=Count("id"), s1=Sum(a), s2=Sum(b), se=Sum(e), a2=Sum(a * a), an=Sum(a * n),
                  n2=Sum(n * n))
    )  # fmt: skip
    fields = ("comparison", "participants", "s1", "s2", "se", "a2", "an", "n2")
    return [ComparisonSums(*(row[field] for field in fields)) for row in sums]


def _result_sql(row: str, vendor: str) -> str:
    """SELECT participant_id, comparison, method_1, method_2, equal of answer ``row`` (NEW/OLD)."""
    first = (f"split_part(p.question_type, '{PAIR_SEPARATOR}', 1)" if vendor == "postgresql" else
             f"substr(p.question_type, 1, instr(p.question_type, '{PAIR_SEPARATOR}') - 1)")
    chosen = f"CASE {row}.choice WHEN 'A' THEN sa.method WHEN 'B' THEN sb.method END"
    return (
        "SELECT i.participant_id AS participant_id, p.question_type AS comparison,"
        f" CASE WHEN {chosen} = {first} THEN 1 ELSE 0 END AS method_1,"
        f" CASE WHEN {chosen} <> {first} THEN 1 ELSE 0 END AS method_2,"
        f" CASE WHEN {row}.choice = 'equal' THEN 1 ELSE 0 END AS equal"
        " FROM studyapp_sequenceitem i JOIN studyapp_pair p ON p.id = i.pair_id"
        " JOIN studyapp_stimulus sa ON sa.id = i.stimulus_a_id"
        " JOIN studyapp_stimulus sb ON sb.id = i.stimulus_b_id"
        f" WHERE i.id = {row}.item_id AND i.expected_choice = ''"
    )


def _add_sql(vendor: str) -> str:
    """Count the NEW answer: create its row or add to it."""
    return (
        f"INSERT INTO {COUNTS} (participant_id, comparison, method_1, method_2, equal) "
        + _result_sql("NEW", vendor)
        + " ON CONFLICT (participant_id, comparison) DO UPDATE SET"
        " method_1 = studyapp_comparisoncount.method_1 + excluded.method_1,"
        " method_2 = studyapp_comparisoncount.method_2 + excluded.method_2,"
        " equal = studyapp_comparisoncount.equal + excluded.equal;"
    )


def _remove_sql(vendor: str) -> str:
    """Uncount the OLD answer from its row (none left when the participant's rows went first)."""
    return (
        f"UPDATE {COUNTS} SET method_1 = {COUNTS}.method_1 - d.method_1,"
        f" method_2 = {COUNTS}.method_2 - d.method_2, equal = {COUNTS}.equal - d.equal"
        f" FROM ({_result_sql('OLD', vendor)}) AS d"  # SQLite: no alias for a trigger's table
        f" WHERE {COUNTS}.participant_id = d.participant_id AND {COUNTS}.comparison = d.comparison;"
    )


def trigger_sql(vendor: str) -> tuple[list[str], list[str]]:
    """(statements creating the count triggers, statements dropping them) for a database vendor."""
    bodies = {"insert": _add_sql(vendor), "delete": _remove_sql(vendor),
              "update": _remove_sql(vendor) + " " + _add_sql(vendor)}  # fmt: skip
    events = {"insert": "INSERT", "delete": "DELETE", "update": "UPDATE OF choice"}
    create, drop = [], []
    for (event, body), name in zip(bodies.items(), TRIGGERS, strict=True):
        if vendor == "postgresql":
            result = "OLD" if event == "delete" else "NEW"
            create.append(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$"
                          f" BEGIN {body} RETURN {result}; END $$;")  # fmt: skip
            create.append(f"CREATE TRIGGER {name} AFTER {events[event]} ON studyapp_answer"
                          f" FOR EACH ROW EXECUTE FUNCTION {name}();")  # fmt: skip
            drop.append(f"DROP FUNCTION IF EXISTS {name}() CASCADE;")
        elif vendor == "sqlite":
            create.append(f"CREATE TRIGGER {name} AFTER {events[event]} ON studyapp_answer"
                          f" FOR EACH ROW BEGIN {body} END;")  # fmt: skip
            drop.append(f"DROP TRIGGER IF EXISTS {name};")
        else:
            raise NotImplementedError(f"no live-chart count triggers for database {vendor!r}")
    return create, drop
