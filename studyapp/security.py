"""Security headers for every response (a strict Content-Security-Policy on the study's own pages),
and the refusal of file uploads everywhere but the bundle upload (views/research.py swaps in
upload.BoundedUpload for that one view).

Participant pages load only their own script, stylesheet and images, so the policy allows nothing
else: no inline script or style, no frames, no foreign hosts. The admin's pages, which Django
renders with some inline code, get the other headers but not this policy.
"""
from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest, HttpResponse

from studyapp.conf import study_settings

CONTENT_SECURITY_POLICY = {
    "default-src": "'none'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self'",
    "connect-src": "'self'",
    "base-uri": "'none'",
    # https: lets the last answer redirect on to a study's completion URL (e.g. Prolific).
    "form-action": "'self' https:",
    "frame-ancestors": "'none'",
}
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()"


def content_security_policy() -> str:
    """The policy header value (``STUDY_CSP`` in settings replaces single directives)."""
    directives = {**CONTENT_SECURITY_POLICY, **study_settings().study_csp}
    return "; ".join(f"{name} {value}" for name, value in directives.items() if value)


class SecurityHeadersMiddleware:
    """Adds Content-Security-Policy (outside the admin), Permissions-Policy and Cross-Origin-Resource-Policy."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.policy = content_security_policy()
        self.admin_prefix = "/admin/"

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith(self.admin_prefix):
            response.headers.setdefault("Content-Security-Policy", self.policy)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        return response


class NoFileUploads(FileUploadHandler):
    """Refuses a request at its first file part (400), before any of the file is read or spooled to disk."""

    def new_file(self, *args: object, **kwargs: object) -> None:
        raise RequestDataTooBig("This site takes no file uploads.")

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        raise RequestDataTooBig("This site takes no file uploads.")

    def file_complete(self, file_size: int) -> None:
        return None
