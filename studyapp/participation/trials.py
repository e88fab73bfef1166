"""Usefulness studies (contracts/usefulness.py): a participant's trials, arm and trial pages.

distinction and agreement: ``questions_per_cell`` trials per method × dataset, chosen as the
preference study chooses pairs (least shown first, fresh images first; design.choose_per_cell), in
shuffled order; a distinction trial's panels are shuffled per participant and the place of the
model's top-1 panel stored. Forward simulation: every pre-test trial, then every learning trial of
the participant's arm, then every post-test trial, each phase shuffled; the arm is the one with the
fewest participants so far (ties drawn; released participants, inactive past the study's
``release_after_minutes`` without completing, not counted), assigned under the study lock; exposure
leaves released participants out alike (design.pair_exposure). Attention checks show an
answered trial at random positions and instruct its last answer option. Everything is drawn from a
generator seeded by the participant's token.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

from django.db.models import Count, Q
from django.utils.translation import gettext, pgettext

from contracts.usefulness import (
    AGREEMENT,
    AGREEMENT_ANSWERS,
    CORRECT,
    DISTINCTION,
    FORWARD_SIMULATION,
    LEARN,
    NO_EXPLANATION,
    POST,
    PRE,
)
from studyapp.models import Participant, Trial, TrialItem, TrialPanel, attention_check_problem
from studyapp.participation.design import (
    SequenceError,
    check_positions,
    choose_per_cell,
    holds_everything,
    release_cutoff,
)


@dataclass(frozen=True)
class TrialOption:
    """What the planner needs of one trial (``panels``: TrialPanel ids in manifest order)."""

    pk: int
    cell: tuple[str, str, str]
    image: tuple[str, str]
    phase: str
    arm: str
    panels: tuple[int, ...]
    answers: tuple[str, ...]


@dataclass(frozen=True)
class PlannedTrial:
    """One item of a planned trial sequence (1-based position, panels in the order shown)."""

    position: int
    trial: int
    panels: tuple[int, ...]
    prediction_panel: int | None = None
    expected_answer: str = ""


def answer_values(
    task: str, phase: str, class_names: Sequence[str], panels: int
) -> tuple[str, ...]:
    """The answers a trial offers: panel numbers, correct/incorrect or the dataset's classes;
    none while learning."""
    if task == DISTINCTION:
        return tuple(str(n) for n in range(1, panels + 1))
    if task == AGREEMENT:
        return AGREEMENT_ANSWERS
    return () if phase == LEARN else tuple(class_names)


def trial_options(study_id: int, task: str) -> list[TrialOption]:
    """The trials of a study's bundle as planner options (two flat queries)."""
    panels: dict[int, list[int]] = {}
    for trial, panel in TrialPanel.objects.filter(trial__bundle__study_id=study_id).values_list(
        "trial_id", "pk"
    ):
        panels.setdefault(trial, []).append(panel)  # ordered by (trial, order)
    rows = Trial.objects.filter(bundle__study_id=study_id).values_list(
        "pk", "method", "phase", "dataset__key", "dataset__class_names", "image_id"
    )
    options = []
    for pk, method, phase, dataset, class_names, image in rows:
        shown = tuple(panels.get(pk, ()))
        options.append(
            TrialOption(
                pk=pk,
                cell=(method, dataset, phase),
                image=(dataset, image),
                phase=phase,
                arm=(method or NO_EXPLANATION) if phase == LEARN else "",
                panels=shown,
                answers=answer_values(task, phase, class_names, len(shown)),
            )
        )
    return options


def study_arms(options: Sequence[TrialOption]) -> list[str]:
    """The forward-simulation arms of a bundle, sorted (none for the other tasks)."""
    return sorted({option.arm for option in options if option.phase == LEARN})


def assign_arm(participant: Participant, arms: Sequence[str], rng: random.Random) -> str:
    """The arm with the fewest not-excluded, not released participants (ties drawn); call under the study lock."""
    if not arms:
        return ""
    cutoff = release_cutoff(participant.study.release_after_minutes)
    counts = dict(
        Participant.objects.filter(
            holds_everything("", cutoff), study_id=participant.study_id, excluded=False, arm__in=list(arms)
        )
        .exclude(pk=participant.pk)
        .values_list("arm")
        .annotate(n=Count("id"))
    )
    fewest = min(counts.get(arm, 0) for arm in arms)
    return rng.choice([arm for arm in arms if counts.get(arm, 0) == fewest])


def trial_exposure(study_id: int, release_after_minutes: int = 0) -> dict[int, int]:
    """How many not-excluded participants hold each trial (attention checks not counted; a participant
    released after ``release_after_minutes`` of inactivity holds none)."""
    held = holds_everything("items__participant__", release_cutoff(release_after_minutes))
    shown = Q(items__participant__excluded=False, items__expected_answer="") & held
    rows = Trial.objects.filter(bundle__study_id=study_id).annotate(n=Count("items", filter=shown))
    return dict(rows.values_list("pk", "n"))


def _planned(option: TrialOption, task: str, rng: random.Random, position: int) -> PlannedTrial:
    """The trial at ``position`` with its panels shuffled for a distinction trial."""
    panels = list(option.panels)
    if task != DISTINCTION:
        return PlannedTrial(position, option.pk, tuple(panels))
    rng.shuffle(panels)
    return PlannedTrial(
        position, option.pk, tuple(panels), prediction_panel=panels.index(option.panels[0]) + 1
    )


def plan_trials(
    options: Sequence[TrialOption],
    task: str,
    exposure: dict[int, int],
    per_cell: int,
    rng: random.Random,
    attention_checks: int = 0,
    arm: str = "",
) -> list[PlannedTrial]:
    """The participant's trials in order, with ``attention_checks`` checks at random positions."""
    if task == FORWARD_SIMULATION:
        order = []
        for phase in (PRE, LEARN, POST):
            chosen = [o for o in options if o.phase == phase and (phase != LEARN or o.arm == arm)]
            rng.shuffle(chosen)
            order += chosen
    else:
        order = choose_per_cell(options, exposure, per_cell, rng)
    planned = [
        _planned(option, task, rng, position) for position, option in enumerate(order, start=1)
    ]
    if attention_checks == 0:
        return planned
    answered = [o for o in order if o.answers]
    problem = attention_check_problem(attention_checks, len(answered))
    if problem:
        raise SequenceError(problem)
    positions = check_positions(len(planned), attention_checks, rng)
    shown = [rng.choice(answered) for _ in positions]
    checks = iter(
        replace(_planned(option, task, rng, position), expected_answer=option.answers[-1])
        for position, option in zip(positions, shown, strict=True)
    )
    trials = iter(planned)
    at_check = set(positions)
    return [
        next(checks) if position in at_check else replace(next(trials), position=position)
        for position in range(1, len(planned) + attention_checks + 1)
    ]


def create_trial_sequence(
    participant: Participant, options: list[TrialOption] | None = None
) -> int:
    """Assign the arm, plan and store the participant's trials (under the study lock)."""
    study = participant.study
    options = trial_options(study.pk, study.task) if options is None else options
    rng = random.Random(participant.token)
    arm = (
        assign_arm(participant, study_arms(options), rng)
        if study.task == FORWARD_SIMULATION
        else ""
    )
    planned = plan_trials(
        options,
        study.task,
        trial_exposure(study.pk, study.release_after_minutes),
        study.questions_per_cell,
        rng,
        study.attention_checks,
        arm,
    )
    TrialItem.objects.bulk_create(
        TrialItem(
            participant=participant,
            position=item.position,
            trial_id=item.trial,
            panel_order=list(item.panels),
            prediction_panel=item.prediction_panel,
            expected_answer=item.expected_answer,
        )
        for item in planned
    )
    Participant.objects.filter(pk=participant.pk).update(sequence_length=len(planned), arm=arm)
    participant.sequence_length, participant.arm = len(planned), arm
    return len(planned)


@dataclass(frozen=True)
class TrialPage:
    """What a trial page shows: no method, no panel's class, only opaque image URLs and answers."""

    item_pk: int
    position: int
    task: str
    phase: str
    dataset_task: str
    predicted_class: str
    image_url: str
    panel_urls: tuple[str, ...]
    answers: tuple[str, ...]
    instructed: str = ""

    @property
    def learning(self) -> bool:
        """A learning trial is studied, not answered: the page has only a Next button."""
        return not self.answers

    def answer_label(self, value: str) -> str:
        """How an answer reads on the page, in the active language."""
        if self.task == DISTINCTION:
            return gettext("Explanation %(number)s") % {"number": value}
        if self.task == AGREEMENT:
            return (
                gettext("The model is right") if value == CORRECT else gettext("The model is wrong")
            )
        return value

    def answer_choices(self) -> list[tuple[str, str]]:
        return [(value, self.answer_label(value)) for value in self.answers]


@lru_cache(maxsize=4096)
def trial_pages(token: str) -> tuple[TrialPage, ...]:
    """The participant's stored trials as pages; cached per process since they never change."""
    items = list(
        TrialItem.objects.filter(participant__token=token)
        .select_related("trial__dataset", "participant__study")
        .order_by("position")
    )
    panel_ids = {pk for item in items for pk in item.panel_order}
    urls = {panel.pk: panel.url for panel in TrialPanel.objects.filter(pk__in=panel_ids)}
    pages = []
    for item in items:
        trial = item.trial
        task = item.participant.study.task
        answers = answer_values(task, trial.phase, trial.dataset.class_names, len(item.panel_order))
        pages.append(
            TrialPage(
                item_pk=item.pk,
                position=item.position,
                task=task,
                phase=trial.phase,
                dataset_task=trial.dataset.task_phrase,
                predicted_class=trial.predicted_class,
                image_url=trial.image_url,
                panel_urls=tuple(urls[pk] for pk in item.panel_order),
                answers=answers,
                instructed=item.expected_answer,
            )
        )
    return tuple(pages)


def confidence_label(level: int) -> str:
    """The label of a confidence level (1 = guessing … 4 = certain), in the active language."""
    labels = {
        1: pgettext("confidence", "1 – guessing"),
        2: pgettext("confidence", "2 – unsure"),
        3: pgettext("confidence", "3 – fairly sure"),
        4: pgettext("confidence", "4 – certain"),
    }
    return labels[level]
