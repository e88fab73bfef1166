"""``{{ study.consent_text|shown }}``: a study text as the participant sees it (a default text translated)."""
from __future__ import annotations

from django import template

from studyapp.participation.language import shown_text

register = template.Library()
register.filter("shown", shown_text)
