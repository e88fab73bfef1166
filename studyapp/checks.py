"""Django system checks for the study app's settings (``manage.py check``; runserver, migrate too).

Each bad value is one message naming the setting, its value and what it must be; ids (defined in
``studyapp.conf``): E001 not an integer, E002 below its minimum, E003 not text, E004 not a mapping
of policy directives to strings, W001 a backup key too short to be a key.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from django.apps import AppConfig
from django.core.checks import CheckMessage, Error, Warning

from studyapp.conf import WEAK_KEY, StudySettings, configured_value, problem, setting_name


def check_study_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """One message per app setting whose configured value is invalid."""
    messages: list[CheckMessage] = []
    for spec in fields(StudySettings):
        found = problem(spec, configured_value(spec))
        if found:
            check_id, sentence = found
            kind = Warning if check_id == WEAK_KEY else Error
            hint = f"{setting_name(spec)}: {spec.metadata['meaning']}."
            messages.append(kind(sentence, hint=hint, id=check_id))
    return messages
