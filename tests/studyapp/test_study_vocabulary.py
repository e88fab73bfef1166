"""The study app's Django choices spell exactly the shared vocabulary of ``contracts``."""
from __future__ import annotations

from contracts.vocabulary import CHOICES, EXPERIENCE_LABELS, GENDERS, STATUSES
from studyapp.models import Choice, Participant


def test_model_choices_match_the_contracts() -> None:
    assert tuple(Choice.values) == CHOICES
    assert tuple(Participant.Gender.values) == GENDERS
    assert tuple(Participant.Experience.values) == EXPERIENCE_LABELS


def test_participant_status_words_are_the_contracts() -> None:
    assert set(STATUSES) == {"completed", "incomplete", "excluded"}
