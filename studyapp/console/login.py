"""The researcher login (the admin's login page): refused for a while after too many failed attempts."""
from __future__ import annotations

from typing import Any

from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError

from studyapp.throttle import clear_login_failures, login_lockout, record_login_failure

LOCKED_MESSAGE = (
    "Too many failed logins for this account or from your network. Please try again in %(minutes)d "
    "minutes, or ask an administrator to unlock it (manage.py unlock_logins)."
)


class ThrottledLoginForm(AdminAuthenticationForm):
    """Django's admin login, checked against the per-account and per-client failure counters first."""

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username") or ""
        verdict = login_lockout(self.request, username)
        if not verdict.allowed:
            minutes = max(1, (verdict.retry_after_s + 59) // 60)
            raise ValidationError(LOCKED_MESSAGE, code="locked", params={"minutes": minutes})
        try:
            cleaned = super().clean()
        except ValidationError:
            record_login_failure(self.request, username)
            raise
        clear_login_failures(username)
        return cleaned
