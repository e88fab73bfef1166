"""The participant's way through a study: enrolment, the next step, and storing answers safely.

Every write here is idempotent: starting twice with one external id returns the same participant,
and a repeated answer to an item leaves the first answer in place (the database allows one).

Every step stamps ``last_active_at`` (the release of returned / timed-out sessions reads it, see
design.pair_exposure). A participant who fails more attention checks than the study's
``max_failed_checks`` is screened out the moment the rule is exceeded: excluded (never rejected),
answers kept, and every later step leads to the screened-out page with its own code.
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Case, F, Value, When
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from contracts.usefulness import PREFERENCE
from studyapp.models import Answer, Choice, Participant, SequenceItem, Study, TrialAnswer
from studyapp.participation.design import SequenceError, create_sequence, pair_options
from studyapp.participation.trials import create_trial_sequence, trial_options


class StudyUnavailable(Exception):
    """A newcomer cannot join: the study is not open or already full."""


class ExternalIdTaken(Exception):
    """Another participant of the study already has this external id; only their own browser resumes them."""


def find_participant(study: Study, external_id: str | None) -> Participant | None:
    """The study's participant with this external id, if any."""
    if not external_id:
        return None
    return Participant.objects.filter(study=study, external_id=external_id).first()


def enrol(
    study: Study, *, external_id: str | None = None, simulated: bool = False, only_new: bool = False, language: str = "",
) -> Participant:
    """Return the participant for ``external_id`` or create a new one with their stored sequence.

    A new participant starts in ``language`` (default: the study's language).

    With ``only_new`` an existing participant raises ExternalIdTaken instead: on the study page an
    external id is no credential (anyone may know it), so it must not hand out that participant.
    Creation holds a lock on the study row so that concurrent newcomers see each other's exposure
    counts; a concurrent start with the same external id hits the unique constraint and returns
    the participant the other request created.
    """
    existing = find_participant(study, external_id)
    if existing is not None:
        return _existing(existing, only_new)
    usefulness = study.task != PREFERENCE
    options = trial_options(study.pk, study.task) if usefulness else pair_options(study.pk)
    try:
        with transaction.atomic():
            locked = Study.objects.select_for_update().get(pk=study.pk)
            if locked.status != Study.Status.OPEN:
                raise StudyUnavailable(f"study is {locked.status}")
            if locked.is_full():
                raise StudyUnavailable("study is full")
            participant = Participant.objects.create(
                study=locked, external_id=external_id or None, simulated=simulated,
                language=language or locked.language,
            )
            try:
                (create_trial_sequence if usefulness else create_sequence)(participant, options)
            except SequenceError as exc:  # rolls the new participant back
                raise StudyUnavailable(str(exc)) from None
            return participant
    except IntegrityError:
        existing = find_participant(study, external_id)
        if existing is None:
            raise
        return _existing(existing, only_new)


def _existing(participant: Participant, only_new: bool) -> Participant:
    if only_new:
        raise ExternalIdTaken(participant.external_id)
    return participant


@dataclass(frozen=True)
class Question:
    """What a question page shows: no method, no pair metadata, only opaque image URLs.

    ``instructed`` is the label of the answer an attention check asks for and ``expected`` its value (both
    empty for a question).
    """

    item_pk: int
    position: int
    predicted_class: str
    task: str
    image_url: str
    a_url: str
    b_url: str
    instructed: str = ""
    expected: str = ""


@lru_cache(maxsize=4096)
def questions(token: str) -> tuple[Question, ...]:
    """The participant's stored sequence as question pages; cached per process since it never changes."""
    items = (
        SequenceItem.objects.filter(participant__token=token)
        .select_related("pair__dataset", "stimulus_a", "stimulus_b")
        .order_by("position")
    )
    return tuple(
        Question(
            item_pk=item.pk,
            position=item.position,
            predicted_class=item.pair.predicted_class,
            task=item.pair.dataset.task_phrase,
            image_url=item.pair.image_url,
            a_url=item.stimulus_a.url,
            b_url=item.stimulus_b.url,
            instructed=Choice(item.expected_choice).label if item.expected_choice else "",
            expected=item.expected_choice,
        )
        for item in items
    )


def question_url(participant: Participant, position: int) -> str:
    """The URL of question ``position``, or of the thank-you page past the last question."""
    if position > participant.sequence_length:
        return reverse("studyapp:done", args=[participant.token])
    return reverse("studyapp:question", args=[participant.token, position])


def next_url(participant: Participant) -> str:
    """The URL of the step this participant has to do next (the screened-out page once screened out)."""
    token = participant.token
    if participant.screened_out_at is not None:
        return reverse("studyapp:screened_out", args=[token])
    if participant.demographics_at is None:
        return reverse("studyapp:demographics", args=[token])
    if participant.instructions_at is None:
        return reverse("studyapp:instructions", args=[token])
    return question_url(participant, participant.answered + 1)


def mark_instructions_read(participant: Participant) -> None:
    """Record that the participant has read the instructions (first time only)."""
    now = timezone.now()
    Participant.objects.filter(pk=participant.pk, instructions_at__isnull=True).update(
        instructions_at=now, last_active_at=now
    )
    participant.instructions_at = participant.instructions_at or now


@dataclass(frozen=True)
class StudyTexts:
    """What a question page shows of its study: title and prompt, and the language rules it follows."""

    title: str
    question_prompt: str
    language: str
    allow_browser_language: bool
    task: str = PREFERENCE

    @classmethod
    def of(cls, study: Study) -> StudyTexts:
        """The texts of a study already loaded (the researcher's preview)."""
        return cls(study.title, study.question_prompt, study.language, study.allow_browser_language, study.task)


class QuestionVisit(NamedTuple):
    """A participant on a question page (only the fields it needs) and their study's texts."""

    participant: Participant
    texts: StudyTexts


# In model field order, as Model.from_db expects for a subset of the fields.
QUESTION_FIELDS = tuple(
    f.attname
    for f in Participant._meta.concrete_fields
    if f.attname in {"id", "token", "answered", "sequence_length", "demographics_at", "instructions_at", "completed_at",
                      "language", "screened_out_at"}
)


def question_participant(token: str) -> QuestionVisit:
    """The participant with only the fields a question page and an answer need, and its study's texts.

    One indexed query written out by hand: building the same select with the ORM costs several
    times the CPU, and this runs for every question shown and every answer given. It is also the
    first query of those requests, so it replaces a persistent connection the database dropped
    (restart, idle timeout) instead of a per-request health check, which is a round trip more.
    Raises Http404 for an unknown token.
    """
    columns = ", ".join(f"p.{name}" for name in QUESTION_FIELDS)
    sql = (
        f"SELECT {columns}, s.title, s.question_prompt, s.language, s.allow_browser_language, s.task"
        f" FROM {Participant._meta.db_table} p"
        f" JOIN {Study._meta.db_table} s ON s.id = p.study_id WHERE p.token = %s"
    )
    try:
        row = fetch_one(sql, [token])
    except DatabaseError:
        if connection.in_atomic_block or connection.is_usable():
            raise
        connection.close()
        row = fetch_one(sql, [token])
    if row is None:
        raise Http404("No such participant.")
    participant = Participant.from_db(connection.alias, QUESTION_FIELDS, row[:-5])
    title, prompt, language, allow_browser_language, task = row[-5:]
    return QuestionVisit(participant, StudyTexts(title, prompt, language, bool(allow_browser_language), task))


def fetch_one(sql: str, params: list) -> tuple | None:
    """The first row of a query, or None."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def record_answer(participant: Participant, question: Question, choice: str, response_ms: int) -> bool:
    """Store the answer to the participant's current question unless it already has one (see ``store_once``)."""
    columns = ("item_id", "choice", "response_ms")
    return store_once(participant, Answer._meta.db_table, columns, [question.item_pk, choice, response_ms])


def record_trial_answer(participant: Participant, item_pk: int, answer: str, confidence: int | None,
                        response_ms: int) -> bool:  # fmt: skip
    """Store the answer to the participant's current trial (empty for a learning trial) unless it has one."""
    columns = ("item_id", "answer", "confidence", "response_ms")
    return store_once(participant, TrialAnswer._meta.db_table, columns, [item_pk, answer, confidence, response_ms])


def store_once(participant: Participant, table: str, columns: tuple[str, ...], values: list) -> bool:
    """Insert the answer row ``columns`` = ``values`` (plus ``answered_at``) for the current item, once.

    Answers only ever go to the first unanswered item, so the stored answers are always positions
    1..answered; the counter rises atomically with the insert, and the last answer completes the
    participant. Returns True when this call stored the answer, False for a repeat (the table allows
    one answer per item). Plain SQL for the same reason as in ``question_participant``; on
    PostgreSQL insert and update are one statement (atomic on its own: one round trip instead of
    BEGIN, INSERT, UPDATE, COMMIT).
    """
    now = timezone.now()
    stamp = connection.ops.adapt_datetimefield_value(now)
    insert = (f"INSERT INTO {table} ({', '.join(columns)}, answered_at)"
              f" VALUES ({', '.join(['%s'] * (len(columns) + 1))})")  # fmt: skip
    # The insert succeeded, so nobody else answered this position: the counter is ours to raise.
    update = (f"UPDATE {Participant._meta.db_table} SET answered = answered + 1, last_active_at = %s, completed_at"
              " = CASE WHEN answered + 1 = sequence_length THEN %s ELSE completed_at END WHERE id = %s")  # fmt: skip
    values, counter = [*values, stamp], [stamp, stamp, participant.pk]
    one_statement = connection.vendor == "postgresql"
    # A lone statement needs no transaction, except a savepoint inside a caller's transaction.
    atomic = transaction.atomic() if connection.in_atomic_block or not one_statement else nullcontext()
    try:
        with atomic, connection.cursor() as cursor:
            if one_statement:
                cursor.execute(f"WITH answer AS ({insert} RETURNING 1) {update} AND EXISTS (SELECT 1 FROM answer)",
                               values + counter)  # fmt: skip
            else:
                cursor.execute(insert, values)
                cursor.execute(update, counter)
    except IntegrityError:
        return False
    participant.answered += 1
    if participant.answered == participant.sequence_length:
        participant.completed_at = now
    return True


def failed_checks(participant_pk: int, usefulness: bool) -> int:
    """How many attention checks the participant answered otherwise than instructed."""
    if usefulness:
        checks = TrialAnswer.objects.filter(item__participant_id=participant_pk).exclude(item__expected_answer="")
        return checks.exclude(answer=F("item__expected_answer")).count()
    checks = Answer.objects.filter(item__participant_id=participant_pk).exclude(item__expected_choice="")
    return checks.exclude(choice=F("item__expected_choice")).count()


def screen_out_if_failed(participant: Participant, usefulness: bool) -> bool:
    """After a failed attention check: screen the participant out when their failed checks now exceed the
    study's ``max_failed_checks`` (excluded with the reason, answers kept); True when they are screened out.

    Only called for a wrong answer to a check, so that a passed check costs no query beyond storing it.
    """
    allowed = Study.objects.filter(participants=participant.pk).values_list("max_failed_checks", flat=True).get()
    failed = failed_checks(participant.pk, usefulness)
    if failed <= allowed:
        return False
    now = timezone.now()
    reason = f"screened out: failed {failed} attention checks, more than the study allows ({allowed})"
    # A failed check on the last item has just completed the sequence: screened out is the outcome, not complete.
    Participant.objects.filter(pk=participant.pk, screened_out_at__isnull=True).update(
        screened_out_at=now, excluded=True, completed_at=None,
        exclusion_reason=Case(When(exclusion_reason="", then=Value(reason)), default=F("exclusion_reason")),
    )  # fmt: skip
    participant.screened_out_at = participant.screened_out_at or now
    participant.completed_at = None
    return True
