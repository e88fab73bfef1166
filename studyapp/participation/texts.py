"""The per-study texts as participants see them: the question prompt with its placeholders filled in, and
the fixed questions of usefulness trials."""
from __future__ import annotations

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext

from contracts.usefulness import AGREEMENT, DISTINCTION
from studyapp.participation.trials import TrialPage


def question_prompt_html(prompt: str, task: str, predicted_class: str) -> SafeString:
    """The study's question prompt (validated by ``models.validate_question_prompt``) as HTML.

    The text is escaped; ``{task}`` is filled in as text and ``{predicted_class}`` in emphasis, as in
    the paper's Figure 5.
    """
    return mark_safe(escape(prompt).format(
        task=escape(task), predicted_class=format_html("<em>{}</em>", predicted_class)
    ))  # fmt: skip


def trial_prompt_html(page: TrialPage) -> SafeString:
    """The fixed question of a usefulness trial page in the active language, its dataset's task filled in."""
    task = escape(page.dataset_task)
    if page.task == DISTINCTION:
        text = gettext(
            "A model was trained to {task}. Each explanation below highlights the parts of the image that "
            "the model would base one decision on, each for a different class. Which explanation belongs to "
            "the class the model decided for?"
        )
    elif page.task == AGREEMENT:
        text = gettext(
            "A model was trained to {task}. The explanation highlights the parts of the image that the model "
            "based its decision on. Is the model's decision correct?"
        )
    elif page.learning:
        text = gettext("A model was trained to {task}. Study how it decided on this image.")
    else:
        text = gettext("A model was trained to {task}. Which class will the model decide for on this image?")
    return mark_safe(escape(text).format(task=task))
