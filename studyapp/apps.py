"""App configuration of the BLA user-study app."""
from django.apps import AppConfig


class StudyappConfig(AppConfig):
    """The blinded A/B study that volunteers take, and the researcher's side of it."""

    name = "studyapp"
    verbose_name = "BLA user study"
    default_auto_field = "django.db.models.BigAutoField"
