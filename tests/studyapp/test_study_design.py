"""Sequence design: N per cell, even exposure, no repeated image where the pool allows, stored random sides."""
from __future__ import annotations

import random
from collections import Counter

import pytest

from studyapp.models import Pair, Participant, Study
from studyapp.participation.design import PairOption, plan_sequence
from studyapp.participation.flow import enrol


def _options(cells: dict[tuple[str, str], list[str]]) -> list[PairOption]:
    options, pk = [], 0
    for cell, images in cells.items():
        for image in images:
            pk += 1
            options.append(PairOption(pk=pk, cell=cell, image=(cell[1], image), stimuli=(100 + 2 * pk, 101 + 2 * pk)))
    return options


def test_plan_takes_n_per_cell_least_exposed_first():
    options = _options({("t1", "d"): ["i1", "i2", "i3"], ("t2", "d"): ["i4", "i5", "i6"]})
    exposure = {1: 5, 2: 0, 3: 1, 4: 0, 5: 9, 6: 2}
    planned = plan_sequence(options, exposure, 2, random.Random(0))
    assert sorted(p.pair for p in planned) == [2, 3, 4, 6]
    assert [p.position for p in planned] == [1, 2, 3, 4]


def test_plan_avoids_repeated_images_where_possible_and_reuses_only_when_needed():
    # Cell t1 can only use i1/i2; cell t2 has i1, i2 and i3: it must take i3 and one repeat.
    options = _options({("t1", "d"): ["i1", "i2"], ("t2", "d"): ["i1", "i2", "i3"]})
    planned = plan_sequence(options, {}, 2, random.Random(3))
    images = Counter(options[p.pair - 1].image for p in planned)
    assert len(planned) == 4
    assert images[("d", "i3")] == 1
    assert sum(images.values()) - len(images) == 1  # exactly one repeat: the pool allows no better
    fresh = plan_sequence(_options({("t1", "d"): ["i1", "i2"], ("t2", "d"): ["i3", "i4"]}), {}, 2, random.Random(3))
    assert len({options[p.pair - 1].pk for p in fresh}) == 4


def test_plan_takes_the_whole_pool_when_a_cell_is_short():
    planned = plan_sequence(_options({("t1", "d"): ["i1"]}), {}, 4, random.Random(0))
    assert len(planned) == 1


def test_plan_shuffles_order_and_sides():
    options = _options({("t", "d"): [f"i{i}" for i in range(40)]})
    planned = plan_sequence(options, {}, 40, random.Random(7))
    assert [p.pair for p in planned] != sorted(p.pair for p in planned)
    swapped = sum(p.stimulus_a == options[p.pair - 1].stimuli[1] for p in planned)
    assert 8 <= swapped <= 32
    assert all({p.stimulus_a, p.stimulus_b} == set(options[p.pair - 1].stimuli) for p in planned)


@pytest.mark.django_db
def test_stored_sequences_give_even_exposure_and_no_repeated_images(study: Study):
    participants = [enrol(study) for _ in range(30)]
    for participant in participants:
        items = list(participant.items.select_related("pair__dataset", "stimulus_a", "stimulus_b"))
        assert len(items) == 12
        cells = Counter((i.pair.question_type, i.pair.dataset.key) for i in items)
        assert set(cells.values()) == {2} and len(cells) == 6
        images = [(i.pair.dataset.key, i.pair.image_id) for i in items]
        assert len(images) == len(set(images))
        assert all(i.stimulus_a.pair_id == i.pair_id == i.stimulus_b.pair_id for i in items)
    shown = [pair.sequence_items.count() for pair in Pair.objects.filter(bundle__study=study)]
    # 30 participants × 2 per cell over 6 pairs per cell = 10 each when exposure is perfectly even;
    # drawing at random would spread them far wider.
    assert sum(shown) == 360 and max(shown) - min(shown) <= 2


@pytest.mark.django_db
def test_excluded_participants_do_not_count_towards_exposure(study: Study):
    first = enrol(study)
    Participant.objects.filter(pk=first.pk).update(excluded=True)
    second = enrol(study)
    first_pairs = set(first.items.values_list("pair_id", flat=True))
    second_pairs = set(second.items.values_list("pair_id", flat=True))
    assert first_pairs & second_pairs  # seeded by token, free to choose the same least-shown pairs again
