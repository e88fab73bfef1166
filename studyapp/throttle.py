"""Per-client rate limit on starting a study, shared by all server processes through the database.

A client is its IP network (the address for IPv4, the /64 for IPv6, since one household gets a
whole /64) taken from ``REMOTE_ADDR`` or, behind ``STUDY_PROXY_COUNT`` trusted proxies, from
``X-Forwarded-For``. Only a keyed hash of it is stored, in fixed time windows deleted once they
are over: no IP address ever reaches the database.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone

from .models import EnrolmentThrottle


@dataclass(frozen=True)
class Verdict:
    """Whether one more participant may start now, and when to try again if not."""

    allowed: bool
    retry_after_s: int


def client_ip(request: HttpRequest) -> str:
    """The client's address: ``REMOTE_ADDR``, or the entry the last trusted proxy added to X-Forwarded-For."""
    proxies = int(getattr(settings, "STUDY_PROXY_COUNT", 0))
    if proxies > 0:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
        if len(hops) >= proxies:
            return hops[-proxies]
    return request.META.get("REMOTE_ADDR", "")


def client_key(request: HttpRequest) -> str:
    """A keyed hash of the client's network: the same client gives the same key, the key gives no address."""
    try:
        address = ipaddress.ip_address(client_ip(request))
        network = str(ipaddress.ip_network(f"{address}/{64 if address.version == 6 else 32}", strict=False))
    except ValueError:
        network = "unknown"
    return hmac.new(settings.SECRET_KEY.encode(), f"enrol:{network}".encode(), hashlib.sha256).hexdigest()


def _window_start(now: datetime, window_s: int) -> datetime:
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % window_s, tz=now.tzinfo)


def check_enrolment(request: HttpRequest) -> Verdict:
    """Count one start by this client in the current window; refuse once ``STUDY_ENROL_LIMIT`` is passed."""
    limit = int(settings.STUDY_ENROL_LIMIT)
    window_s = int(settings.STUDY_ENROL_WINDOW_S)
    now = timezone.now()
    start = _window_start(now, window_s)
    key = client_key(request)
    rows = EnrolmentThrottle.objects.filter(client=key, window_start=start)
    if not rows.update(count=F("count") + 1):
        try:
            with transaction.atomic():
                EnrolmentThrottle.objects.create(client=key, window_start=start, count=1)
            EnrolmentThrottle.objects.filter(window_start__lt=start).delete()
        except IntegrityError:  # another process created this window's row first
            rows.update(count=F("count") + 1)
    count = rows.values_list("count", flat=True).first() or 0
    retry = int((start + timedelta(seconds=window_s) - now).total_seconds()) + 1
    return Verdict(allowed=count <= limit, retry_after_s=retry)
