"""The participant's way through a study: enrolment, the next step, and storing answers safely.

Every write here is idempotent: starting twice with one external id returns the same participant,
and a repeated answer to an item leaves the first answer in place (the database allows one).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from .design import create_sequence
from .models import Answer, Participant, SequenceItem, Study


class StudyUnavailable(Exception):
    """A newcomer cannot join: the study is not open or already full."""


def find_participant(study: Study, external_id: str | None) -> Participant | None:
    """The study's participant with this external id, if any."""
    if not external_id:
        return None
    return Participant.objects.filter(study=study, external_id=external_id).first()


def enrol(study: Study, *, external_id: str | None = None, simulated: bool = False, preview: bool = False) -> Participant:
    """Return the participant for ``external_id`` or create a new one with their stored sequence.

    Creation holds a lock on the study row so that concurrent newcomers see each other's exposure
    counts; a concurrent start with the same external id hits the unique constraint and returns
    the participant the other request created.
    """
    existing = find_participant(study, external_id)
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            locked = Study.objects.select_for_update().get(pk=study.pk)
            if locked.status != Study.Status.OPEN and not preview:
                raise StudyUnavailable(f"study is {locked.status}")
            if locked.is_full():
                raise StudyUnavailable("study is full")
            participant = Participant.objects.create(study=locked, external_id=external_id or None, simulated=simulated)
            create_sequence(participant)
            return participant
    except IntegrityError:
        existing = find_participant(study, external_id)
        if existing is None:
            raise
        return existing


@dataclass(frozen=True)
class Question:
    """What a question page shows: no method, no pair metadata, only opaque image URLs."""

    item_pk: int
    position: int
    predicted_class: str
    task: str
    image_url: str
    a_url: str
    b_url: str


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
        )
        for item in items
    )


def question_url(participant: Participant, position: int) -> str:
    """The URL of question ``position``, or of the thank-you page past the last question."""
    if position > participant.sequence_length:
        return reverse("studyapp:done", args=[participant.token])
    return reverse("studyapp:question", args=[participant.token, position])


def next_url(participant: Participant) -> str:
    """The URL of the step this participant has to do next."""
    token = participant.token
    if participant.demographics_at is None:
        return reverse("studyapp:demographics", args=[token])
    if participant.instructions_at is None:
        return reverse("studyapp:instructions", args=[token])
    return question_url(participant, participant.answered + 1)


def mark_instructions_read(participant: Participant) -> None:
    """Record that the participant has read the instructions (first time only)."""
    now = timezone.now()
    Participant.objects.filter(pk=participant.pk, instructions_at__isnull=True).update(instructions_at=now)
    participant.instructions_at = participant.instructions_at or now


def record_answer(participant: Participant, question: Question, choice: str, response_ms: int) -> bool:
    """Store the answer to the participant's current question unless it already has one.

    Answers only ever go to the first unanswered item, so the stored answers are always positions
    1..answered; the counter rises in the same transaction as the insert, and the last answer
    completes the participant. Returns True when this call stored the answer, False for a repeat.
    """
    now = timezone.now()
    last = participant.answered + 1 == participant.sequence_length
    try:
        with transaction.atomic():
            Answer.objects.create(item_id=question.item_pk, choice=choice, response_ms=response_ms, answered_at=now)
            # The insert succeeded, so nobody else answered this position: the counter is ours to raise.
            completion = {"completed_at": now} if last else {}
            Participant.objects.filter(pk=participant.pk).update(answered=F("answered") + 1, **completion)
    except IntegrityError:
        return False
    participant.answered += 1
    if last:
        participant.completed_at = now
    return True
