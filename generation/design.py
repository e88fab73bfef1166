"""Which comparisons a bundle holds: explicit pairs, every pair, random-swap controls, or the paper's three.

A design names methods by key (``contracts.vocabulary``); which files supply them is checked against
the explanation files given (``generation.selection.resolve_comparisons``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

from contracts.vocabulary import (
    ANCHOR_METHOD, PAPER_COMPARISONS, RANDOM_METHOD, is_random_control, parse_question_type, question_sides, question_type,
    random_control, validate_method_key,
)
from generation.errors import GenerationError

PAPER = "paper"
ALL_PAIRS = "all-pairs"
DESIGNS: tuple[str, ...] = (PAPER, ALL_PAIRS)


@dataclass(frozen=True)
class Comparison:
    """One question type: the methods that may show side A and side B (preferred first).

    A random-swap control ``{m}_vs_random`` has no file for side B: it shows m's map of another image.
    """

    key: str
    first: tuple[str, ...]
    second: tuple[str, ...]

    @classmethod
    def of(cls, key: str) -> Comparison:
        """The comparison of question type ``key`` (the paper's CAM alias included)."""
        first, second = question_sides(key)
        return cls(key, first, () if is_random_control(key) else second)

    @property
    def is_random_swap(self) -> bool:
        """True for the control whose side B is another image's map of side A's method."""
        return not self.second

    @property
    def methods(self) -> tuple[str, ...]:
        """Every method key whose file can supply a side."""
        return self.first + self.second


@dataclass(frozen=True)
class Design:
    """What the researcher asked for, as given on the command line (checked by `comparisons`).

    ``compare``: ``a:b`` texts; ``design``: ``paper`` or ``all-pairs`` (None: the paper's three when
    bla_t is among the methods, else every pair); ``controls``: methods that get a random-swap control;
    ``question_types``: ``a_vs_b`` texts (the older spelling of ``compare``).
    """

    compare: tuple[str, ...] = ()
    design: str | None = None
    controls: tuple[str, ...] = ()
    question_types: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """How the manifest records the design: compare, paper or all-pairs."""
        if self.compare or self.question_types:
            return "compare"
        return self.design or "default"

    @property
    def is_explicit(self) -> bool:
        """True when the researcher named the comparisons, so a missing file is an error, not a skip."""
        return bool(self.compare or self.question_types)


def parse_compare(text: str) -> str:
    """The question type of one ``--compare a:b`` argument; GenerationError naming the problem."""
    a, sep, b = text.partition(":")
    if not sep or ":" in b:
        raise GenerationError(f"--compare {text!r} is not of the form METHOD:METHOD (e.g. bla_t:grad_cam)")
    try:
        return question_type(a, b)
    except ValueError as exc:
        raise GenerationError(f"--compare {text!r}: {exc}") from None


def _named_question_types(design: Design) -> list[str]:
    keys = [parse_compare(text) for text in design.compare]
    for text in design.question_types:
        try:
            parse_question_type(text)
        except ValueError as exc:
            raise GenerationError(f"--question-types: {exc}") from None
        keys.append(text)
    return keys


def _controls(design: Design) -> list[str]:
    keys = []
    for method in design.controls:
        try:
            keys.append(random_control(validate_method_key(method)))
        except ValueError as exc:
            raise GenerationError(f"--controls: {exc}") from None
    return keys


def named_question_types(design: Design) -> set[str]:
    """The question types the researcher named (--compare, --question-types, --controls): each must be
    buildable for every dataset."""
    return {*_named_question_types(design), *_controls(design)}


def comparisons(design: Design, methods: Sequence[str]) -> list[Comparison]:
    """The comparisons of ``design`` over ``methods`` (the files' method keys, in input order).

    Raises GenerationError for a malformed key, contradictory flags, or a named method without a file.
    """
    if design.design is not None and design.design not in DESIGNS:
        raise GenerationError(f"--design {design.design!r} is not a design (choose {' or '.join(DESIGNS)}, "
                              "or name comparisons with --compare)")
    if design.is_explicit and design.design is not None:
        raise GenerationError("give either --compare (or --question-types) or --design, not both")
    if design.compare and design.question_types:
        raise GenerationError("give either --compare or --question-types, not both")
    named, controls = _named_question_types(design), _controls(design)
    for key in named + controls:
        missing = [side for side in question_sides(key) if side != (RANDOM_METHOD,) and not set(side) & set(methods)]
        if missing:
            raise GenerationError(f"the design compares {key}, but no explanations file has method "
                                  f"{' or '.join(missing[0])} (the files give {', '.join(methods)})")
    if design.is_explicit:
        keys = named
    elif design.design == PAPER or (design.design is None and ANCHOR_METHOD in methods):
        keys = [question_type(a, b) for a, b in PAPER_COMPARISONS]
    else:
        keys = [question_type(a, b) for a, b in combinations(methods, 2)]
    chosen = [Comparison.of(key) for key in dict.fromkeys(keys + controls)]
    if not chosen:
        raise GenerationError(f"the files give one method ({', '.join(methods)}): every pair needs two; add a "
                              "second method's file or a random-swap control with --controls")
    return chosen
