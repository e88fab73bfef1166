"""Rate limits shared by all server processes through the database: starting a study, failed logins.

A client is its IP network (the address for IPv4, the /64 for IPv6, since one household gets a
whole /64) taken from ``REMOTE_ADDR`` or, behind ``STUDY_PROXY_COUNT`` trusted proxies, from
``X-Forwarded-For``. Only a keyed hash of it is stored, in fixed time windows deleted once they
are over: no IP address ever reaches the database. Failed logins are counted the same way per
account (a keyed hash of the username) and per client; past the limit the login is refused, even
with the right password, until the window is over or ``manage.py unlock_logins`` clears it.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Model
from django.http import HttpRequest
from django.utils import timezone

from studyapp.conf import study_settings
from studyapp.models import EnrolmentThrottle, LoginFailure


@dataclass(frozen=True)
class Verdict:
    """Whether one more participant may start now, and when to try again if not."""

    allowed: bool
    retry_after_s: int


def client_ip(request: HttpRequest) -> str:
    """The client's address: ``REMOTE_ADDR``, or the entry the last trusted proxy added to X-Forwarded-For."""
    proxies = study_settings().study_proxy_count
    if proxies > 0:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
        if len(hops) >= proxies:
            return hops[-proxies]
    return request.META.get("REMOTE_ADDR", "")


def _keyed(text: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), text.encode(), hashlib.sha256).hexdigest()


def client_key(request: HttpRequest, purpose: str = "enrol") -> str:
    """A keyed hash of the client's network: the same client gives the same key, the key gives no address."""
    try:
        address = ipaddress.ip_address(client_ip(request))
        network = str(ipaddress.ip_network(f"{address}/{64 if address.version == 6 else 32}", strict=False))
    except ValueError:
        network = "unknown"
    return _keyed(f"{purpose}:{network}")


def account_key(username: str) -> str:
    """A keyed hash of a login name (case-insensitive, as people type it)."""
    return _keyed(f"login-account:{username.strip().lower()}")


def _window_start(now: datetime, window_s: int) -> datetime:
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % window_s, tz=now.tzinfo)


def _retry_after(now: datetime, window_s: int) -> int:
    return int((_window_start(now, window_s) + timedelta(seconds=window_s) - now).total_seconds()) + 1


def _count(model: type[Model], key_field: str, key: str, window_s: int, now: datetime) -> int:
    """Add one to ``key``'s counter of the current window (rows of past windows are deleted); return it."""
    start = _window_start(now, window_s)
    rows = model.objects.filter(**{key_field: key, "window_start": start})
    if not rows.update(count=F("count") + 1):
        try:
            with transaction.atomic():
                model.objects.create(**{key_field: key, "window_start": start, "count": 1})
            model.objects.filter(window_start__lt=start).delete()
        except IntegrityError:  # another process created this window's row first
            rows.update(count=F("count") + 1)
    return rows.values_list("count", flat=True).first() or 0


def check_enrolment(request: HttpRequest) -> Verdict:
    """Count one start by this client in the current window; refuse once ``STUDY_ENROL_LIMIT`` is passed."""
    limits, now = study_settings(), timezone.now()
    window_s = limits.study_enrol_window_s
    count = _count(EnrolmentThrottle, "client", client_key(request), window_s, now)
    return Verdict(allowed=count <= limits.study_enrol_limit, retry_after_s=_retry_after(now, window_s))


def _login_keys(request: HttpRequest | None, username: str) -> dict[str, int]:
    """The counters a login attempt falls under, with the failures each may have."""
    limits = study_settings()
    keys = {account_key(username): limits.login_failure_limit}
    if request is not None:
        keys[client_key(request, "login-client")] = limits.login_client_failure_limit
    return keys


def login_lockout(request: HttpRequest | None, username: str) -> Verdict:
    """Whether this account and client may try to log in now (reads the counters, adds nothing)."""
    window_s, now = study_settings().login_lockout_s, timezone.now()
    keys = _login_keys(request, username)
    counts = LoginFailure.objects.filter(key__in=keys, window_start=_window_start(now, window_s))
    locked = any(count >= keys[key] for key, count in counts.values_list("key", "count"))
    return Verdict(allowed=not locked, retry_after_s=_retry_after(now, window_s))


def record_login_failure(request: HttpRequest | None, username: str) -> None:
    """Count one failed login against the account and the client."""
    window_s, now = study_settings().login_lockout_s, timezone.now()
    for key in _login_keys(request, username):
        _count(LoginFailure, "key", key, window_s, now)


def clear_login_failures(username: str | None = None) -> int:
    """Forget the failed logins of one account (after a successful login, or to unlock it), or all; return rows removed."""
    rows = LoginFailure.objects.all() if username is None else LoginFailure.objects.filter(key=account_key(username))
    return rows.delete()[0]
