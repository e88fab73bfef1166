"""The researcher's preview of a study: a short sequence held in memory only, never stored.

One question of every question type (datasets taken in turn) and, when the study has attention
checks, one check: the pages are the participant's own templates, filled from these questions.
"""
from __future__ import annotations

import random

from studyapp.models import ATTENTION_CHECK_CHOICE, Pair, Participant, Study
from studyapp.participation.flow import Question


def preview_questions(study: Study) -> tuple[Question, ...]:
    """The preview's questions: the first pair of each question type, each type from the next dataset in turn."""
    pairs = Pair.objects.filter(bundle__study=study).select_related("dataset").prefetch_related("stimuli")
    by_type: dict[str, dict[str, Pair]] = {}
    for pair in pairs.order_by("question_type", "dataset__key", "id"):
        by_type.setdefault(pair.question_type, {}).setdefault(pair.dataset.key, pair)
    chosen = [list(cells.values())[i % len(cells)] for i, cells in enumerate(by_type.values())]
    if study.attention_checks and chosen:
        chosen.append(chosen[0])
    sides = random.Random(study.pk)
    result = []
    for position, pair in enumerate(chosen, start=1):
        first, second = sorted(pair.stimuli.all(), key=lambda s: s.order)
        if sides.random() < 0.5:
            first, second = second, first
        check = bool(study.attention_checks) and position == len(chosen)
        result.append(Question(
            item_pk=position, position=position, predicted_class=pair.predicted_class, task=pair.dataset.task_phrase,
            image_url=pair.image_url, a_url=first.url, b_url=second.url,
            instructed=ATTENTION_CHECK_CHOICE.label if check else "",
        ))  # fmt: skip
    return tuple(result)


def preview_participant(study: Study, length: int, answered: int = 0) -> Participant:
    """An unsaved participant with the counters the participant templates read."""
    return Participant(study=study, sequence_length=length, answered=answered)
