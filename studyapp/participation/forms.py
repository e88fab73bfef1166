"""Forms of the participant's pages (consent, about you, an answer); all their validation happens here."""
from __future__ import annotations

import time
from typing import Any

from django import forms
from django.core import signing
from django.utils.translation import gettext_lazy as _

from contracts.usefulness import CONFIDENCE_LEVELS
from studyapp.models import Answer, Participant
from studyapp.participation.trials import TrialPage, confidence_label

SHOWN_SALT = "studyapp.question-shown"
SIMULATED_SALT = "studyapp.simulated-participant"
MAX_RESPONSE_MS = 24 * 3600 * 1000


def now_ms() -> int:
    """Wall-clock milliseconds, the unit of response times."""
    return int(time.time() * 1000)


def shown_stamp(item_pk: int) -> str:
    """A signed note of which item a question page showed and when (no server-side write needed)."""
    return signing.dumps([item_pk, now_ms()], salt=SHOWN_SALT)


def simulated_stamp(study_slug: str) -> str:
    """The signed marker a simulated participant passes so that it is stored with ``simulated=True``."""
    return signing.dumps(study_slug, salt=SIMULATED_SALT)


class ConsentForm(forms.Form):
    """Consent on the study page; carries an external id (e.g. Prolific's) through the POST."""

    agree = forms.BooleanField(
        label=_("I have read the information above and agree to take part."),
        error_messages={"required": _("Please tick the box to agree before you start.")},
    )
    external_id = forms.CharField(required=False, max_length=128, widget=forms.HiddenInput)
    sim = forms.CharField(required=False, max_length=300, widget=forms.HiddenInput)

    def __init__(self, *args: Any, study_slug: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.study_slug = study_slug

    def clean_external_id(self) -> str | None:
        return self.cleaned_data["external_id"].strip() or None

    def clean_sim(self) -> bool:
        value = self.cleaned_data["sim"]
        if not value:
            return False
        try:
            return signing.loads(value, salt=SIMULATED_SALT) == self.study_slug
        except signing.BadSignature:
            raise forms.ValidationError(_("The simulation marker is not valid.")) from None


class DemographicsForm(forms.ModelForm):
    """The four questions about the participant (paper, Figures 8–11)."""

    age = forms.IntegerField(label=_("Age (years)"), min_value=16, max_value=110)

    class Meta:
        model = Participant
        fields = ["gender", "age", "ml_experience", "xai_experience"]
        labels = {
            "gender": _("Gender"),
            "ml_experience": _("I have technical experience with ML/AI:"),
            "xai_experience": _("I have technical experience with XAI (explainable AI):"),
        }
        widgets = {
            "gender": forms.RadioSelect,
            "ml_experience": forms.RadioSelect,
            "xai_experience": forms.RadioSelect,
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("gender", "ml_experience", "xai_experience"):
            field = self.fields[name]
            field.required = True
            field.choices = [c for c in field.choices if c[0] != ""]


class StampedForm(forms.Form):
    """An answer page's form: the signed stamp of the page it answers and an optional client-side time."""

    shown = forms.CharField(max_length=200)
    client_ms = forms.IntegerField(required=False, min_value=0, max_value=MAX_RESPONSE_MS)

    def __init__(self, *args: Any, item_pk: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.item_pk = item_pk

    def clean_shown(self) -> int:
        """The time the page was shown; the stamp must belong to this very item."""
        try:
            item_pk, shown_at = signing.loads(self.cleaned_data["shown"], salt=SHOWN_SALT)
        except (signing.BadSignature, ValueError, TypeError):
            raise forms.ValidationError(_("This answer does not belong to a question that was shown.")) from None
        if item_pk != self.item_pk or not isinstance(shown_at, int):
            raise forms.ValidationError(_("This answer does not belong to this question."))
        return shown_at

    def response_ms(self) -> int:
        """Response time: the browser's measurement when given and plausible, else the server's."""
        server_ms = min(max(now_ms() - self.cleaned_data["shown"], 0), MAX_RESPONSE_MS)
        client_ms = self.cleaned_data.get("client_ms")
        if client_ms is not None and client_ms <= server_ms + 1000:
            return client_ms
        return server_ms


class AnswerForm(StampedForm):
    """One answer: the choice, the signed stamp of the page it answers, an optional client-side time."""

    choice = forms.ChoiceField(choices=Answer.Choice.choices)
    field_order = ("choice", "shown", "client_ms")


class TrialAnswerForm(StampedForm):
    """One trial's answer and confidence (both required; radio buttons), or for a learning trial only the stamp."""

    answer = forms.ChoiceField(
        widget=forms.RadioSelect, error_messages={"required": _("Please choose an answer.")},
    )  # fmt: skip
    confidence = forms.TypedChoiceField(
        coerce=int, widget=forms.RadioSelect, label=_("How sure are you?"),
        error_messages={"required": _("Please say how sure you are.")},
    )  # fmt: skip

    def __init__(self, *args: Any, page: TrialPage, **kwargs: Any) -> None:
        super().__init__(*args, item_pk=page.item_pk, **kwargs)
        if page.learning:
            del self.fields["answer"], self.fields["confidence"]
            return
        self.fields["answer"].choices = page.answer_choices()
        self.fields["confidence"].choices = [(level, confidence_label(level)) for level in CONFIDENCE_LEVELS]

    def answer_and_confidence(self) -> tuple[str, int | None]:
        """What is stored: the answer and confidence, or an empty answer for a learning trial."""
        return self.cleaned_data.get("answer", ""), self.cleaned_data.get("confidence")
