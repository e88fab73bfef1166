"""Words that would tell a participant which method made an explanation (one list for every stage)."""
from __future__ import annotations

from contracts.vocabulary import METHOD_KEYS, METHOD_NAMES, QUESTION_TYPES

# Every way a method is written: keys, report names, their hyphen/space variants and the paper's long names.
METHOD_WORDS: tuple[str, ...] = tuple(dict.fromkeys((
    *METHOD_KEYS,
    *(name.lower() for name in METHOD_NAMES.values()),
    *(key.replace("_", "-") for key in METHOD_KEYS),
    "gradcam", "grad", "l2x", "bounded logit", "learning to explain",
)))
# Hints a file name or image metadata must not carry either: there any trace counts, not only a method name.
NAME_HINTS: tuple[str, ...] = ("rand", "swap", "fake", "real", "true", "method", "explan")
# Shortest first, so a match names the root ("bla" in "bla_t_0.png").
REVEALING_FRAGMENTS: tuple[str, ...] = tuple(sorted((*METHOD_WORDS, *NAME_HINTS, *QUESTION_TYPES), key=len))


def revealing_fragment(text: str) -> str | None:
    """The first method word, hint or question type found anywhere in ``text`` (case-insensitive)."""
    lowered = text.lower()
    return next((word for word in REVEALING_FRAGMENTS if word in lowered), None)
