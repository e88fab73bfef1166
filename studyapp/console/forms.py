"""Forms of the research console: a new study from an uploaded bundle, a study's texts and settings, its
status, a participant's exclusion."""
from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import MinValueValidator, RegexValidator

from studyapp.models import Study
from studyapp.operations.bundle import SLUG_PATTERN

RESERVED_SLUGS = {"new"}  # research/new/ creates a study
STUDY_TEXT_FIELDS = (
    "title", "consent_text", "instructions", "question_prompt", "completion_message", "completion_redirect_url",
    "completion_code", "screened_out_code", "no_consent_code",
    "questions_per_cell", "attention_checks", "max_failed_checks", "release_after_minutes", "target_participants",
    "language", "allow_browser_language", "design", "adaptive_objective", "adaptive_min_share",
)  # fmt: skip


class NewStudyForm(forms.Form):
    """Title, address and attention checks of a study, and the bundle .zip it is made from."""

    title = forms.CharField(max_length=Study._meta.get_field("title").max_length)
    slug = forms.CharField(
        label="Address (the participant link ends in /s/ADDRESS/)",
        max_length=Study._meta.get_field("slug").max_length,
        validators=[RegexValidator(SLUG_PATTERN, "Use only a-z, 0-9, '_' and '-', starting with a letter or digit.")],
    )
    attention_checks = forms.IntegerField(
        min_value=0, max_value=100, initial=Study._meta.get_field("attention_checks").default,
        help_text=Study._meta.get_field("attention_checks").help_text,
    )
    bundle = forms.FileField(label="Stimulus bundle (.zip of manifest.json and images/)")

    def clean_slug(self) -> str:
        slug = self.cleaned_data["slug"]
        if slug in RESERVED_SLUGS:
            raise forms.ValidationError(f"The address {slug!r} is taken by the research pages; choose another.")
        if Study.objects.filter(slug=slug).exists():
            raise forms.ValidationError(f"A study with the address {slug!r} exists already; choose another.")
        return slug


class StudyTextsForm(forms.ModelForm):
    """What participants read and how many questions they get; the model validates prompt and checks."""

    completion_redirect_url = forms.URLField(
        required=False, max_length=500, assume_scheme="https",
        help_text="Where to send participants after the last answer (e.g. Prolific); empty shows the completion "
        "message. With {code} in it, e.g. https://app.prolific.com/submissions/complete?cc={code}, participants of "
        "every outcome (complete, screened out, no consent) are sent there with that outcome's code; without, "
        "only those who complete.",
    )  # fmt: skip

    class Meta:
        model = Study
        fields = list(STUDY_TEXT_FIELDS)
        labels = {
            "completion_code": "Completion code (complete)",
            "screened_out_code": "Completion code (screened out)",
            "no_consent_code": "Completion code (no consent: please return)",
            "max_failed_checks": "Failed attention checks allowed",
            "release_after_minutes": "Release inactive participants after (minutes)",
            "design": "Design",
            "adaptive_objective": "Adaptive design: objective",
            "adaptive_min_share": "Adaptive design: minimum share",
        }
        widgets = {
            "title": forms.TextInput(attrs={"size": 60}),
            "consent_text": forms.Textarea(attrs={"rows": 6}),
            "instructions": forms.Textarea(attrs={"rows": 6}),
            "question_prompt": forms.Textarea(attrs={"rows": 3}),
            "completion_message": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        target = self.fields["target_participants"]
        target.validators.append(MinValueValidator(1, "The target must be at least 1 participant (empty: no limit)."))
        target.widget.attrs["min"] = 1
        min_share = self.fields["adaptive_min_share"]
        min_share.widget.attrs.update(min=0, max=1, step="any")


class StudyStatusForm(forms.Form):
    """Open or close a study (a draft opens; an open study closes; a closed one opens again)."""

    status = forms.ChoiceField(choices=[(Study.Status.OPEN, "open"), (Study.Status.CLOSED, "closed")])

    def __init__(self, *args: Any, study: Study, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.study = study

    def clean_status(self) -> str:
        status = self.cleaned_data["status"]
        if status == Study.Status.OPEN and not hasattr(self.study, "bundle"):
            raise forms.ValidationError("The study has no stimulus bundle yet; it cannot open.")
        return status


class ExclusionForm(forms.Form):
    """Why a researcher excludes a participant (kept in the participant record)."""

    reason = forms.CharField(required=False, max_length=300)
