"""Choice policies of simulated participants.

Bots see only the blinded pages, so a policy that prefers a method looks up, on the server side,
which method the participant's sequence item shows as System A. That is only possible for a
process with database access, such as the ``simulate_participants`` command.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from django.core.exceptions import ValidationError

from studyapp.models import SequenceItem
from studyapp.simulated.participants import CHOICES, Chooser, random_choice


@dataclass(frozen=True)
class PreferMethod:
    """Choose the side showing ``method`` with probability ``p``; otherwise the other side or equal."""

    method: str
    p: float

    def __call__(self, token: str, position: int, rng: random.Random) -> str:
        item = (
            SequenceItem.objects.select_related("stimulus_a", "stimulus_b")
            .only("stimulus_a__method", "stimulus_b__method")
            .get(participant__token=token, position=position)
        )
        sides = {"A": item.stimulus_a.method, "B": item.stimulus_b.method}
        preferred = [side for side, method in sides.items() if method == self.method]
        if not preferred:
            return rng.choice(CHOICES)
        if rng.random() < self.p:
            return preferred[0]
        return rng.choice([choice for choice in CHOICES if choice != preferred[0]])


def parse_policy(text: str) -> Chooser:
    """``random`` or ``prefer:METHOD:P`` (e.g. ``prefer:bla_t:0.7``) → a chooser."""
    if text == "random":
        return random_choice
    kind, _, rest = text.partition(":")
    method, _, probability = rest.partition(":")
    if kind != "prefer" or not method or not probability:
        raise ValidationError(f"unknown policy {text!r}; use 'random' or 'prefer:METHOD:P', e.g. prefer:bla_t:0.7")
    try:
        p = float(probability)
    except ValueError:
        p = -1.0
    if not 0.0 <= p <= 1.0:
        raise ValidationError(f"the probability in policy {text!r} must be a number between 0 and 1")
    return PreferMethod(method, p)
