"""Sequence assignment: which pairs a participant sees, in which order, and which method is System A.

For every question type × dataset cell a participant gets ``questions_per_cell`` pairs. Pairs are
taken least-shown first across all cells, skipping pairs whose image this participant already
has; only a cell whose pool has no fresh image left reuses one. The order is shuffled and the side of each method
is drawn per question; everything is drawn from a generator seeded by the participant's token.

The study's attention checks are then put at random positions among them: each shows a pair the
participant does not meet as a question while there is one (else one they do), sides drawn alike,
and instructs :data:`ATTENTION_CHECK_CHOICE`. With no checks the draws are those of a plan without.

Exposure counts the sequences of not-excluded participants who have completed or were active within
the study's ``release_after_minutes``. A participant inactive longer without completing (a returned or
timed-out submission) is released: their pairs go back to the pool for newcomers. Their answers stay
stored, but hold nothing either: the analysis counts completed participants, so a pair answered by
someone who left must still be given to a participant who completes, or the completed answers drift
out of balance (tests/studyapp/test_recruitment.py measures both). Coming back makes them active again:
they continue their stored sequence, which counts again.

An adaptive study (``Study.design``) splits the same number of questions over its comparisons instead
(contracts.adaptive): each comparison's probability from the answers so far (the unweighted sums of
studyapp.aggregates), the participant's questions allocated by randomised rounding, each comparison's
share spread evenly over its datasets, and the pairs then chosen, ordered and sided as above. Each
question stores its comparison's probability p, so that its answer's weight 1/(K·p) can be recomputed.
"""
from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from django.db.models import Count, Q
from django.utils import timezone

from contracts.adaptive import adaptive_probabilities, allocate
from studyapp.aggregates import comparison_sums
from studyapp.models import (
    ATTENTION_CHECK_CHOICE,
    Pair,
    Participant,
    SequenceItem,
    Stimulus,
    Study,
    attention_check_problem,
    questions_per_participant,
)

Cell = tuple[str, str]


@dataclass(frozen=True)
class PairOption:
    """What the planner needs to know about one pair."""

    pk: int
    cell: Cell
    image: tuple[str, str]
    stimuli: tuple[int, int]


@dataclass(frozen=True)
class PlannedItem:
    """One question of a planned sequence (1-based position)."""

    position: int
    pair: int
    stimulus_a: int
    stimulus_b: int
    expected_choice: str = ""


class SequenceError(ValueError):
    """The study's settings admit no sequence (more attention checks than questions)."""


def _sides(option: PairOption, rng: random.Random) -> tuple[int, int]:
    """System A's and System B's stimulus, each method on either side with probability 1/2."""
    first, second = option.stimuli
    return (second, first) if rng.random() < 0.5 else (first, second)


class CellOption(Protocol):
    """What choosing per cell needs of an option: its id, its cell and its image."""

    @property
    def pk(self) -> int: ...

    @property
    def cell(self) -> tuple[str, ...]: ...

    @property
    def image(self) -> tuple[str, str]: ...


Option = TypeVar("Option", bound=CellOption)


PerCell = int | Mapping[tuple[str, ...], int]


def choose_per_cell(options: Sequence[Option], exposure: Mapping[int, int], per_cell: PerCell,
                    rng: random.Random) -> list[Option]:  # fmt: skip
    """``per_cell`` options of every cell (a number, or one per cell: none for a cell it omits), least exposed
    first and fresh images only while possible, shuffled."""
    tiebreak = {option.pk: rng.random() for option in options}
    ranked = sorted(options, key=lambda o: (exposure.get(o.pk, 0), tiebreak[o.pk]))
    need: dict[tuple[str, ...], int] = (defaultdict(lambda: per_cell) if isinstance(per_cell, int)
                                        else defaultdict(int, per_cell))  # fmt: skip
    used_images: set[tuple[str, str]] = set()
    chosen: dict[int, Option] = {}
    for fresh_only in (True, False):  # second pass only where a cell's pool has no fresh image left
        for option in ranked:
            if need[option.cell] == 0 or option.pk in chosen or (fresh_only and option.image in used_images):
                continue
            chosen[option.pk] = option
            used_images.add(option.image)
            need[option.cell] -= 1
    order = list(chosen.values())
    rng.shuffle(order)
    return order


def check_positions(questions: int, checks: int, rng: random.Random) -> list[int]:
    """The sorted 1-based positions of ``checks`` attention checks among ``questions`` questions
    (SequenceError when they outnumber the questions)."""
    problem = attention_check_problem(checks, questions)
    if problem:
        raise SequenceError(problem)
    return sorted(rng.sample(range(1, questions + checks + 1), checks))


def plan_sequence(
    options: Sequence[PairOption], exposure: Mapping[int, int], per_cell: PerCell, rng: random.Random,
    attention_checks: int = 0,
) -> list[PlannedItem]:
    """Choose ``per_cell`` pairs per cell (a number, or one per cell; least exposed first, fresh images only while
    possible), shuffle, draw sides; then add ``attention_checks`` checks at random positions (SequenceError when they
    outnumber the questions)."""
    order = choose_per_cell(options, exposure, per_cell, rng)
    chosen = {option.pk for option in order}
    planned = []
    for position, option in enumerate(order, start=1):
        a, b = _sides(option, rng)
        planned.append(PlannedItem(position=position, pair=option.pk, stimulus_a=a, stimulus_b=b))
    if attention_checks == 0:
        return planned
    problem = attention_check_problem(attention_checks, len(planned))
    if problem:
        raise SequenceError(problem)
    return _with_attention_checks(planned, options, chosen, attention_checks, rng)


def _with_attention_checks(
    planned: list[PlannedItem], options: Sequence[PairOption], asked: set[int], count: int, rng: random.Random
) -> list[PlannedItem]:
    """``planned`` with ``count`` attention checks at random positions, the questions renumbered around them."""
    unasked = [o for o in options if o.pk not in asked]
    again = [o for o in options if o.pk in asked]
    rng.shuffle(unasked)
    rng.shuffle(again)
    shown = (unasked + again)[:count]
    total = len(planned) + count
    positions = check_positions(len(planned), count, rng)
    checks = iter(
        PlannedItem(position, option.pk, *_sides(option, rng), expected_choice=ATTENTION_CHECK_CHOICE)
        for position, option in zip(positions, shown, strict=True)
    )
    questions = iter(planned)
    at_check = set(positions)
    return [
        next(checks) if position in at_check else replace(next(questions), position=position)
        for position in range(1, total + 1)
    ]


def design_probabilities(study: Study) -> dict[str, float]:
    """Each comparison's probability for the next participant of an adaptive study (contracts.adaptive), from
    the unweighted sums of the answers so far of every participant the report counts, bots included."""
    sums = {sums.comparison: sums for sums in comparison_sums(study, include_simulated=True)}
    return adaptive_probabilities(study.comparisons(), sums, study.adaptive_min_share, study.adaptive_objective)


def adaptive_per_cell(options: Sequence[PairOption], probabilities: Mapping[str, float], per_cell: int,
                      rng: random.Random) -> dict[Cell, int]:  # fmt: skip
    """Questions per cell of an adaptive sequence: the balanced sequence's total allocated over the comparisons
    (contracts.adaptive.allocate), each comparison's count spread evenly over its datasets.

    A comparison allocated more questions than it has pairs keeps all of them and hands the rest to the
    comparisons with pairs left, the likeliest first, so that no pair is asked twice and the total stays.
    """
    sizes = Counter(option.cell for option in options)
    counts = allocate(probabilities, questions_per_participant(sizes.values(), per_cell), rng)
    capacity = Counter(option.cell[0] for option in options)  # pairs per comparison
    left = sum(max(count - capacity[comparison], 0) for comparison, count in counts.items())
    counts = {comparison: min(count, capacity[comparison]) for comparison, count in counts.items()}
    for comparison in sorted(counts, key=lambda c: -probabilities[c]):
        extra = min(capacity[comparison] - counts[comparison], left)
        counts[comparison] += extra
        left -= extra
    need: dict[Cell, int] = {}
    for comparison, count in counts.items():
        cells = sorted(cell for cell in sizes if cell[0] == comparison)
        rng.shuffle(cells)  # which datasets get one more when the count does not divide evenly
        need |= dict.fromkeys(cells, 0)
        while count:
            for cell in cells:
                if count and need[cell] < sizes[cell]:
                    need[cell] += 1
                    count -= 1
    return need


def pair_options(study_id: int) -> list[PairOption]:
    """The pairs of a study's bundle as planner options (one flat query: newcomers wait for this)."""
    rows = (
        Stimulus.objects.filter(pair__bundle__study_id=study_id)
        .order_by("pair_id", "order")
        .values_list("pair_id", "pk", "pair__question_type", "pair__dataset__key", "pair__image_id")
    )
    stimuli: dict[int, list[int]] = defaultdict(list)
    described: dict[int, tuple[str, str, str]] = {}
    for pair, stimulus, question_type, dataset, image in rows:
        stimuli[pair].append(stimulus)
        described[pair] = (question_type, dataset, image)
    return [
        PairOption(pk=pair, cell=(question_type, dataset), image=(dataset, image), stimuli=(stimuli[pair][0], stimuli[pair][1]))
        for pair, (question_type, dataset, image) in described.items()
    ]


def release_cutoff(release_after_minutes: int, now: datetime | None = None) -> datetime | None:
    """The last activity before which an incomplete participant is released; None when the study never releases."""
    if release_after_minutes <= 0:
        return None
    return (now or timezone.now()) - timedelta(minutes=release_after_minutes)


def holds_everything(prefix: str, cutoff: datetime | None) -> Q:
    """Participants (reached through ``prefix``) who hold their whole sequence: completed, or active since ``cutoff``."""
    if cutoff is None:
        return Q()
    return Q(**{f"{prefix}completed_at__isnull": False}) | Q(**{f"{prefix}last_active_at__gte": cutoff})


def pair_exposure(study_id: int, release_after_minutes: int = 0, now: datetime | None = None) -> dict[int, int]:
    """How many not-excluded participants hold each pair of the study among their questions (checks not counted).

    With ``release_after_minutes`` an incomplete participant inactive longer is released and holds none.
    """
    held = holds_everything("sequence_items__participant__", release_cutoff(release_after_minutes, now))
    asked = Q(sequence_items__participant__excluded=False, sequence_items__expected_choice="") & held
    rows = (
        Pair.objects.filter(bundle__study_id=study_id)
        .annotate(n=Count("sequence_items", filter=asked))
        .values_list("pk", "n")
    )
    return dict(rows)


def create_sequence(participant: Participant, options: list[PairOption] | None = None) -> int:
    """Plan and store the participant's sequence (balanced or adaptive, as the study says); call inside the
    transaction that holds the study lock, so that an adaptive design reads the answers of everyone before.

    ``options`` (the study's :func:`pair_options`, which never change) may be read before taking
    the lock, so that newcomers queue for the exposure counts only.
    """
    study = participant.study
    options = pair_options(participant.study_id) if options is None else options
    rng = random.Random(participant.token)
    probabilities = design_probabilities(study) if study.is_adaptive else None
    planned = plan_sequence(
        options,
        pair_exposure(participant.study_id, study.release_after_minutes),
        study.questions_per_cell if probabilities is None else adaptive_per_cell(options, probabilities,
                                                                                 study.questions_per_cell, rng),
        rng,
        study.attention_checks,
    )
    comparison = {option.pk: option.cell[0] for option in options}
    SequenceItem.objects.bulk_create(
        SequenceItem(
            participant=participant,
            position=item.position,
            pair_id=item.pair,
            stimulus_a_id=item.stimulus_a,
            stimulus_b_id=item.stimulus_b,
            expected_choice=item.expected_choice,
            design_probability=None if probabilities is None or item.expected_choice
            else probabilities[comparison[item.pair]],
        )
        for item in planned
    )
    Participant.objects.filter(pk=participant.pk).update(sequence_length=len(planned))
    participant.sequence_length = len(planned)
    return len(planned)
