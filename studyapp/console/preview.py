"""The researcher's preview of a study: a short sequence held in memory only, never stored.

A preference study: one question of every question type (datasets taken in turn). A usefulness
study: one trial of every method (datasets in turn); forward simulation: one pre-test trial, one
learning trial of every arm (the control's too), one post-test trial. When the study has attention
checks, one check follows. The pages are the participant's own templates, filled from these.
"""
from __future__ import annotations

import random
from collections.abc import Iterable

from contracts.usefulness import DISTINCTION, FORWARD_SIMULATION, LEARN, NO_EXPLANATION, POST, PRE
from studyapp.models import ATTENTION_CHECK_CHOICE, Pair, Participant, Study, Trial
from studyapp.participation.flow import Question
from studyapp.participation.trials import TrialPage, answer_values


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


def _in_turn(groups: Iterable[dict[str, Trial]]) -> list[Trial]:
    """The first trial of each group (its datasets by key), each group from the next dataset in turn."""
    return [list(cells.values())[i % len(cells)] for i, cells in enumerate(groups)]


def _preview_trial_choice(study: Study) -> list[Trial]:
    """The trials the preview shows, in order (see the module's docstring)."""
    trials = Trial.objects.filter(bundle__study=study).select_related("dataset").prefetch_related("panels")
    by_group: dict[tuple[str, str], dict[str, Trial]] = {}
    for trial in trials.order_by("dataset__key", "id"):
        group = (trial.phase, (trial.method or NO_EXPLANATION) if trial.phase == LEARN else trial.method)
        by_group.setdefault(group, {}).setdefault(trial.dataset.key, trial)
    if study.task != FORWARD_SIMULATION:
        return _in_turn(cells for _, cells in sorted(by_group.items()))
    learning = [cells for (phase, _), cells in sorted(by_group.items()) if phase == LEARN]
    tests = {phase: [cells for (p, _), cells in sorted(by_group.items()) if p == phase][:1] for phase in (PRE, POST)}
    return _in_turn([*tests[PRE], *learning, *tests[POST]])


def preview_trials(study: Study) -> tuple[TrialPage, ...]:
    """The preview's trial pages of a usefulness study (panels shuffled for distinction, as for a
    participant), then an attention check repeating the first answered trial."""
    chosen = _preview_trial_choice(study)
    answered = [trial for trial in chosen if trial.phase != LEARN]
    check_at = len(chosen) + 1 if study.attention_checks and answered else None
    chosen += answered[:1] if check_at else []
    shuffle = random.Random(study.pk)
    pages = []
    for position, trial in enumerate(chosen, start=1):
        panels = sorted(trial.panels.all(), key=lambda panel: panel.order)
        if study.task == DISTINCTION:
            shuffle.shuffle(panels)
        answers = answer_values(study.task, trial.phase, trial.dataset.class_names, len(panels))
        pages.append(TrialPage(
            item_pk=position, position=position, task=study.task, phase=trial.phase,
            dataset_task=trial.dataset.task_phrase, predicted_class=trial.predicted_class,
            image_url=trial.image_url, panel_urls=tuple(panel.url for panel in panels), answers=answers,
            instructed=answers[-1] if position == check_at else "",
        ))  # fmt: skip
    return tuple(pages)


def preview_length(study: Study) -> int:
    """How many question (or trial) pages the preview has."""
    return len(preview_trials(study) if study.is_usefulness else preview_questions(study))


def preview_participant(study: Study, length: int, answered: int = 0) -> Participant:
    """An unsaved participant with the counters the participant templates read."""
    return Participant(study=study, sequence_length=length, answered=answered)
