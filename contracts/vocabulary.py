"""Method keys, question types, answer choices and participant labels shared by every stage.

Methods are data: a method key is any ``[a-z][a-z0-9_]*`` never containing ``_vs_``; a comparison is an
ordered pair of keys ``(a, b)`` with question type ``"{a}_vs_{b}"``; ``{m}_vs_random`` is the random-swap
control of ``m`` (m's map of another image of the same dataset). The paper's study is one design of three
comparisons, all BLA-T against something.
"""
from __future__ import annotations

import re

METHOD_KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
PAIR_SEPARATOR = "_vs_"

ANCHOR_METHOD = "bla_t"
RANDOM_METHOD = "random"  # reserved: the side of a random-swap control, never an explanations file's method
# Method key -> the name a researcher reads in reports; a key not listed reads as itself (method_name).
METHOD_NAMES: dict[str, str] = {
    "bla_t": "BLA-T", "cam": "CAM", "grad_cam": "Grad-CAM", "l2x_f": "L2X-F",
    "random": "Random", "bla": "BLA", "bla_ph": "BLA-PH", "lime": "LIME",
    "grad_cam_pp": "Grad-CAM++", "score_cam": "Score-CAM", "xgrad_cam": "XGrad-CAM", "eigen_cam": "EigenCAM",
    "layer_cam": "LayerCAM", "hires_cam": "HiResCAM", "integrated_gradients": "Integrated Gradients",
    "saliency": "Saliency", "occlusion": "Occlusion",
}
METHOD_KEYS: tuple[str, ...] = tuple(METHOD_NAMES)

# The paper's design: three comparisons, each BLA-T against something.
PAPER_COMPARISONS: tuple[tuple[str, str], ...] = ((ANCHOR_METHOD, "cam"), (ANCHOR_METHOD, "l2x_f"),
                                                 (ANCHOR_METHOD, RANDOM_METHOD))
# The paper's question types -> the method keys that may show its second side (preferred first): in the
# paper's bla_t_vs_cam, Grad-CAM stands in for CAM where a model has no CAM. Every other question type
# a_vs_b shows exactly a and b (question_sides).
QUESTION_TYPES: dict[str, tuple[str, ...]] = {
    "bla_t_vs_cam": ("cam", "grad_cam"),
    "bla_t_vs_l2x_f": ("l2x_f",),
    "bla_t_vs_random": (RANDOM_METHOD,),
}
PAPER_QUESTION_TYPES = QUESTION_TYPES
ATTENTION_CHECK = "attention_check"  # question type of an instructed-response item
DEFAULT_MAX_FAILED_CHECKS = 0  # participants with more failed attention checks are not counted

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


def validate_method_key(key: object) -> str:
    """``key`` itself when well-formed; otherwise ValueError with one sentence saying what is wrong."""
    if not isinstance(key, str) or not METHOD_KEY_PATTERN.match(key):
        raise ValueError(f"method key {key!r} is not a lowercase identifier "
                         "(a letter, then lowercase letters, digits or underscores)")
    if PAIR_SEPARATOR in key:
        raise ValueError(f"method key {key!r} contains {PAIR_SEPARATOR!r}, which separates the two methods "
                         "of a question type")
    return key


def question_type(a: str, b: str) -> str:
    """The question type ``"{a}_vs_{b}"`` of the comparison (a, b); ValueError for bad or equal keys."""
    validate_method_key(a)
    validate_method_key(b)
    if a == b:
        raise ValueError(f"a comparison needs two different methods, got {a!r} twice")
    if a == RANDOM_METHOD:
        raise ValueError(f"{RANDOM_METHOD!r} can only be the second side of a comparison (m{PAIR_SEPARATOR}random)")
    return f"{a}{PAIR_SEPARATOR}{b}"


def parse_question_type(key: str) -> tuple[str, str]:
    """The two method keys of ``{a}_vs_{b}`` (``{m}_vs_random`` included); ValueError if malformed."""
    parts = key.split(PAIR_SEPARATOR) if isinstance(key, str) else []
    if len(parts) != 2 or not all(is_method_key(p) for p in parts):
        raise ValueError(f"question type {key!r} is not of the form <method>{PAIR_SEPARATOR}<method>")
    question_type(*parts)
    return parts[0], parts[1]


def is_question_type(key: object) -> bool:
    """True for a well-formed question type ``{a}_vs_{b}``."""
    try:
        parse_question_type(key)  # type: ignore[arg-type]
    except ValueError:
        return False
    return True


def random_control(method: str) -> str:
    """The question type of the random-swap control of ``method``: ``"{method}_vs_random"``."""
    return question_type(method, RANDOM_METHOD)


def is_random_control(key: str) -> bool:
    """True when question type ``key`` is a random-swap control ``{m}_vs_random``."""
    return parse_question_type(key)[1] == RANDOM_METHOD


def random_control_label(method: str) -> str:
    """How a random-swap control of ``method`` is named as a contender (e.g. in a ranking): ``random(m)``."""
    return f"{RANDOM_METHOD}({validate_method_key(method)})"


def question_sides(key: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The stimulus methods that may show each side of question type ``key`` (the paper's CAM alias included)."""
    a, b = parse_question_type(key)
    return (a,), QUESTION_TYPES.get(key, (b,))


def method_name(key: str) -> str:
    """The name a researcher reads for method ``key`` (its key when it has no registered name)."""
    return METHOD_NAMES.get(key, key)


def paper_question_types() -> tuple[str, ...]:
    """The question types of the paper's three comparisons, in the paper's order."""
    return tuple(question_type(a, b) for a, b in PAPER_COMPARISONS)


def _check_vocabulary() -> None:
    """Fail at import if a key added above breaks the key rule or a question type names an unknown method."""
    for key in METHOD_KEYS:
        validate_method_key(key)
    if tuple(QUESTION_TYPES) != paper_question_types():
        raise AssertionError("QUESTION_TYPES must list the paper's comparisons in PAPER_COMPARISONS order")
    for question, rivals in QUESTION_TYPES.items():
        anchor, rival = parse_question_type(question)
        if anchor != ANCHOR_METHOD or not set(rivals) <= set(METHOD_KEYS) or rival not in rivals:
            raise AssertionError(f"question type {question!r} does not match its rivals {rivals}")


_check_vocabulary()
