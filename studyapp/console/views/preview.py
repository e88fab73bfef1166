""""Preview as participant": the participant's pages for a researcher with access, writing nothing.

consent → about you → instructions → one question of each type (a usefulness study: its trials,
studyapp.console.preview) and a check → thank-you, each rendered from the participant templates with
the preview banner; the forms are validated as for a participant, but no participant, answer or
exposure is ever stored.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from studyapp.console.access import study_or_403
from studyapp.console.preview import preview_length, preview_participant, preview_questions, preview_trials
from studyapp.models import Outcome, Study
from studyapp.participation.flow import StudyTexts
from studyapp.participation.forms import AnswerForm, ConsentForm, DemographicsForm, TrialAnswerForm
from studyapp.participation.language import enter_language, newcomer_language, participant_page
from studyapp.participation.views import _question_page, _trial_page


def _language(request: HttpRequest, study: Study) -> HttpResponse | None:
    """The language switch's redirect, or None with the page in the study's language (or, where the
    study lets participants choose, the previewer's browser language or switch choice)."""
    return enter_language(request, chosen=newcomer_language(request, study), study_language=study.language,
                          allowed=study.allow_browser_language)  # fmt: skip


def preview_step(*methods: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Make ``view(request, study, **kwargs)`` a preview page: staff only, the study they may see (403
    otherwise), never cached, in the language the participant would get (or the switch's redirect)."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @never_cache
        @participant_page
        @staff_member_required
        @require_http_methods(list(methods))
        @wraps(view)
        def step(request: HttpRequest, slug: str, **kwargs: object) -> HttpResponse:
            study = study_or_403(request.user, slug)
            return _language(request, study) or view(request, study, **kwargs)

        return step

    return decorate


def _page(request: HttpRequest, template: str, context: dict, status: int = 200) -> HttpResponse:
    return render(request, template, {**context, "preview_banner": True}, status=status)


@preview_step("GET", "POST")
def consent(request: HttpRequest, study: Study) -> HttpResponse:
    """The study page with its consent text, as a newcomer sees it."""
    form = ConsentForm(request.POST if request.method == "POST" else None, study_slug=study.slug)
    if request.method == "POST" and form.is_valid():
        return redirect("studyapp:preview_demographics", study.slug)
    return _page(request, "studyapp/study.html", {"study": study, "form": form}, 400 if form.errors else 200)


@preview_step("GET", "POST")
def demographics(request: HttpRequest, study: Study) -> HttpResponse:
    """The questions about the participant; answers are checked and dropped."""
    form = DemographicsForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        return redirect("studyapp:preview_instructions", study.slug)
    participant = preview_participant(study, preview_length(study))
    context = {"study": study, "form": form, "participant": participant}
    return _page(request, "studyapp/demographics.html", context, 400 if form.errors else 200)


@preview_step("GET", "POST")
def instructions(request: HttpRequest, study: Study) -> HttpResponse:
    """The study's instructions."""
    participant = preview_participant(study, preview_length(study))
    if request.method == "POST":
        if not participant.sequence_length:  # a study without a bundle has no questions to show
            return redirect("studyapp:preview_done", study.slug)
        return redirect("studyapp:preview_question", study.slug, 1)
    return _page(request, "studyapp/instructions.html", {"study": study, "participant": participant})


# The question form has no CSRF token (as for participants); a preview answer changes nothing.
@csrf_exempt
@preview_step("GET", "POST")
def question(request: HttpRequest, study: Study, position: int) -> HttpResponse:
    """Question ``position`` of the preview sequence; an answer moves on to the next one."""
    if study.is_usefulness:
        return _trial(request, study, position)
    sequence = preview_questions(study)
    if not 1 <= position <= len(sequence):
        raise Http404("No such question in the preview.")
    participant = preview_participant(study, len(sequence), answered=position - 1)
    texts = StudyTexts.of(study)
    if request.method == "POST":
        if AnswerForm(request.POST, item_pk=sequence[position - 1].item_pk).is_valid():
            if position == len(sequence):
                return redirect("studyapp:preview_done", study.slug)
            return redirect("studyapp:preview_question", study.slug, position + 1)
        return _question_page(request, participant, texts, sequence, invalid=True, preview=True)
    return _question_page(request, participant, texts, sequence, preview=True)


def _trial(request: HttpRequest, study: Study, position: int) -> HttpResponse:
    """Trial ``position`` of a usefulness study's preview, on the participant's trial page."""
    sequence = preview_trials(study)
    if not 1 <= position <= len(sequence):
        raise Http404("No such trial in the preview.")
    participant = preview_participant(study, len(sequence), answered=position - 1)
    texts = StudyTexts.of(study)
    page = sequence[position - 1]
    if request.method == "POST":
        form = TrialAnswerForm(request.POST, page=page)
        if not form.is_valid():
            return _trial_page(request, participant, texts, sequence, form, preview=True)
        if position == len(sequence):
            return redirect("studyapp:preview_done", study.slug)
        return redirect("studyapp:preview_question", study.slug, position + 1)
    return _trial_page(request, participant, texts, sequence, TrialAnswerForm(page=page), preview=True)


@preview_step("GET")
def done(request: HttpRequest, study: Study) -> HttpResponse:
    """The thank-you page, or a note where the study sends participants on instead."""
    participant = preview_participant(study, preview_length(study))
    context = {"study": study, "participant": participant, "preview_redirect": study.outcome_redirect_url(Outcome.COMPLETE)}
    return _page(request, "studyapp/done.html", context)
