"""URLs of the study app. Participant URLs carry only the study slug, the participant token and positions."""
from django.urls import path, re_path, register_converter

from studyapp.console import study_health
from studyapp.console.views import dashboard, preview, research
from studyapp.participation import views as participant


class TokenConverter:
    """A participant token: URL-safe base64, at most 64 characters (nothing else reaches the database)."""

    regex = "[A-Za-z0-9_-]{1,64}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class PublicIdConverter(TokenConverter):
    """A participant's public id as exports show it: letters and digits, at most 16."""

    regex = "[A-Za-z0-9]{1,16}"


register_converter(TokenConverter, "token")
register_converter(PublicIdConverter, "public_id")
app_name = "studyapp"

urlpatterns = [
    path("s/<slug:slug>/", participant.study_page, name="study"),
    path("s/<slug:slug>/no-consent/", participant.no_consent, name="no_consent"),
    path("p/<token:token>/", participant.resume, name="resume"),
    path("p/<token:token>/about-you/", participant.demographics, name="demographics"),
    path("p/<token:token>/instructions/", participant.instructions, name="instructions"),
    path("p/<token:token>/q/<int:position>/", participant.question, name="question"),
    path("p/<token:token>/thank-you/", participant.done, name="done"),
    path("p/<token:token>/screened-out/", participant.screened_out, name="screened_out"),
    re_path(r"^img/(?P<name>[A-Za-z0-9_-]{16,64}\.(?:png|jpg))$", participant.stimulus_image, name="image"),
    path("research/", dashboard.index, name="dashboard_index"),
    path("research/new/", research.new_study, name="new_study"),
    path("research/<slug:slug>/", dashboard.study_dashboard, name="dashboard"),
    path("research/<slug:slug>/export.zip", dashboard.download_export, name="export"),
    path("research/<slug:slug>/report/", dashboard.analysis_report, name="report"),
    path("research/<slug:slug>/plan/", study_health.planner_page, name="planner"),
    path("research/<slug:slug>/texts/", research.study_texts, name="texts"),
    path("research/<slug:slug>/status/", research.set_status, name="status"),
    path("research/<slug:slug>/preview/", preview.consent, name="preview"),
    path("research/<slug:slug>/preview/about-you/", preview.demographics, name="preview_demographics"),
    path("research/<slug:slug>/preview/instructions/", preview.instructions, name="preview_instructions"),
    path("research/<slug:slug>/preview/q/<int:position>/", preview.question, name="preview_question"),
    path("research/<slug:slug>/preview/thank-you/", preview.done, name="preview_done"),
    path(
        "research/<slug:slug>/participants/<public_id:public_id>/exclude/",
        dashboard.set_exclusion, {"exclude": True}, name="exclude",
    ),  # fmt: skip
    path(
        "research/<slug:slug>/participants/<public_id:public_id>/include/",
        dashboard.set_exclusion, {"exclude": False}, name="include",
    ),  # fmt: skip
    path("research/<slug:slug>/participants/<public_id:public_id>/delete/", dashboard.delete_participant, name="delete"),
]
