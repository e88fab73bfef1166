"""The fixed vocabulary of the export CSVs (DESIGN.md) and the names charts show for it."""

ANSWER_COLUMNS: tuple[str, ...] = (
    "study", "participant", "position", "pair_id", "question_type", "dataset", "image_id",
    "method_a", "method_b", "choice", "chosen_method", "response_ms", "answered_at",
)
# Appended later (attention checks); exports made before it lack the column.
EXPECTED_CHOICE = "expected_choice"
OPTIONAL_ANSWER_COLUMNS: tuple[str, ...] = (EXPECTED_CHOICE,)
PARTICIPANT_COLUMNS: tuple[str, ...] = (
    "study", "participant", "status", "started_at", "completed_at", "gender", "age",
    "ml_experience", "xai_experience", "simulated",
)

BLA_T = "bla_t"
EQUAL = "equal"
CHOICES: tuple[str, ...] = ("A", "B", EQUAL)
ATTENTION_CHECK = "attention_check"  # question type of an instructed-response item

# Question type -> the methods that may stand against BLA-T in it.
QUESTION_TYPES: dict[str, tuple[str, ...]] = {
    "bla_t_vs_cam": ("cam", "grad_cam"),
    "bla_t_vs_l2x_f": ("l2x_f",),
    "bla_t_vs_random": ("random",),
}
KNOWN_METHODS: tuple[str, ...] = (
    "bla_t", "cam", "grad_cam", "l2x_f", "random", "bla", "bla_ph", "lime",
)
METHOD_NAMES: dict[str, str] = {
    "bla_t": "BLA-T", "cam": "CAM", "grad_cam": "Grad-CAM", "l2x_f": "L2X-F",
    "random": "Random", "bla": "BLA", "bla_ph": "BLA-PH", "lime": "LIME",
}
EQUAL_NAME = "Equally reasonable"

STATUSES: tuple[str, ...] = ("completed", "incomplete", "excluded")
EXPERIENCE_LABELS: tuple[str, ...] = (
    "strongly disagree", "disagree", "undecided", "agree", "strongly agree",
)
GENDERS: tuple[str, ...] = ("male", "female", "other", "prefer not to say")
NOT_GIVEN = "not given"
TRUE_WORDS: frozenset[str] = frozenset({"true", "1", "yes"})
FALSE_WORDS: frozenset[str] = frozenset({"false", "0", "no"})


def other_method_name(methods: set[str]) -> str:
    """Human name of the non-BLA-T side of a question type, e.g. '(Grad-)CAM' when both occur."""
    if methods == {"cam", "grad_cam"}:
        return "(Grad-)CAM"
    return " / ".join(METHOD_NAMES.get(m, m) for m in sorted(methods)) or "Other"
