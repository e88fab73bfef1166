"""The participant's way through a study: enrolment, the next step, and storing answers safely.

Every write here is idempotent: starting twice with one external id returns the same participant,
and a repeated answer to an item leaves the first answer in place (the database allows one).
"""
from __future__ import annotations

from django.db import IntegrityError, transaction
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


def current_items(participant: Participant, count: int = 2) -> list[SequenceItem]:
    """The first unanswered item(s) of the sequence, with everything a question page shows."""
    return list(
        SequenceItem.objects.filter(participant=participant, answer__isnull=True)
        .select_related("pair__dataset", "stimulus_a", "stimulus_b")
        .order_by("position")[:count]
    )


def next_url(participant: Participant) -> str:
    """The URL of the step this participant has to do next."""
    token = participant.token
    if participant.demographics_at is None:
        return reverse("studyapp:demographics", args=[token])
    if participant.instructions_at is None:
        return reverse("studyapp:instructions", args=[token])
    items = current_items(participant, 1)
    if items:
        return reverse("studyapp:question", args=[token, items[0].position])
    return reverse("studyapp:done", args=[token])


def mark_instructions_read(participant: Participant) -> None:
    """Record that the participant has read the instructions (first time only)."""
    now = timezone.now()
    Participant.objects.filter(pk=participant.pk, instructions_at__isnull=True).update(instructions_at=now)
    participant.instructions_at = participant.instructions_at or now


def record_answer(item: SequenceItem, choice: str, response_ms: int) -> bool:
    """Store the answer unless the item already has one; completes the participant after the last.

    Returns True when this call stored the answer, False when it was a repeat.
    """
    try:
        with transaction.atomic():
            Answer.objects.create(item=item, choice=choice, response_ms=response_ms)
            if not SequenceItem.objects.filter(participant_id=item.participant_id, answer__isnull=True).exists():
                Participant.objects.filter(pk=item.participant_id, completed_at__isnull=True).update(
                    completed_at=timezone.now()
                )
    except IntegrityError:
        return False
    return True

