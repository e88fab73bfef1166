"""The per-study texts as participants see them: the question prompt with its placeholders filled in."""
from __future__ import annotations

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe


def question_prompt_html(prompt: str, task: str, predicted_class: str) -> SafeString:
    """The study's question prompt (validated by ``models.validate_question_prompt``) as HTML.

    The text is escaped; ``{task}`` is filled in as text and ``{predicted_class}`` in emphasis, as in
    the paper's Figure 5.
    """
    return mark_safe(escape(prompt).format(
        task=escape(task), predicted_class=format_html("<em>{}</em>", predicted_class)
    ))  # fmt: skip
