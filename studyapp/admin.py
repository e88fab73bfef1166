"""Admin pages: studies are edited here; imported stimuli and answers are shown read-only.

Every page shows only the rows of studies the user may see (studyapp.console.access), and the login is
throttled (studyapp.console.login).
"""
from __future__ import annotations

from django.contrib import admin
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from studyapp.console.access import can_access, visible
from studyapp.console.login import ThrottledLoginForm
from studyapp.models import (
    Answer,
    Bundle,
    Dataset,
    Pair,
    Participant,
    SequenceItem,
    Stimulus,
    Study,
    Trial,
    TrialAnswer,
)

admin.site.login_form = ThrottledLoginForm


class StudyScopedAdmin(admin.ModelAdmin):
    """Rows of the studies the user may see, and only those: in lists, object pages and actions."""

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return visible(super().get_queryset(request), request.user)

    def _may(self, request: HttpRequest, obj: models.Model | None) -> bool:
        return obj is None or can_access(request.user, obj)

    def has_view_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return super().has_view_permission(request, obj) and self._may(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return super().has_change_permission(request, obj) and self._may(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return super().has_delete_permission(request, obj) and self._may(request, obj)


class ReadOnlyAdmin(StudyScopedAdmin):
    """Imported and participant-given data: visible, never edited by hand."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Study)
class StudyAdmin(StudyScopedAdmin):
    list_display = ["title", "slug", "status", "design", "questions_per_cell", "attention_checks", "target_participants",
                    "links"]  # fmt: skip
    filter_horizontal = ["researchers", "research_groups"]
    list_filter = ["status", "design"]
    search_fields = ["slug", "title"]
    prepopulated_fields = {"slug": ["title"]}
    actions = ["open_studies", "close_studies"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    @admin.display(description="links")
    def links(self, study: Study) -> str:
        return format_html(
            '<a href="{}">dashboard</a> · <a href="{}">participant link</a>',
            reverse("studyapp:dashboard", args=[study.slug]),
            study.get_absolute_url(),
        )

    def save_related(self, request: HttpRequest, form: object, formsets: object, change: bool) -> None:
        """A study a researcher creates is theirs (superusers see every study anyway)."""
        super().save_related(request, form, formsets, change)
        if not change and not request.user.is_superuser:
            form.instance.researchers.add(request.user)

    @admin.action(description="Open selected studies to participants")
    def open_studies(self, request: HttpRequest, queryset: QuerySet[Study]) -> None:
        queryset.update(status=Study.Status.OPEN)

    @admin.action(description="Close selected studies to newcomers")
    def close_studies(self, request: HttpRequest, queryset: QuerySet[Study]) -> None:
        queryset.update(status=Study.Status.CLOSED)


@admin.register(Bundle)
class BundleAdmin(ReadOnlyAdmin):
    list_display = ["bundle_id", "study", "imported_at", "content_sha256"]
    exclude = ["manifest"]


@admin.register(Dataset)
class DatasetAdmin(ReadOnlyAdmin):
    list_display = ["key", "title", "task", "bundle"]


class StimulusInline(admin.TabularInline):
    model = Stimulus
    extra = 0
    can_delete = False
    fields = ["order", "method", "image", "source_file", "explanation_size"]
    readonly_fields = fields


@admin.register(Pair)
class PairAdmin(ReadOnlyAdmin):
    list_display = ["pair_id", "question_type", "dataset", "image_id", "predicted_class", "true_class"]
    list_filter = ["question_type", "dataset__key", ("bundle", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["pair_id", "image_id"]
    inlines = [StimulusInline]


class SequenceItemInline(admin.TabularInline):
    model = SequenceItem
    extra = 0
    can_delete = False
    fields = ["position", "pair", "stimulus_a", "stimulus_b", "expected_choice", "design_probability", "answer_choice"]
    readonly_fields = fields

    @admin.display(description="answer")
    def answer_choice(self, item: SequenceItem) -> str:
        answer = getattr(item, "answer", None)
        return f"{answer.choice} ({answer.response_ms} ms)" if answer else "—"


@admin.register(Participant)
class ParticipantAdmin(StudyScopedAdmin):
    list_display = ["public_id", "study", "status", "simulated", "started_at", "completed_at", "external_id"]
    list_filter = [("study", admin.RelatedOnlyFieldListFilter), "excluded", "simulated",
                   ("completed_at", admin.EmptyFieldListFilter)]  # fmt: skip
    search_fields = ["public_id", "external_id"]
    fields = [
        "study", "public_id", "external_id", "simulated", "started_at", "demographics_at", "instructions_at",
        "completed_at", "excluded", "exclusion_reason", "gender", "age", "ml_experience", "xai_experience",
        "sequence_length", "language", "arm", "last_active_at", "screened_out_at",
    ]  # fmt: skip
    readonly_fields = [f for f in fields if f not in ("excluded", "exclusion_reason")]
    inlines = [SequenceItemInline]
    actions = ["exclude_participants", "include_participants"]

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(description="Exclude selected participants from the analysis")
    def exclude_participants(self, request: HttpRequest, queryset: QuerySet[Participant]) -> None:
        queryset.update(excluded=True)

    @admin.action(description="Include selected participants again")
    def include_participants(self, request: HttpRequest, queryset: QuerySet[Participant]) -> None:
        queryset.update(excluded=False, exclusion_reason="")


@admin.register(Answer)
class AnswerAdmin(ReadOnlyAdmin):
    list_display = ["item", "choice", "chosen_method", "response_ms", "answered_at"]
    list_filter = ["choice", ("item__participant__study", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["item__stimulus_a", "item__stimulus_b"]


@admin.register(Trial)
class TrialAdmin(ReadOnlyAdmin):
    """A usefulness study's imported trials (its answers: TrialAnswerAdmin)."""

    list_display = ["trial_id", "dataset", "method", "phase", "predicted_class", "true_class", "model_correct"]
    list_filter = [("bundle__study", admin.RelatedOnlyFieldListFilter), "phase", "model_correct"]
    search_fields = ["trial_id", "image_id"]


@admin.register(TrialAnswer)
class TrialAnswerAdmin(ReadOnlyAdmin):
    """Participants' answers to usefulness trials, read-only like the preference answers."""

    list_display = ["item", "trial", "answer", "confidence", "response_ms", "answered_at"]
    list_filter = [("item__participant__study", admin.RelatedOnlyFieldListFilter), "confidence"]
    list_select_related = ["item__trial"]

    @admin.display(description="trial")
    def trial(self, answer: TrialAnswer) -> str:
        return answer.item.trial.trial_id
