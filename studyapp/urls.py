"""URLs of the study app. Participant URLs carry only the study slug, the participant token and positions."""
from django.urls import path, re_path

from .views import dashboard, participant

app_name = "studyapp"

urlpatterns = [
    path("s/<slug:slug>/", participant.study_page, name="study"),
    path("p/<str:token>/", participant.resume, name="resume"),
    path("p/<str:token>/about-you/", participant.demographics, name="demographics"),
    path("p/<str:token>/instructions/", participant.instructions, name="instructions"),
    path("p/<str:token>/q/<int:position>/", participant.question, name="question"),
    path("p/<str:token>/thank-you/", participant.done, name="done"),
    re_path(r"^img/(?P<name>[A-Za-z0-9_-]{16,64}\.(?:png|jpg))$", participant.stimulus_image, name="image"),
    path("research/", dashboard.index, name="dashboard_index"),
    path("research/<slug:slug>/", dashboard.study_dashboard, name="dashboard"),
    path("research/<slug:slug>/export.zip", dashboard.download_export, name="export"),
    path("research/<slug:slug>/report/", dashboard.analysis_report, name="report"),
    path(
        "research/<slug:slug>/participants/<str:public_id>/exclude/",
        dashboard.set_exclusion, {"exclude": True}, name="exclude",
    ),  # fmt: skip
    path(
        "research/<slug:slug>/participants/<str:public_id>/include/",
        dashboard.set_exclusion, {"exclude": False}, name="include",
    ),  # fmt: skip
    path("research/<slug:slug>/participants/<str:public_id>/delete/", dashboard.delete_participant, name="delete"),
]
