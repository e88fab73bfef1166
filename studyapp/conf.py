"""The study app's own settings (``STUDY_*``, ``LOGIN_*``): each one's default, meaning and range.

This is the one place their defaults live. ``config/settings.py`` only passes on what the
environment sets (``from_environment``); code reads the current values with ``study_settings()``
(the Django setting where the project defines one, else the default here); ``studyapp.checks``
reports bad values as Django system checks, so a deployment learns of a mistyped limit at
``manage.py check`` (run by runserver and migrate too) instead of from a participant.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

PARTICIPANT_LANGUAGES: tuple[tuple[str, str], ...] = (("en", "English"), ("de", "Deutsch"))
"""The languages participant pages come in (studyapp/locale): settings.LANGUAGES and a study's choice."""

# Check ids, one per kind of bad value (studyapp.checks turns them into Django check messages).
NOT_AN_INTEGER = "studyapp.E001"
BELOW_MINIMUM = "studyapp.E002"
NOT_TEXT = "studyapp.E003"
NOT_A_POLICY = "studyapp.E004"
WEAK_KEY = "studyapp.W001"
MIN_KEY_LENGTH = 32


def _limit(default: int, minimum: int, meaning: str) -> Any:
    return field(default=default, metadata={"minimum": minimum, "meaning": meaning})


@dataclass(frozen=True)
class StudySettings:
    """Current values of the app's settings; the field names are the setting names in lower case."""

    study_enrol_limit: int = _limit(
        30, 1, "new participants one client (IP network) may start per window; labs behind one NAT "
        "may need more (0 would refuse everyone)")
    study_enrol_window_s: int = _limit(600, 1, "length in seconds of the enrolment window")
    study_proxy_count: int = _limit(
        0, 0, "reverse proxies in front of the app whose X-Forwarded-For entries are trusted "
        "(0: use REMOTE_ADDR)")
    study_import_max_pixels: int = _limit(
        16_000_000, 1, "pixels an imported image may have (read from its header, before decoding)")
    study_import_max_side: int = _limit(
        4096, 1, "pixels an imported image may have on its longer side")
    study_import_max_manifest_bytes: int = _limit(
        10 * 1024 * 1024, 1, "bytes a bundle's manifest.json may have")
    study_upload_max_bytes: int = _limit(
        200 * 1024 * 1024, 1, "bytes of a bundle uploaded as a .zip on the research pages")
    study_upload_max_unpacked_bytes: int = _limit(
        1024 * 1024 * 1024, 1, "bytes an uploaded zip may unpack to")
    study_upload_max_members: int = _limit(20_000, 1, "entries an uploaded zip may hold")
    study_backup_key: str = field(default="", metadata={
        "meaning": "key of the backups' HMAC-SHA256 tag (empty: derived from SECRET_KEY); a server "
                   "restoring another server's backup needs the same key"})
    study_csp: dict[str, str] = field(default_factory=dict, metadata={
        "meaning": "Content-Security-Policy directives that replace the study pages' defaults "
                   "(directive name to value; an empty value drops the directive)"})
    login_failure_limit: int = _limit(5, 1, "failed logins on one account in one lockout window")
    login_client_failure_limit: int = _limit(
        20, 1, "failed logins from one client (IP network) in one lockout window")
    login_lockout_s: int = _limit(900, 1, "length in seconds of the login lockout window")


def setting_name(spec: Field) -> str:
    """The Django setting a field of ``StudySettings`` stands for."""
    return spec.name.upper()


def default(spec: Field) -> Any:
    """The value a setting has when neither the settings module nor the environment gives one."""
    return spec.default_factory() if spec.default is MISSING else spec.default


def problem(spec: Field, value: Any) -> tuple[str, str] | None:
    """(check id, sentence) when ``value`` is not valid for the setting, else None."""
    name = setting_name(spec)
    if spec.type == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return NOT_AN_INTEGER, f"{name} must be an integer, got {value!r}."
        minimum = spec.metadata["minimum"]
        if value < minimum:
            return BELOW_MINIMUM, f"{name} is {value}; it must be at least {minimum}."
    elif spec.type == "str":
        if not isinstance(value, str):
            return NOT_TEXT, f"{name} must be a string, got {type(value).__name__}."
        if 0 < len(value) < MIN_KEY_LENGTH:
            return WEAK_KEY, (f"{name} is {len(value)} characters long; "
                              f"a key needs at least {MIN_KEY_LENGTH}.")
    elif not (isinstance(value, Mapping) and all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in value.items())):
        return NOT_A_POLICY, f"{name} must map directive names to strings, got {value!r}."
    return None


def configured_value(spec: Field) -> Any:
    """The setting as the project defines it (the default where it does not)."""
    return getattr(settings, setting_name(spec), default(spec))


def study_settings() -> StudySettings:
    """The app's settings as they stand now (read on every call: tests may change them).

    A value of the wrong type stops here with the check's sentence; values out of range are left to
    ``manage.py check`` (a test may set a limit of 0 to see every start refused).
    """
    values = {}
    for spec in fields(StudySettings):
        values[spec.name] = value = configured_value(spec)
        found = problem(spec, value)
        if found and found[0] in (NOT_AN_INTEGER, NOT_TEXT, NOT_A_POLICY):
            raise ImproperlyConfigured(found[1])
    return StudySettings(**values)


def from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """Every app setting for a settings module: the environment variable of that name, else default.

    A number that does not parse stays text, for ``manage.py check`` to name (studyapp.E001);
    ``STUDY_CSP``, a mapping, is set in a settings module only.
    """
    values = {}
    for spec in fields(StudySettings):
        raw = environ.get(setting_name(spec)) if spec.type in ("int", "str") else None
        values[setting_name(spec)] = default(spec) if raw is None else _parsed(spec, raw)
    return values


def _parsed(spec: Field, raw: str) -> int | str:
    try:
        return int(raw) if spec.type == "int" else raw
    except ValueError:
        return raw
