"""Research pages that change a study: create one from an uploaded bundle, edit its texts, open and close it.

Creating needs ``studyapp.add_study``; the other pages need ``studyapp.change_study`` on the study
(studyapp.console.access): 403 for a study that is not the researcher's.
"""
from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods, require_POST

from studyapp.console.access import study_or_403
from studyapp.console.forms import NewStudyForm, StudyStatusForm, StudyTextsForm
from studyapp.console.upload import (
    BoundedUpload,
    NewStudy,
    UploadRefused,
    create_study,
    size_problem,
)
from studyapp.models import Study
from studyapp.participation.blinding import study_text_leaks

CHANGE = "studyapp.change_study"


# The upload handlers must be swapped before the CSRF check reads the body, hence exempt + protect.
@csrf_exempt
@staff_member_required
@require_http_methods(["GET", "POST"])
def new_study(request: HttpRequest) -> HttpResponse:
    """Upload a bundle .zip, name the study: it is created as a draft owned by the uploader."""
    if not request.user.has_perm("studyapp.add_study"):
        raise PermissionDenied("Creating studies needs the add_study permission (the researchers group).")
    handler = BoundedUpload(request)
    if request.method == "POST":
        request.upload_handlers = [handler]
    return _new_study(request, handler)


@csrf_protect
def _new_study(request: HttpRequest, handler: BoundedUpload) -> HttpResponse:
    problems: list[str] = []
    if request.method == "POST":
        form = NewStudyForm(request.POST, request.FILES)
        if handler.too_large:
            problems.append(size_problem())
        elif form.is_valid():
            data = form.cleaned_data
            choice = NewStudy(slug=data["slug"], title=data["title"], attention_checks=data["attention_checks"])
            try:
                study = create_study(data["bundle"], choice, request.user)
            except UploadRefused as refused:
                problems = refused.problems
            else:
                messages.success(request, f"Study {study.slug!r} was created as a draft; "
                                          "check its texts, preview it, then open it.")  # fmt: skip
                return redirect("studyapp:dashboard", study.slug)
    else:
        form = NewStudyForm()
    status = 400 if problems or form.errors else 200
    return render(request, "studyapp/dashboard/new.html", {"form": form, "problems": problems}, status=status)


@staff_member_required
@require_http_methods(["GET", "POST"])
def study_texts(request: HttpRequest, slug: str) -> HttpResponse:
    """The study's texts and question settings in one form; the blinding audit warns about method names."""
    study = study_or_403(request.user, slug, CHANGE)
    form = StudyTextsForm(request.POST if request.method == "POST" else None, instance=study)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "The study's texts and settings were saved.")
        return redirect("studyapp:texts", study.slug)
    context = {"study": study, "form": form, "text_leaks": study_text_leaks(Study.objects.get(pk=study.pk))}
    return render(request, "studyapp/dashboard/texts.html", context, status=400 if form.errors else 200)


@staff_member_required
@require_POST
def set_status(request: HttpRequest, slug: str) -> HttpResponse:
    """Open the study to participants, or close it to newcomers."""
    study = study_or_403(request.user, slug, CHANGE)
    form = StudyStatusForm(request.POST, study=study)
    if form.is_valid():
        Study.objects.filter(pk=study.pk).update(status=form.cleaned_data["status"])
        messages.success(request, f"The study is now {form.cleaned_data['status']}.")
    else:
        messages.error(request, " ".join(error for errors in form.errors.values() for error in errors))
    return redirect("studyapp:dashboard", study.slug)
