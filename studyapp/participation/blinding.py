"""What participants must never see: method keys and names, and the metadata of pairs.

Used by the blinding tests to audit everything a participant can reach, and by the dashboard to
warn when a researcher's own study texts would give a method away.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

from contracts.blinding import METHOD_WORDS
from studyapp.models import Pair, Stimulus, Study, Trial


def _methods(study: Study) -> set[str]:
    """The method keys of the study's bundle: its stimuli's (preference) or its trials' (usefulness)."""
    methods = set(Stimulus.objects.filter(pair__bundle__study=study).values_list("method", flat=True))
    methods.update(Trial.objects.filter(bundle__study=study).exclude(method="").values_list("method", flat=True))
    return methods


def forbidden_terms(study: Study) -> set[str]:
    """Method keys and names, question types, pair and trial ids and image ids of the study's bundle (lower case)."""
    terms = set(METHOD_WORDS) | _methods(study)
    for row in Pair.objects.filter(bundle__study=study).values_list("question_type", "pair_id", "image_id", "random_source_image_id"):
        terms.update(value for value in row if value)
    for row in Trial.objects.filter(bundle__study=study).values_list("trial_id", "image_id"):
        terms.update(row)
    return {term.lower() for term in terms}


def find_leaks(text: str, terms: Iterable[str]) -> list[str]:
    """The terms that occur in ``text`` as whole words (letters, digits, ``_`` and ``-`` bind words)."""
    lowered = text.lower()
    return sorted(
        term for term in terms if re.search(rf"(?<![a-z0-9_-]){re.escape(term)}(?![a-z0-9_-])", lowered)
    )


def study_text_leaks(study: Study) -> dict[str, list[str]]:
    """Participant-visible texts of the study (title, consent, instructions, prompt, completion message, dataset tasks) that name a method."""
    terms = set(METHOD_WORDS) | _methods(study)
    texts = {
        "title": study.title, "consent text": study.consent_text, "instructions": study.instructions,
        "question prompt": study.question_prompt, "completion message": study.completion_message,
    }  # fmt: skip
    bundle = getattr(study, "bundle", None)
    if bundle is not None:
        texts.update({f"task of dataset {d.key}": d.task for d in bundle.datasets.all()})
    leaks = {name: find_leaks(text, terms) for name, text in texts.items()}
    return {name: found for name, found in leaks.items() if found}
