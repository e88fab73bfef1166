"""The task phrase of a dataset, as the question "Two systems (A and B) were trained to {task}." needs it."""
from __future__ import annotations


def task_phrase(task: str) -> str:
    """``task`` without surrounding space, trailing full stops and one leading "to "."""
    phrase = task.strip().rstrip(".").strip()
    if phrase.lower().startswith("to "):
        phrase = phrase[3:].lstrip()
    return phrase
