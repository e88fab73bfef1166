"""The language of a participant's pages.

A study shows its pages in its own language (``Study.language``); where it allows the browser's
language (``Study.allow_browser_language``) a newcomer gets the first supported language of their
``Accept-Language`` header and every page has a switch (``?lang=de``). The language a participant
starts in is kept in ``Participant.language``; the switch changes it without touching their progress.
A participant view activates the language for the rest of its request (``participant_page``,
``use_language``; no LocaleMiddleware: research pages stay English).

After changing a participant text: ``cd studyapp && ../manage.py makemessages -l de --no-location``,
translate the new entries in ``locale/de/LC_MESSAGES/django.po`` and run ``../manage.py
compilemessages -l de`` (GNU gettext); the compiled ``django.mo`` is committed, and
tests/studyapp/test_study_i18n.py fails while an entry is untranslated, fuzzy or not compiled.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

from django.conf import settings
from django.db.models import Model
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils import translation
from django.utils.translation import gettext

from studyapp.models import (
    DEFAULT_COMPLETION_MESSAGE,
    DEFAULT_CONSENT,
    DEFAULT_INSTRUCTIONS,
    DEFAULT_QUESTION_PROMPT,
    DEFAULT_TASK_INSTRUCTIONS,
)

SWITCH_PARAM = "lang"
COOKIE_MAX_AGE = 60 * 60 * 24 * 60
MAX_ACCEPT_ENTRIES = 20
DEFAULT_TEXTS = frozenset({DEFAULT_CONSENT, DEFAULT_INSTRUCTIONS, DEFAULT_QUESTION_PROMPT, DEFAULT_COMPLETION_MESSAGE,
                           *DEFAULT_TASK_INSTRUCTIONS.values()})


@dataclass(frozen=True)
class LanguageLink:
    """One entry of the language switch: the language's own name and the address that switches to it."""

    code: str
    name: str
    url: str
    current: bool


def supported(code: str | None) -> str | None:
    """The supported language of a code (``de-AT`` → ``de``), or None for an unknown or malformed one."""
    if not code or len(code) > 35:
        return None
    try:
        return translation.get_supported_language_variant(code.strip().lower())
    except LookupError:
        return None


def accepted_language(header: str) -> str | None:
    """The supported language an ``Accept-Language`` header ranks highest (q-values), or None."""
    ranked = []
    for index, entry in enumerate(header.split(",")[:MAX_ACCEPT_ENTRIES]):
        tag, _, params = entry.strip().partition(";")
        quality = 1.0
        params = params.strip().replace(" ", "")
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                continue
        if tag and tag != "*" and quality > 0:
            ranked.append((-quality, index, tag))
    return next((code for code in (supported(tag) for _, _, tag in sorted(ranked)) if code), None)


def page_language(chosen: str, study_language: str) -> str:
    """The language of a page: the participant's (or newcomer's) if supported, else the study's, else the site's."""
    return supported(chosen) or supported(study_language) or settings.LANGUAGE_CODE


def newcomer_language(request: HttpRequest, study: Model) -> str:
    """The language for a visitor without a participant yet: their switch choice or browser where allowed."""
    chosen = ""
    if study.allow_browser_language:
        chosen = supported(request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)) or accepted_language(
            request.headers.get("Accept-Language", "")) or ""  # fmt: skip
    return page_language(chosen, study.language)


def switch_response(request: HttpRequest, *, allowed: bool, participant: Model | None = None) -> HttpResponse | None:
    """Handle ``?lang=``: store the choice (the participant's, else a cookie) and redirect to the same page without it.

    Returns None when the request has no switch. An unknown language, or one the study does not let
    participants choose, changes nothing; the redirect keeps the rest of the query (e.g. PROLIFIC_PID).
    """
    if SWITCH_PARAM not in request.GET:
        return None
    code = supported(request.GET.get(SWITCH_PARAM))
    query = request.GET.copy()
    query.pop(SWITCH_PARAM)
    response = HttpResponseRedirect(request.path + (f"?{query.urlencode()}" if query else ""))
    if code and allowed:
        if participant is not None:
            type(participant).objects.filter(pk=participant.pk).update(language=code)
        else:
            response.set_cookie(settings.LANGUAGE_COOKIE_NAME, code, max_age=COOKIE_MAX_AGE, httponly=True,
                                samesite="Lax", secure=request.is_secure())  # fmt: skip
    return response


def switch_links(request: HttpRequest, current: str) -> list[LanguageLink]:
    """The switch's links, relative to the page (so a question swapped in by study.js keeps working)."""
    links = []
    for code, name in settings.LANGUAGES:
        query = request.GET.copy()
        query[SWITCH_PARAM] = code
        links.append(LanguageLink(code=code, name=name, url=f"?{query.urlencode()}", current=code == current))
    return links


def shown_text(text: str) -> str:
    """A study text as shown: a default text (still as stored in English) in the page's language, any other as written."""
    return gettext(text) if text in DEFAULT_TEXTS else text


def use_language(request: HttpRequest, language: str, *, switch: bool) -> None:
    """Show the rest of this request in ``language`` (inside a ``participant_page`` view), with the switch if offered."""
    translation.activate(language)
    request.LANGUAGE_CODE = language
    request.language_links = switch_links(request, language) if switch else []


def participant_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Decorate a participant view: whatever language it activates ends with the request, and the
    response names it (``Content-Language``)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        with translation.override(translation.get_language()):
            response = view(request, *args, **kwargs)
        if getattr(request, "language_links", None) is not None:
            response["Content-Language"] = request.LANGUAGE_CODE
        return response

    return wrapped


def enter_language(request: HttpRequest, *, chosen: str, study_language: str, allowed: bool,
                   participant: Model | None = None) -> HttpResponse | None:
    """Start a participant page: the switch's redirect if ``?lang=`` was asked for, else None with the
    page's language (``chosen``, else the study's) active for the rest of the request."""
    switched = switch_response(request, allowed=allowed, participant=participant)
    if switched is None:
        use_language(request, page_language(chosen, study_language), switch=allowed)
    return switched
