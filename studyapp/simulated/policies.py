"""Choice policies of simulated participants.

Bots see only the blinded pages, so a policy that prefers a method looks up, on the server side,
which method the participant's sequence item shows as System A. That is only possible for a
process with database access, such as the ``simulate_participants`` command.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from django.core.exceptions import ValidationError

from contracts.usefulness import (
    AGREEMENT,
    CORRECT,
    DISTINCTION,
    FORWARD_SIMULATION,
    INCORRECT,
    POST,
)
from studyapp.models import SequenceItem, TrialItem
from studyapp.simulated.participants import (
    CHOICES,
    Chooser,
    TrialChooser,
    random_answer,
    random_choice,
)


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


@dataclass(frozen=True)
class MatchModel:
    """Answer a usefulness trial as the model did with probability ``p[method]`` (else another answer).

    The method of a trial is the one whose explanation it shows; a forward-simulation post-test
    counts under the participant's arm (what they learned with), a pre-test under ``default``.
    """

    default: float
    per_method: tuple[tuple[str, float], ...] = ()

    def probability(self, method: str) -> float:
        """The chance of an answer that matches the model for a trial of ``method``."""
        return dict(self.per_method).get(method, self.default)

    def __call__(self, token: str, position: int, answers: list[str], rng: random.Random) -> str:
        item = TrialItem.objects.select_related("trial", "participant__study").get(
            participant__token=token, position=position
        )
        trial, task = item.trial, item.participant.study.task
        method = item.participant.arm if task == FORWARD_SIMULATION and trial.phase == POST else trial.method
        if task == DISTINCTION:
            matching = str(item.prediction_panel)
        elif task == AGREEMENT:
            matching = CORRECT if trial.model_correct else INCORRECT
        else:
            matching = trial.predicted_class
        others = [answer for answer in answers if answer != matching]
        if matching not in answers or (others and rng.random() >= self.probability(method)):
            return rng.choice(others or answers)
        return matching


def parse_trial_policy(text: str) -> TrialChooser:
    """``random`` or ``match:P[,METHOD=P…]`` (e.g. ``match:0.5,bla_t=0.9``) → a usefulness chooser."""
    if text == "random":
        return random_answer
    kind, _, rest = text.partition(":")
    parts = [part.strip() for part in rest.split(",")] if rest else []
    if kind != "match" or not parts:
        raise ValidationError(f"unknown policy {text!r}; use 'random' or 'match:P[,METHOD=P...]', "
                              "e.g. match:0.5,bla_t=0.9")  # fmt: skip
    try:
        default = float(parts[0])
        per_method = tuple((m.strip(), float(v)) for m, _, v in (part.partition("=") for part in parts[1:]))
    except ValueError:
        raise ValidationError(f"the probabilities in policy {text!r} must be numbers between 0 and 1") from None
    if not all(0.0 <= p <= 1.0 for p in (default, *(v for _, v in per_method))) or any(not m for m, _ in per_method):
        raise ValidationError(f"the probabilities in policy {text!r} must be numbers between 0 and 1")
    return MatchModel(default, per_method)
