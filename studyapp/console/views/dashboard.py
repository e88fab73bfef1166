"""Researcher pages (staff login): study overview, exclusion and deletion of participants, export download.

Each page shows only a study the researcher may see (studyapp.console.access); any other is a 404.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import Count, F, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from studyapp.console.access import studies_for, study_or_403
from studyapp.console.forms import ExclusionForm, StudyStatusForm
from studyapp.console.live_chart import (
    LIVE_CONFIDENCE,
    comparison_bars,
    comparison_title,
    completion_progress,
)
from studyapp.console.report import ReportUnavailable, study_report_html
from studyapp.console.study_health import study_health
from studyapp.console.usefulness_summary import SUMMARY_CONFIDENCE, check_counts, usefulness_summary
from contracts.usefulness import FORWARD_SIMULATION, LEARN, NO_EXPLANATION
from studyapp.models import Answer, Pair, Participant, SequenceItem, Study, Trial, TrialItem
from studyapp.operations.export import export_zip
from studyapp.participation.blinding import study_text_leaks
from studyapp.participation.design import design_probabilities

REFRESH_SECONDS = 15
PARTICIPANTS_PER_PAGE = 50
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CellRow:
    """Answers and pool of one cell: question type × dataset (pairs), or method × dataset × phase (trials)."""

    group: str
    dataset: str
    pairs: int
    answers: int
    short: bool


def _cells(study: Study, rows: list[dict[str, object]]) -> list[CellRow]:
    """Pool and answers per cell, summed from the exposure rows (one pass over the answers, not two).

    A cell is short when it holds fewer items than a participant gets of it (forward simulation shows
    every trial of a phase, so none of its cells is)."""
    cells: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        cell = cells.setdefault((row["group"], row["dataset"]), [0, 0])
        cell[0] += 1
        cell[1] += row["answered"]
    per_cell = 0 if study.task == FORWARD_SIMULATION else study.questions_per_cell
    return [CellRow(group, dataset, n, answered, n < per_cell)
            for (group, dataset), (n, answered) in sorted(cells.items())]  # fmt: skip


def _exposure(study: Study) -> tuple[list[dict[str, object]], dict[str, int]]:
    """One row per pair (or trial, in a usefulness study): id, cell group, dataset, image, shown, answered.

    Shown and answered count the items of not-excluded participants, attention checks left out. A
    trial's group is its method (forward simulation: its phase, and a learning trial's arm)."""
    if study.is_usefulness:
        counts = _item_counts(TrialItem.objects.filter(participant__study=study, expected_answer=""), "trial_id")
        found = Trial.objects.filter(bundle__study=study).values_list(
            "pk", "trial_id", "method", "phase", "dataset__key", "image_id")
        described = [(pk, name, _trial_group(study.task, method, phase), dataset, image)
                     for pk, name, method, phase, dataset, image in found]
    else:
        counts = _item_counts(SequenceItem.objects.filter(participant__study=study, expected_choice=""), "pair_id")
        described = Pair.objects.filter(bundle__study=study).values_list(
            "pk", "pair_id", "question_type", "dataset__key", "image_id")
    rows = [{"id": name, "group": group, "dataset": dataset, "image": image,
             "shown": counts.get(pk, (0, 0))[0], "answered": counts.get(pk, (0, 0))[1]}
            for pk, name, group, dataset, image in described]
    rows.sort(key=lambda row: (row["group"], row["dataset"], row["shown"], row["id"]))
    shown = [row["shown"] for row in rows] or [0]
    return rows, {"min": min(shown), "max": max(shown)}


def _item_counts(items: QuerySet, key: str) -> dict[int, tuple[int, int]]:
    """Per pair or trial (``key``): the ``items`` of not-excluded participants, and how many are answered.

    A participant's answers are always their positions 1..answered (flow.store_once), so an item is
    answered when its position is at most their ``answered``: one pass over the items, no join to the answers.
    """
    answered = Count("id", filter=Q(position__lte=F("participant__answered")))
    rows = items.filter(participant__excluded=False).values(key).order_by().annotate(shown=Count("id"), done=answered)
    return {row[key]: (row["shown"], row["done"]) for row in rows}


def _table_labels(study: Study) -> dict[str, str]:
    """What the pool and exposure tables list (``item``) and group them by (``group``), as _exposure does."""
    if not study.is_usefulness:
        return {"item": "Pair", "group": "Question type"}
    return {"item": "Trial", "group": "Phase" if study.task == FORWARD_SIMULATION else "Method"}


def _trial_group(task: str, method: str, phase: str) -> str:
    """The dashboard's cell of a trial: its method; in forward simulation its phase (learning: with its arm)."""
    if task != FORWARD_SIMULATION:
        return method
    return f"{phase} · {method or NO_EXPLANATION}" if phase == LEARN else phase


def _participant(request: HttpRequest, slug: str, public_id: str, perm: str) -> Participant:
    """The participant of a study the researcher may see, when they hold ``perm`` on them; 404 otherwise."""
    participant = get_object_or_404(Participant, study=study_or_403(request.user, slug), public_id=public_id)
    if not request.user.has_perm(perm, participant):
        raise PermissionDenied("This needs another permission on the study's participants.")
    return participant


def _counts(study: Study) -> dict[str, int]:
    """Participants per status (excluded, completed, incomplete), simulated and all, in one query."""
    live = Q(excluded=False)
    counts = Participant.objects.filter(study=study).aggregate(
        n_all=Count("id"), n_excluded=Count("id", filter=~live), n_simulated=Count("id", filter=Q(simulated=True)),
        n_completed=Count("id", filter=live & Q(completed_at__isnull=False)),
        n_incomplete=Count("id", filter=live & Q(completed_at__isnull=True)),
    )  # fmt: skip  (aliases may not repeat a field's name)
    return {key.removeprefix("n_"): value for key, value in counts.items()}


def _participant_page(study: Study, request: HttpRequest) -> tuple[Page, str]:
    """One page of the study's participants (newest first) matching ``?q=`` (public or external id).

    Only the page's rows get ``checks_answered`` and ``checks_passed`` (attention checks), so the
    page costs the same at 10 or 10,000 participants.
    """
    query = request.GET.get("q", "").strip()
    people = Participant.objects.filter(study=study).order_by("-started_at", "-id")
    if query:
        people = people.filter(Q(public_id__icontains=query) | Q(external_id__icontains=query))
    page = Paginator(people.only("id"), PARTICIPANTS_PER_PAGE).get_page(request.GET.get("page"))
    rows = (
        Participant.objects.filter(pk__in=[p.pk for p in page.object_list])
        .annotate(**check_counts(study))
        .order_by("-started_at", "-id")
    )
    page.object_list = list(rows)
    return page, query


def _design_probabilities(study: Study) -> list[tuple[str, str, float]] | None:
    """An adaptive study's (comparison, its title, percent) for the next participant; None for a balanced study."""
    if not study.is_adaptive or not hasattr(study, "bundle"):
        return None
    return [(comparison, " vs ".join(comparison_title(comparison)), 100 * probability)
            for comparison, probability in design_probabilities(study).items()]  # fmt: skip


@staff_member_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """The researcher's studies with their participant counts."""
    studies = studies_for(request.user).annotate(
        started=Count("participants", filter=Q(participants__excluded=False)),
        completed=Count("participants", filter=Q(participants__excluded=False, participants__completed_at__isnull=False)),
    )
    context = {"studies": studies, "can_create": request.user.has_perm("studyapp.add_study")}
    return render(request, "studyapp/dashboard/index.html", context)


@never_cache
@staff_member_required
@require_GET
def study_dashboard(request: HttpRequest, slug: str) -> HttpResponse:
    """Counts, answers per cell, pair exposure and participants of one study; refreshes while it runs."""
    study = study_or_403(request.user, slug)
    counts = _counts(study)
    page, query = _participant_page(study, request)
    rows, exposure = _exposure(study)
    refresh = study.status == Study.Status.OPEN and request.GET.get("refresh") != "0"
    include_simulated = request.GET.get("simulated") == "1"
    bars = comparison_bars(study, include_simulated)
    started = counts["all"] - counts["excluded"]
    context = {
        "study": study,
        "bundle": getattr(study, "bundle", None),
        "counts": counts,
        "started": started,
        "bars": bars,
        "design_probabilities": _design_probabilities(study),
        "confidence": round(100 * LIVE_CONFIDENCE),
        "include_simulated": include_simulated,
        "progress": completion_progress(study, started, counts["completed"]),
        "can_change": request.user.has_perm("studyapp.change_study", study),
        "status_form": StudyStatusForm(study=study),
        "cells": _cells(study, rows),
        "labels": _table_labels(study),
        "pairs": rows,
        "exposure": exposure,
        "participants": page.object_list,
        "health": study_health(study, page.object_list, include_simulated),
        "page": page,
        "query": query,
        "refresh": REFRESH_SECONDS if refresh else None,
        "study_url": request.build_absolute_uri(study.get_absolute_url()),
        "text_leaks": study_text_leaks(study),
        "usefulness": usefulness_summary(study, include_simulated),
        "usefulness_confidence": round(100 * SUMMARY_CONFIDENCE),
    }
    return render(request, "studyapp/dashboard/study.html", context)


@staff_member_required
@require_POST
def set_exclusion(request: HttpRequest, slug: str, public_id: str, exclude: bool) -> HttpResponse:
    """Exclude a participant from the analysis (e.g. failed sanity checks), or include them again."""
    participant = _participant(request, slug, public_id, "studyapp.change_participant")
    form = ExclusionForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    Participant.objects.filter(pk=participant.pk).update(excluded=exclude, exclusion_reason=reason if exclude else "")
    messages.success(request, f"Participant {public_id} {'excluded' if exclude else 'included again'}.")
    return redirect("studyapp:dashboard", slug)


@staff_member_required
@require_http_methods(["GET", "POST"])
def delete_participant(request: HttpRequest, slug: str, public_id: str) -> HttpResponse:
    """Delete everything stored about a participant (on their request), after a confirmation page."""
    participant = _participant(request, slug, public_id, "studyapp.delete_participant")
    if request.method == "POST":
        participant.delete()
        messages.success(request, f"All data of participant {public_id} was deleted.")
        return redirect("studyapp:dashboard", slug)
    answered = Answer.objects.filter(item__participant=participant).count()
    context = {"study": participant.study, "participant": participant, "answered": answered}
    return render(request, "studyapp/dashboard/delete.html", context)


@staff_member_required
@require_GET
def download_export(request: HttpRequest, slug: str) -> HttpResponse:
    """answers.csv and participants.csv (a usefulness study: and trials.csv) of the study in one zip file, with the manifest."""
    study = study_or_403(request.user, slug)
    response = HttpResponse(export_zip(study), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{study.slug}-export.zip"'
    return response


@staff_member_required
@require_POST
def analysis_report(request: HttpRequest, slug: str) -> HttpResponse:
    """The analysis report (figures, preferences, statistics) of the study's answers so far."""
    study = study_or_403(request.user, slug)
    try:
        html = study_report_html(study, include_simulated=request.POST.get("include_simulated") == "1")
    except ReportUnavailable as exc:
        messages.error(request, f"No report: {exc}")
        return redirect("studyapp:dashboard", slug)
    except Exception:  # a report the analysis cannot build must not cost the researcher a 500
        logger.exception("report of study %s failed", study.slug)
        messages.error(request, "No report: the analysis failed on this study's answers (details are in the server log).")
        return redirect("studyapp:dashboard", slug)
    return HttpResponse(html)
