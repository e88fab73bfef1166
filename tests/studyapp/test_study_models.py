"""Database constraints that protect the data even if application code is wrong."""
from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from studyapp.models import Answer, Participant, SequenceItem, Study
from studyapp.participation.flow import enrol

pytestmark = pytest.mark.django_db


def _violates(create) -> bool:
    try:
        with transaction.atomic():
            create()
    except IntegrityError:
        return True
    return False


def test_one_answer_per_item(study: Study):
    item = enrol(study).items.first()
    Answer.objects.create(item=item, choice="A", response_ms=10)
    assert _violates(lambda: Answer.objects.create(item=item, choice="B", response_ms=10))
    assert Answer.objects.get(item=item).choice == "A"


def test_answer_choice_must_be_a_b_or_equal(study: Study):
    item = enrol(study).items.first()
    assert _violates(lambda: Answer.objects.create(item=item, choice="C", response_ms=10))


def test_sequence_items_are_unique_per_position_and_pair_with_distinct_sides(study: Study):
    participant = enrol(study)
    item = participant.items.get(position=1)
    other = participant.items.get(position=2)
    same = {"participant": participant, "stimulus_a": item.stimulus_a, "stimulus_b": item.stimulus_b}
    assert _violates(lambda: SequenceItem.objects.create(position=1, pair=other.pair, **same))
    assert _violates(lambda: SequenceItem.objects.create(position=99, pair=item.pair, **same))
    assert _violates(lambda: SequenceItem.objects.create(
        participant=participant, position=98, pair=other.pair, stimulus_a=item.stimulus_a, stimulus_b=item.stimulus_a))
    assert _violates(lambda: SequenceItem.objects.create(position=0, pair=other.pair, **{**same, "participant": enrol(study)}))


def test_external_id_unique_per_study_but_free_across_studies(study: Study):
    Participant.objects.create(study=study, external_id="X")
    assert _violates(lambda: Participant.objects.create(study=study, external_id="X"))
    Participant.objects.create(study=study, external_id=None)
    Participant.objects.create(study=study, external_id=None)
    other = Study.objects.create(slug="other", title="Other")
    Participant.objects.create(study=other, external_id="X")


def test_tokens_are_long_random_and_unique(study: Study):
    tokens = {enrol(study).token for _ in range(5)}
    assert len(tokens) == 5 and all(len(t) >= 43 for t in tokens)
    first = Participant.objects.first()
    assert _violates(lambda: Participant.objects.create(study=study, token=first.token))


def test_study_link_and_status(study: Study):
    assert study.get_absolute_url() == "/s/pilot/"
    assert not study.is_full()
    Study.objects.filter(pk=study.pk).update(target_participants=0)
    study.refresh_from_db()
    assert study.is_full()
