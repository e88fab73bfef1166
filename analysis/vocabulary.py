"""Names the analysis adds to the shared vocabulary of ``contracts`` (chart labels, CSV spellings)."""

from contracts.columns import (  # noqa: F401  (re-exported for the analysis modules)
    COMPARISON_COLUMNS, EXPECTED_CHOICE, PARTICIPANT_COLUMNS, RANKING_COLUMNS,
    REQUIRED_ANSWER_COLUMNS, REQUIRED_PARTICIPANT_COLUMNS,
)
from contracts.vocabulary import (  # noqa: F401
    ATTENTION_CHECK, CHOICES, EQUAL, EXPERIENCE_LABELS, GENDERS, METHOD_NAMES, QUESTION_TYPES,
    RANDOM_METHOD, STATUSES,
)

EQUAL_NAME = "Equally reasonable"
NOT_GIVEN = "not given"
TRUE_WORDS: frozenset[str] = frozenset({"true", "1", "yes"})
FALSE_WORDS: frozenset[str] = frozenset({"false", "0", "no"})


def other_method_name(methods: set[str]) -> str:
    """Human name of the non-BLA-T side of a question type, e.g. '(Grad-)CAM' when both occur."""
    if methods == {"cam", "grad_cam"}:
        return "(Grad-)CAM"
    return " / ".join(METHOD_NAMES.get(m, m) for m in sorted(methods)) or "Other"


def contender_name(contender: str) -> str:
    """Readable name of a ranked method key or random control: 'Grad-CAM', 'Random (BLA-T)'."""
    if contender.startswith(f"{RANDOM_METHOD}(") and contender.endswith(")"):
        inner = contender[len(RANDOM_METHOD) + 1:-1]
        return f"{METHOD_NAMES[RANDOM_METHOD]} ({contender_name(inner)})"
    return METHOD_NAMES.get(contender, contender)
