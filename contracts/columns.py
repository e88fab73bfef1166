"""Columns of the study export's CSV files (docs/formats.md), in the order they are written."""
from __future__ import annotations

from contracts.comparisons import METHOD_1, METHOD_2, RESULT
from contracts.usefulness import ARM, TRIAL_COLUMNS

EXPECTED_CHOICE = "expected_choice"
# The inverse-probability weight 1/(K·p) of an answer whose comparison an adaptive design chose with
# probability p (contracts.adaptive.design_weight); 1 in a balanced design, and read as 1 where absent.
DESIGN_WEIGHT = "design_weight"
# Appended later: attention checks, then the comparison model (contracts.comparisons), then the design
# weight; exports made before any of them lack its columns.
OPTIONAL_ANSWER_COLUMNS: tuple[str, ...] = (EXPECTED_CHOICE, METHOD_1, METHOD_2, RESULT, DESIGN_WEIGHT)
REQUIRED_ANSWER_COLUMNS: tuple[str, ...] = (
    "study", "participant", "position", "pair_id", "question_type", "dataset", "image_id",
    "method_a", "method_b", "choice", "chosen_method", "response_ms", "answered_at",
)
ANSWER_COLUMNS: tuple[str, ...] = (*REQUIRED_ANSWER_COLUMNS, *OPTIONAL_ANSWER_COLUMNS)
LANGUAGE = "language"
OUTCOME = "outcome"  # how the session ended: complete, screened_out, or empty while it has not ended
# Appended later (participant languages, then forward-simulation arms: written by usefulness studies only,
# then the outcome); exports made before them lack the columns.
OPTIONAL_PARTICIPANT_COLUMNS: tuple[str, ...] = (LANGUAGE, ARM, OUTCOME)
REQUIRED_PARTICIPANT_COLUMNS: tuple[str, ...] = (
    "study", "participant", "status", "started_at", "completed_at", "gender", "age",
    "ml_experience", "xai_experience", "simulated",
)
PARTICIPANT_COLUMNS: tuple[str, ...] = (*REQUIRED_PARTICIPANT_COLUMNS, *OPTIONAL_PARTICIPANT_COLUMNS)
# Beside the CSVs: their SHA-256, sizes, row counts and the study's design and attention-check rule.
EXPORT_MANIFEST_NAME = "export_manifest.json"
EXPORT_COLUMNS: dict[str, tuple[str, ...]] = {
    "answers.csv": ANSWER_COLUMNS, "participants.csv": PARTICIPANT_COLUMNS,
}
# A usefulness study's export adds its trials (contracts/usefulness.py).
USEFULNESS_EXPORT_COLUMNS: dict[str, tuple[str, ...]] = {"trials.csv": TRIAL_COLUMNS}

# Columns of the analysis report's CSVs for any comparison of methods (docs/formats.md).
COMPARISON_COLUMNS: tuple[str, ...] = (
    "dataset", "question_type", "method_1", "method_2", "n_answers", "n_participants",
    "method_1_count", "method_2_count", "equal", "method_1_pct", "method_2_pct", "equal_pct",
    "ci_low", "ci_high", "p_value", "p_value_holm",
)
RANKING_COLUMNS: tuple[str, ...] = ("method", "strength", "ci_low", "ci_high", "rank", "n_answers")
# Columns of the usefulness report's CSVs (python -m analysis usefulness; docs/formats.md).
USEFULNESS_COLUMNS: tuple[str, ...] = (
    "task", "method", "measure", "split", "n_participants", "n_trials", "estimate", "ci_low",
    "ci_high", "reference", "p_value", "p_value_holm", "note",
)
PREFERENCE_USEFULNESS_COLUMNS: tuple[str, ...] = (
    "method", "preference_strength", "preference_ci_low", "preference_ci_high", "preference_rank",
    "distinction_accuracy", "agreement_accuracy", "agreement_accuracy_model_incorrect",
    "forward_simulation_gain_difference",
)
# Spearman's rank correlation of preference strength with each usefulness score across methods.
RANK_CORRELATION_COLUMNS: tuple[str, ...] = (
    "score", "n_methods", "spearman_rho", "p_value", "note",
)
REPORT_COLUMNS: dict[str, tuple[str, ...]] = {
    "comparisons.csv": COMPARISON_COLUMNS, "ranking.csv": RANKING_COLUMNS,
    "usefulness.csv": USEFULNESS_COLUMNS,
    "preference_usefulness.csv": PREFERENCE_USEFULNESS_COLUMNS,
    "rank_correlations.csv": RANK_CORRELATION_COLUMNS,
}
