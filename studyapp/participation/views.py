"""Participant pages: study page with consent → demographics → instructions → questions → thank-you.

Three ends, each with the study's code for it (Study.outcome_code) or its redirect (Study.outcome_redirect_url):
thank-you (complete), screened out (failed attention checks beyond the study's rule) and no consent
(a visitor who declines is asked to return the submission; nothing is stored).

Plain server-rendered forms; every page is ``no-store`` so the back button asks the server again,
and every view sends the participant on to their next step when they ask for another one.
"""
from __future__ import annotations

import re
from collections.abc import Callable

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from contracts.usefulness import PREFERENCE
from studyapp.models import Outcome, Participant, Study
from studyapp.operations.bundle import STORAGE_DIR
from studyapp.participation.flow import (
    ExternalIdTaken,
    Question,
    StudyTexts,
    StudyUnavailable,
    enrol,
    find_participant,
    mark_instructions_read,
    next_url,
    question_participant,
    question_url,
    questions,
    record_answer,
    record_trial_answer,
    screen_out_if_failed,
)
from studyapp.participation.forms import (
    AnswerForm,
    ConsentForm,
    DemographicsForm,
    TrialAnswerForm,
    shown_stamp,
)
from studyapp.participation.language import (
    enter_language,
    newcomer_language,
    participant_page,
    shown_text,
)
from studyapp.participation.protocol import INLINE, NEXT_HEADER, PAGE_HEADER
from studyapp.participation.texts import question_prompt_html, trial_prompt_html
from studyapp.participation.trials import TrialPage, trial_pages
from studyapp.throttle import check_enrolment

COOKIE_SALT = "studyapp.participant-cookie"
COOKIE_MAX_AGE = 60 * 60 * 24 * 60
EXTERNAL_ID_PARAMS = ("PROLIFIC_PID", "external_id")
IMAGE_NAME = re.compile(r"^[A-Za-z0-9_-]{16,64}\.(png|jpg)$")
IMAGE_TYPES = {"png": "image/png", "jpg": "image/jpeg"}


def study_cookie_name(study: Study) -> str:
    """Name of the signed cookie remembering this browser's participant of a study."""
    return f"study{study.pk}"


def _participant(token: str) -> Participant:
    """The participant of a token from the URL (the ``token`` path converter admits only token characters)."""
    return get_object_or_404(Participant.objects.select_related("study"), token=token)


def _participant_language(request: HttpRequest, participant: Participant) -> HttpResponse | None:
    """The language switch's redirect, or None with the participant's language active for the page."""
    study = participant.study
    return enter_language(request, chosen=participant.language, study_language=study.language,
                          allowed=study.allow_browser_language, participant=participant)  # fmt: skip


def _is_preview(request: HttpRequest, study: Study) -> bool:
    """A draft study's own researchers try it out in the preview, which records nothing (views/preview.py)."""
    return study.status == Study.Status.DRAFT and request.user.has_perm("studyapp.view_study", study)


def _returning(request: HttpRequest, study: Study, external_id: str | None) -> Participant | None:
    """The participant this browser already is (its signed cookie), unless the link names another external id.

    An external id alone never identifies a visitor: Prolific and the researchers know it, and lab
    ids are often sequential, so it is not the participant's secret.
    """
    token = request.get_signed_cookie(study_cookie_name(study), default=None, salt=COOKIE_SALT)
    participant = Participant.objects.filter(study=study, token=token).first() if token else None
    if participant is None or (external_id and participant.external_id not in (None, external_id)):
        return None
    return participant


def _unavailable(request: HttpRequest, study: Study, status: int = 200, reason: str | None = None) -> HttpResponse:
    reason = reason or ("full" if study.status == Study.Status.OPEN else study.status)
    return render(request, "studyapp/unavailable.html", {"study": study, "reason": reason}, status=status)


def _external_id(request: HttpRequest) -> str | None:
    """The external id from the study link's query (``PROLIFIC_PID``); ids with control characters are ignored."""
    value = next((request.GET[k].strip()[:128] for k in EXTERNAL_ID_PARAMS if request.GET.get(k, "").strip()), None)
    return value if value and value.isprintable() else None


@never_cache
@participant_page
@require_http_methods(["GET", "POST"])
def study_page(request: HttpRequest, slug: str) -> HttpResponse:
    """The study link: information and consent; a returning visitor goes straight to their next step."""
    study = get_object_or_404(Study, slug=slug)
    if _is_preview(request, study):
        return redirect("studyapp:preview", study.slug)
    external_id = _external_id(request)
    returning = _returning(request, study, external_id)
    language = newcomer_language(request, study)
    switched = enter_language(request, chosen=language, study_language=study.language,
                              allowed=study.allow_browser_language, participant=returning)  # fmt: skip
    if switched is not None:
        return switched
    if returning is not None:
        return redirect(next_url(returning))
    if find_participant(study, external_id) is not None:
        return _unavailable(request, study, status=409, reason="started")
    if request.method == "POST":
        form = ConsentForm(request.POST, study_slug=study.slug)
        if form.is_valid():
            verdict = None if form.cleaned_data["sim"] else check_enrolment(request)
            if verdict is not None and not verdict.allowed:
                response = _unavailable(request, study, status=429, reason="busy")
                response["Retry-After"] = str(verdict.retry_after_s)
                return response
            try:
                participant = enrol(
                    study,
                    external_id=form.cleaned_data["external_id"],
                    simulated=form.cleaned_data["sim"],
                    only_new=True,
                    language=language,
                )
            except StudyUnavailable:
                return _unavailable(request, study, status=403)
            except ExternalIdTaken:
                return _unavailable(request, study, status=409, reason="started")
            response = redirect(next_url(participant))
            response.set_signed_cookie(
                study_cookie_name(study), participant.token, salt=COOKIE_SALT, max_age=COOKIE_MAX_AGE,
                httponly=True, samesite="Lax", secure=request.is_secure(),
            )  # fmt: skip
            return response
        status = 400
    else:
        if study.status != Study.Status.OPEN or study.is_full():
            return _unavailable(request, study)
        form = ConsentForm(
            initial={"external_id": external_id or "", "sim": request.GET.get("sim", "")[:300]}, study_slug=study.slug
        )
        status = 200
    return render(request, "studyapp/study.html", {"study": study, "form": form}, status=status)


@never_cache
@require_GET
def resume(request: HttpRequest, token: str) -> HttpResponse:
    """A participant's own link: always leads to the first thing still to do."""
    return redirect(next_url(_participant(token)))


@never_cache
@participant_page
@require_http_methods(["GET", "POST"])
def demographics(request: HttpRequest, token: str) -> HttpResponse:
    """Gender, age and ML/XAI experience; answered once."""
    participant = _participant(token)
    if switched := _participant_language(request, participant):
        return switched
    if participant.demographics_at is not None:
        return redirect(next_url(participant))
    form = DemographicsForm(request.POST or None, instance=participant)
    if request.method == "POST":
        if form.is_valid():
            fields = {name: form.cleaned_data[name] for name in form.Meta.fields}
            Participant.objects.filter(pk=participant.pk, demographics_at__isnull=True).update(
                demographics_at=timezone.now(), last_active_at=timezone.now(), **fields
            )
            participant.demographics_at = timezone.now()
            return redirect(next_url(participant))
    context = {"study": participant.study, "form": form, "participant": participant}
    return render(request, "studyapp/demographics.html", context, status=400 if form.errors else 200)


@never_cache
@participant_page
@require_http_methods(["GET", "POST"])
def instructions(request: HttpRequest, token: str) -> HttpResponse:
    """The study's instructions; continuing records that they were read."""
    participant = _participant(token)
    if switched := _participant_language(request, participant):
        return switched
    if participant.demographics_at is None or participant.instructions_at is not None:
        return redirect(next_url(participant))
    if request.method == "POST":
        mark_instructions_read(participant)
        return redirect(next_url(participant))
    context = {"study": participant.study, "participant": participant}
    return render(request, "studyapp/instructions.html", context)


# No CSRF token: the answer form carries the signed stamp of the very item it answers (``shown``),
# which only a page fetched with the participant's secret token has, so a forged cross-site POST
# fails the form; masking a fresh CSRF token on every question page was a tenth of its CPU.
@csrf_exempt
@never_cache
@participant_page
@require_http_methods(["GET", "POST"])
def question(request: HttpRequest, token: str, position: int) -> HttpResponse:
    """One question; only the first unanswered one can be answered, anything else moves the participant on.

    A stored answer redirects to the next question (post/redirect/get), except for study.js's
    answers (``X-Study-Next: inline``), which get the next question page in the same response
    and its URL in ``X-Study-Page``: one request per answer instead of two.
    """
    participant, texts = question_participant(token)
    switched = enter_language(request, chosen=participant.language, study_language=texts.language,
                              allowed=texts.allow_browser_language, participant=participant)  # fmt: skip
    if switched is not None:
        return switched
    current = participant.answered + 1
    if (participant.screened_out_at is not None or participant.demographics_at is None
            or participant.instructions_at is None or position != current):  # fmt: skip
        return redirect(next_url(participant))
    if current > participant.sequence_length:
        return redirect("studyapp:done", participant.token)
    if texts.task != PREFERENCE:
        return _trial(request, participant, texts)
    sequence = questions(participant.token)
    if request.method != "POST":
        return _question_page(request, participant, texts, sequence)
    form = AnswerForm(request.POST, item_pk=sequence[current - 1].item_pk)
    if not form.is_valid():
        return _question_page(request, participant, texts, sequence, invalid=True)
    if not record_answer(participant, sequence[current - 1], form.cleaned_data["choice"], form.response_ms()):
        return redirect(next_url(_participant(token)))
    shown = sequence[current - 1]
    if shown.expected and form.cleaned_data["choice"] != shown.expected and screen_out_if_failed(participant, False):
        return redirect(next_url(participant))
    return _answered(request, participant, lambda: _question_page(request, participant, texts, sequence))


def _answered(request: HttpRequest, participant: Participant, next_page: Callable[[], HttpResponse]) -> HttpResponse:
    """After a stored answer: the redirect to the next step, or for study.js (inline) the next page itself."""
    following = question_url(participant, participant.answered + 1)
    if request.headers.get(NEXT_HEADER) != INLINE or participant.answered == participant.sequence_length:
        return redirect(following)
    response = next_page()
    response[PAGE_HEADER] = following
    return response


def _trial(request: HttpRequest, participant: Participant, texts: StudyTexts) -> HttpResponse:
    """The current trial of a usefulness study: its page, or its answer stored (post/redirect/get as for questions)."""
    sequence = trial_pages(participant.token)
    page = sequence[participant.answered]
    if request.method != "POST":
        return _trial_page(request, participant, texts, sequence, TrialAnswerForm(page=page))
    form = TrialAnswerForm(request.POST, page=page)
    if not form.is_valid():
        return _trial_page(request, participant, texts, sequence, form)
    answer, confidence = form.answer_and_confidence()
    if not record_trial_answer(participant, page.item_pk, answer, confidence, form.response_ms()):
        return redirect(next_url(_participant(participant.token)))
    if page.instructed and answer != page.instructed and screen_out_if_failed(participant, usefulness=True):
        return redirect(next_url(participant))
    following = sequence[participant.answered] if participant.answered < len(sequence) else page
    return _answered(request, participant, lambda: _trial_page(
        request, participant, texts, sequence, TrialAnswerForm(page=following)))


def _trial_page(request: HttpRequest, participant: Participant, texts: StudyTexts, sequence: tuple[TrialPage, ...],
                form: TrialAnswerForm, preview: bool = False) -> HttpResponse:  # fmt: skip
    """The page of the participant's first unanswered trial (``form`` bound and invalid: with its errors)."""
    shown = sequence[participant.answered]
    following = sequence[participant.answered + 1] if participant.answered + 1 < len(sequence) else None
    context = {
        "study_title": texts.title,
        "participant": participant,
        "trial": shown,
        "prompt": trial_prompt_html(shown),
        "form": form,
        "instructed": shown.answer_label(shown.instructed) if shown.instructed else "",
        "preview_banner": preview,
        "shown": shown_stamp(shown.item_pk),
        "answered": participant.answered,
        "preload": [url for url in (following.image_url, *following.panel_urls) if url] if following else [],
    }
    return render(request, "studyapp/trial.html", context, status=400 if form.errors else 200)


def _question_page(request: HttpRequest, participant: Participant, texts: StudyTexts,
                   sequence: tuple[Question, ...], invalid: bool = False, preview: bool = False) -> HttpResponse:
    """The page of the participant's first unanswered question, with the next one's images to preload.

    ``participant`` needs only its counters; ``preview`` shows the researcher's preview banner.
    """
    shown = sequence[participant.answered]
    following = sequence[participant.answered + 1] if participant.answered + 1 < len(sequence) else None
    context = {
        "study_title": texts.title,
        "participant": participant,
        "question": shown,
        "prompt": question_prompt_html(shown_text(texts.question_prompt), shown.task, shown.predicted_class),
        "invalid": invalid,
        "preview_banner": preview,
        "shown": shown_stamp(shown.item_pk),
        "answered": participant.answered,
        "preload": [url for url in (following.image_url, following.a_url, following.b_url) if url] if following else [],
    }
    return render(request, "studyapp/question.html", context, status=400 if invalid else 200)


@never_cache
@participant_page
@require_GET
def done(request: HttpRequest, token: str) -> HttpResponse:
    """Thank-you page with the completion code, or the study's completion redirect; only after the last answer."""
    participant = _participant(token)
    if switched := _participant_language(request, participant):
        return switched
    if participant.screened_out_at is not None:
        return redirect(next_url(participant))
    if participant.completed_at is None:
        if participant.instructions_at is None or participant.answered < participant.sequence_length:
            return redirect(next_url(participant))
        Participant.objects.filter(pk=participant.pk, completed_at__isnull=True).update(completed_at=timezone.now())
    return _end(request, participant.study, Outcome.COMPLETE, "studyapp/done.html", {"participant": participant})


def _end(request: HttpRequest, study: Study, outcome: str, template: str, context: dict) -> HttpResponse:
    """An end page: the study's redirect for the outcome (its code filled in), else ``template`` with the code."""
    if url := study.outcome_redirect_url(outcome):
        return HttpResponseRedirect(url)
    return render(request, template, {"study": study, "code": study.outcome_code(outcome), **context})


@never_cache
@participant_page
@require_GET
def screened_out(request: HttpRequest, token: str) -> HttpResponse:
    """The end of a participant screened out by failed attention checks: their code, or the study's redirect."""
    participant = _participant(token)
    if switched := _participant_language(request, participant):
        return switched
    if participant.screened_out_at is None:
        return redirect(next_url(participant))
    return _end(request, participant.study, Outcome.SCREENED_OUT, "studyapp/screened_out.html",
                {"participant": participant})  # fmt: skip


@never_cache
@participant_page
@require_GET
def no_consent(request: HttpRequest, slug: str) -> HttpResponse:
    """A visitor who does not consent: asked to return the submission, with the no-consent code; nothing stored."""
    study = get_object_or_404(Study, slug=slug)
    preview = _is_preview(request, study)
    if not preview and study.status != Study.Status.OPEN:
        return _unavailable(request, study)
    switched = enter_language(request, chosen=newcomer_language(request, study), study_language=study.language,
                              allowed=study.allow_browser_language)  # fmt: skip
    if switched is not None:
        return switched
    if not preview:
        return _end(request, study, Outcome.NO_CONSENT, "studyapp/no_consent.html", {})
    context = {"study": study, "code": study.no_consent_code, "preview_banner": True,
               "preview_redirect": study.outcome_redirect_url(Outcome.NO_CONSENT)}  # fmt: skip
    return render(request, "studyapp/no_consent.html", context)


@require_GET
def stimulus_image(request: HttpRequest, name: str) -> FileResponse:
    """A stimulus image by its opaque stored name; long-cached since names never change content."""
    match = IMAGE_NAME.match(name)
    path = f"{STORAGE_DIR}/{name}"
    if match is None or not default_storage.exists(path):
        raise Http404("No such image.")
    response = FileResponse(default_storage.open(path, "rb"), content_type=IMAGE_TYPES[match.group(1)])
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    response.headers.pop("Content-Disposition", None)
    return response

