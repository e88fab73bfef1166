"""Usefulness tasks: does an explanation help a person predict the model? (docs/formats.md)

Beside the preference study ("which explanation looks more reasonable"), three protocols of the
field's human studies run on the same explanations files:

- ``distinction`` (HIVE, Kim et al. 2022): one image and k explanations, one per top-k class of the
  model (k = 2 for a binary dataset, at most 4), in shuffled panels without class names; the
  participant picks the panel that explains the model's prediction, with a confidence.
- ``agreement`` (HIVE): one image, the model's prediction and its explanation; the participant says
  whether the prediction is correct, with a confidence. The bundle mixes correct and incorrect
  predictions at a share the researcher sets.
- ``forward_simulation`` (Hase & Bansal 2020; Colin, Fel et al. 2022): a pre-test (predict the
  model's output from the image alone), a learning phase (image, explanation, the model's
  prediction), a post-test on unseen images without explanations. Arms are between participants:
  one per method plus the control ``none`` (learning without explanations).

"Correct" always means *matching the model*, never the true label (``matches_model``). Standard
library only: every stage imports this module.
"""
from __future__ import annotations

import json
from collections.abc import Sequence

TASK = "task"  # the manifest field (absent: the preference study) and the export column
PREFERENCE = "preference"
DISTINCTION, AGREEMENT, FORWARD_SIMULATION = "distinction", "agreement", "forward_simulation"
USEFULNESS_TASKS: tuple[str, ...] = (DISTINCTION, AGREEMENT, FORWARD_SIMULATION)
TASKS: tuple[str, ...] = (PREFERENCE, *USEFULNESS_TASKS)

PRE, LEARN, POST = "pre", "learn", "post"
PHASES: tuple[str, ...] = (PRE, LEARN, POST)  # forward simulation only; other tasks' trials have none
ANSWERED_PHASES: tuple[str, ...] = (PRE, POST)  # learning trials are studied, not answered

NO_EXPLANATION = "none"  # the control arm of forward simulation (reserved, never a method key)
MIN_PANELS, MAX_PANELS = 2, 4  # distinction: k explanations, one per top-k class
DEFAULT_CORRECT_SHARE = 0.5  # agreement: share of trials whose prediction is correct

CORRECT, INCORRECT = "correct", "incorrect"  # the agreement answers
AGREEMENT_ANSWERS: tuple[str, ...] = (CORRECT, INCORRECT)
CONFIDENCE_LEVELS: tuple[int, ...] = (1, 2, 3, 4)  # 1 = guessing … 4 = certain; no neutral middle

# Fields of one trial of a usefulness bundle's "trials" list (docs/formats.md).
TRIAL_ID, PHASE, METHOD, PANELS, PANEL_CLASS, PANEL_FILE = "trial_id", "phase", "method", "panels", "class", "file"
IMAGE_FILE, MODEL_CORRECT, ARMS = "image_file", "model_correct", "arms"

# Columns of the export's trials.csv, in the order they are written.
REQUIRED_TRIAL_COLUMNS: tuple[str, ...] = (
    "study", "participant", "position", "trial_id", "task", "phase", "arm", "method", "dataset",
    "image_id", "true_class", "predicted_class", "model_correct", "panel_classes", "prediction_panel",
    "answer", "matches_model", "confidence", "response_ms", "answered_at",
)
# An attention check's instructed answer (empty for every other trial). A check repeats an answered
# trial; it is passed iff ``answer`` equals it, and it never counts in the usefulness statistics.
# Appended later: exports without the column have no check rows.
EXPECTED_ANSWER = "expected_answer"
OPTIONAL_TRIAL_COLUMNS: tuple[str, ...] = (EXPECTED_ANSWER,)
TRIAL_COLUMNS: tuple[str, ...] = (*REQUIRED_TRIAL_COLUMNS, *OPTIONAL_TRIAL_COLUMNS)
ARM = "arm"  # participants.csv's optional column: a forward-simulation participant's arm


def panel_classes_value(classes: Sequence[str]) -> str:
    """The ``panel_classes`` cell: the panels' classes in the order shown, as a JSON list."""
    return json.dumps(list(classes), ensure_ascii=False)


def parse_panel_classes(value: str) -> list[str]:
    """The panels' classes of a ``panel_classes`` cell (empty for a trial without panels)."""
    return [str(c) for c in json.loads(value)] if value else []


def matches_model(task: str, answer: str, *, predicted_class: str, model_correct: bool,
                  prediction_panel: int | None = None) -> bool:
    """Whether an answer matches the model: the scoring rule of every usefulness task.

    distinction: the chosen panel (1-based, as shown) is the model's top-1 panel; agreement: the
    answer says "correct" exactly when the model was; forward simulation: the class guessed is the
    model's prediction. ValueError with one sentence for an answer the task does not know.
    """
    if task == DISTINCTION:
        if prediction_panel is None or not answer.isdigit():
            raise ValueError(f"a distinction answer is a panel number, got {answer!r}")
        return int(answer) == prediction_panel
    if task == AGREEMENT:
        if answer not in AGREEMENT_ANSWERS:
            raise ValueError(f"an agreement answer is 'correct' or 'incorrect', got {answer!r}")
        return (answer == CORRECT) == model_correct
    if task == FORWARD_SIMULATION:
        return answer == predicted_class
    raise ValueError(f"task {task!r} is not one of {', '.join(USEFULNESS_TASKS)}")


def chance_level(task: str, options: int = 2) -> float:
    """The share of answers that match the model by guessing: 1/k panels (distinction), 1/2
    (agreement), 1/C classes (forward simulation)."""
    if task == AGREEMENT:
        return 0.5
    if task in (DISTINCTION, FORWARD_SIMULATION):
        return 1.0 / options
    raise ValueError(f"task {task!r} is not one of {', '.join(USEFULNESS_TASKS)}")
