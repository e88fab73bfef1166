"""App configuration of the BLA user-study app."""
from django.apps import AppConfig
from django.core import checks


class StudyappConfig(AppConfig):
    """The blinded A/B study that volunteers take, and the researcher's side of it."""

    name = "studyapp"
    verbose_name = "BLA user study"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the checks of the app's settings (studyapp.checks)."""
        from studyapp.checks import check_study_settings

        checks.register(check_study_settings)
