"""Method keys, question types, answer choices and participant labels shared by every stage."""
from __future__ import annotations

import re

METHOD_KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
PAIR_SEPARATOR = "_vs_"

ANCHOR_METHOD = "bla_t"
RANDOM_METHOD = "random"
# Method key -> the name a researcher reads in reports. Adding a method is one line here.
METHOD_NAMES: dict[str, str] = {
    "bla_t": "BLA-T", "cam": "CAM", "grad_cam": "Grad-CAM", "l2x_f": "L2X-F",
    "random": "Random", "bla": "BLA", "bla_ph": "BLA-PH", "lime": "LIME",
}
METHOD_KEYS: tuple[str, ...] = tuple(METHOD_NAMES)

# Question type -> the method keys that may stand against BLA-T in it (preferred first).
QUESTION_TYPES: dict[str, tuple[str, ...]] = {
    "bla_t_vs_cam": ("cam", "grad_cam"),
    "bla_t_vs_l2x_f": ("l2x_f",),
    "bla_t_vs_random": (RANDOM_METHOD,),
}
ATTENTION_CHECK = "attention_check"  # question type of an instructed-response item

EQUAL = "equal"
CHOICES: tuple[str, ...] = ("A", "B", EQUAL)
STATUSES: tuple[str, ...] = ("completed", "incomplete", "excluded")
EXPERIENCE_LABELS: tuple[str, ...] = (
    "strongly disagree", "disagree", "undecided", "agree", "strongly agree",
)
GENDERS: tuple[str, ...] = ("male", "female", "other", "prefer not to say")


def is_method_key(key: object) -> bool:
    """True for a well-formed method key: ``[a-z][a-z0-9_]*`` and never containing ``_vs_``."""
    return isinstance(key, str) and bool(METHOD_KEY_PATTERN.match(key)) and PAIR_SEPARATOR not in key


def parse_question_type(key: str) -> tuple[str, str]:
    """The two method keys of ``{a}_vs_{b}`` (``{m}_vs_random`` included); ValueError if malformed."""
    parts = key.split(PAIR_SEPARATOR)
    if len(parts) != 2 or not all(is_method_key(p) for p in parts):
        raise ValueError(f"question type {key!r} is not of the form <method>{PAIR_SEPARATOR}<method>")
    return parts[0], parts[1]


def _check_vocabulary() -> None:
    """Fail at import if a key added above breaks the key rule or a question type names an unknown method."""
    for key in METHOD_KEYS:
        if not is_method_key(key):
            raise AssertionError(f"method key {key!r} breaks the key rule")
    for question, rivals in QUESTION_TYPES.items():
        anchor, rival = parse_question_type(question)
        if anchor != ANCHOR_METHOD or not set(rivals) <= set(METHOD_KEYS) or rival not in rivals:
            raise AssertionError(f"question type {question!r} does not match its rivals {rivals}")


_check_vocabulary()
