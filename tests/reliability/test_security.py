"""Security: staff-only research pages, CSRF on every form, unguessable tokens, rate-limited starts,
security headers with a Content-Security-Policy, no IP address stored, production settings deploy-clean."""
from __future__ import annotations

import base64
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.urls import URLPattern, get_resolver, reverse
from study_helpers import (
    DEMOGRAPHICS,
    answer_current,
    form_value,
    researcher_client,
    start,
    take_study,
)

from studyapp.models import Answer, EnrolmentThrottle, Participant, Study
from studyapp.simulated.participants import simulation_marker

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def _research_urls(study: Study, participant: Participant) -> list[str]:
    """Every researcher URL of the study app, filled in for this study and participant, plus the admin."""
    urls = [reverse("admin:index"), reverse("admin:studyapp_participant_changelist")]
    for pattern in get_resolver().url_patterns:
        for inner in getattr(pattern, "url_patterns", []):
            if isinstance(inner, URLPattern) and str(inner.pattern).startswith("research/"):
                names = inner.pattern.regex.groupindex
                values = {"slug": study.slug, "public_id": participant.public_id, "position": 1}
                urls.append(reverse(f"studyapp:{inner.name}", kwargs={k: values[k] for k in names}))
    return urls


def test_research_pages_need_a_staff_login(study):
    participant = take_study(Client(), study)
    urls = _research_urls(study, participant)
    assert len(urls) >= 8
    visitor, member = Client(), Client()
    member.force_login(User.objects.create_user("volunteer", password="x" * 12))
    for client in (visitor, member):
        for url in urls:
            for method in ("get", "post"):
                response = getattr(client, method)(url)
                assert response.status_code == 302 and "/admin/login/" in response["Location"], (method, url)
    assert Participant.objects.get(pk=participant.pk).excluded is False  # the POSTs did nothing
    assert researcher_client("researcher", study).get(reverse("studyapp:dashboard", args=[study.slug])).status_code == 200


def test_every_form_needs_its_csrf_token(study):
    browser = Client(enforce_csrf_checks=True)
    page = browser.get(study.get_absolute_url())
    assert 'name="csrfmiddlewaretoken"' in page.content.decode()
    assert browser.post(study.get_absolute_url(), {"agree": "on"}).status_code == 403
    assert not Participant.objects.exists()
    token = form_value(page.content.decode(), "csrfmiddlewaretoken")
    participant = Participant.objects.get(
        token=browser.post(study.get_absolute_url(), {"agree": "on", "csrfmiddlewaretoken": token})["Location"].split("/")[2]
    )
    steps = [("demographics", DEMOGRAPHICS), ("instructions", {})]
    for name, data in steps:
        url = reverse(f"studyapp:{name}", args=[participant.token])
        assert 'name="csrfmiddlewaretoken"' in browser.get(url).content.decode()
        assert browser.post(url, data).status_code == 403
        assert browser.post(url, {**data, "csrfmiddlewaretoken": token}).status_code == 302
    # The answer form's token is its signed ``shown`` stamp of the very item (from a page only the
    # participant's secret link gives): a cross-site POST cannot have one, with or without Django's token.
    url = reverse("studyapp:question", args=[participant.token, 1])
    browser.get(url)
    other = start(Client(), study, "?PROLIFIC_PID=other")
    Participant.objects.filter(pk=other.pk).update(demographics_at=other.started_at, instructions_at=other.started_at)
    foreign = form_value(Client().get(reverse("studyapp:question", args=[other.token, 1])).content.decode(), "shown")
    for forged in ({"choice": "A"}, {"choice": "A", "shown": foreign}):
        assert browser.post(url, forged).status_code in (400, 403)
    assert not Answer.objects.exists()
    staff = researcher_client("researcher", study)
    staff.handler.enforce_csrf_checks = True
    exclude = reverse("studyapp:exclude", args=[study.slug, participant.public_id])
    assert staff.post(exclude, {"reason": "x"}).status_code == 403
    assert not Participant.objects.get(pk=participant.pk).excluded


def test_participant_tokens_carry_at_least_128_random_bits(study, settings):
    settings.STUDY_ENROL_LIMIT = 1000
    tokens = [start(Client(), study, f"?PROLIFIC_PID=t{i}").token for i in range(100)]
    assert len(set(tokens)) == 100
    for token in tokens:
        assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) * 8 >= 128
    alphabet = set("".join(tokens))
    assert len(alphabet) >= 60  # URL-safe base64, not hex or digits
    participant = Participant.objects.get(token=tokens[0])
    assert Client().get(reverse("studyapp:resume", args=[participant.public_id])).status_code == 404


def _consent(client: Client, study: Study, **extra) -> int:
    return client.post(study.get_absolute_url(), {"agree": "on"}, **extra).status_code


def test_starting_the_study_is_rate_limited_per_client(study, settings):
    settings.STUDY_ENROL_LIMIT = 3
    here = {"REMOTE_ADDR": "203.0.113.7"}
    assert [_consent(Client(), study, **here) for _ in range(3)] == [302, 302, 302]
    refused = Client().post(study.get_absolute_url(), {"agree": "on"}, **here)
    assert refused.status_code == 429 and 0 < int(refused["Retry-After"]) <= settings.STUDY_ENROL_WINDOW_S
    assert "try again in a few minutes" in refused.content.decode()
    assert Participant.objects.count() == 3
    spoofed = {**here, "HTTP_X_FORWARDED_FOR": "192.0.2.1"}  # no trusted proxy: the header is ignored
    assert _consent(Client(), study, **spoofed) == 429
    assert _consent(Client(), study, REMOTE_ADDR="203.0.113.8") == 302  # another client
    same_64 = ["2001:db8:1:2::1", "2001:db8:1:2:ffff::9", "2001:db8:1:2::3", "2001:db8:1:2::4"]
    assert [_consent(Client(), study, REMOTE_ADDR=ip) for ip in same_64] == [302, 302, 302, 429]
    marker = simulation_marker(study.slug)
    bot = Client().post(study.get_absolute_url(), {"agree": "on", "sim": marker}, **here)
    assert bot.status_code == 302  # simulated participants carry the researcher's signed marker
    settings.STUDY_PROXY_COUNT = 1
    behind_proxy = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.4, 203.0.113.7"}
    assert _consent(Client(), study, **behind_proxy) == 429  # the proxy's entry names the limited client
    assert Participant.objects.count() == 3 + 1 + 3 + 1


def test_no_ip_address_is_stored(study, settings):
    ips = {"REMOTE_ADDR": "198.51.100.23", "HTTP_X_FORWARDED_FOR": "203.0.113.99"}
    settings.STUDY_PROXY_COUNT = 1
    client = Client(**ips)
    take_study(client, study)
    assert EnrolmentThrottle.objects.count() == 1
    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    text = dump.getvalue()
    assert '"model": "studyapp.answer"' in text
    for address in ("198.51.100.23", "203.0.113.99", "198.51.100", "203.0.113"):
        assert address not in text


INLINE = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle=|\son[a-z]+=", re.IGNORECASE)


def test_participant_pages_send_security_headers_and_a_csp_they_keep_to(study):
    responses = [Client().get(study.get_absolute_url())]
    client = Client()
    participant = start(client, study)
    for name, data in (("demographics", DEMOGRAPHICS), ("instructions", {})):
        url = reverse(f"studyapp:{name}", args=[participant.token])
        responses.append(client.get(url))
        client.post(url, data)
    responses.append(client.get(reverse("studyapp:question", args=[participant.token, 1])))
    html = responses[-1].content.decode()
    for asset in (re.search(r'<img src="([^"]+)"', html).group(1), re.search(r'src="(/static/[^"]+)"', html).group(1)):
        responses.append(client.get(asset))
    responses.append(client.get(reverse("studyapp:resume", args=["x" * 43])))  # a 404 page
    assert [r.status_code for r in responses] == [200] * 6 + [404]
    for response in responses:
        csp = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
        assert csp["default-src"] == "'none'" and csp["script-src"] == "'self'" and csp["style-src"] == "'self'"
        assert csp["frame-ancestors"] == "'none'" and csp["base-uri"] == "'none'"
        assert response["X-Content-Type-Options"] == "nosniff" and "camera=()" in response["Permissions-Policy"]
        assert response["Cross-Origin-Resource-Policy"] == "same-origin"
        if response["Content-Type"].startswith("text/html"):
            assert response["X-Frame-Options"] == "DENY" and response["Referrer-Policy"] == "same-origin"
            assert response["Cross-Origin-Opener-Policy"] == "same-origin"
            inline = INLINE.search(response.content.decode())
            assert inline is None, inline.group(0)
    for step in range(participant.sequence_length):
        answer_current(client, participant, "A")
    done = client.get(reverse("studyapp:done", args=[participant.token]))
    assert done.status_code == 200 and "Content-Security-Policy" in done


def test_production_settings_are_deploy_clean_and_send_strict_transport_security(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS")}
    env.update(DJANGO_SETTINGS_MODULE="config.settings_production", SECRET_KEY="s" * 20 + "9#Kq!x2@Lm4$Pz7&Rt1*Wv5" * 3,
               ALLOWED_HOSTS="study.example.org", DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3")  # fmt: skip
    code = (
        "from django.core.management import call_command; from django.test import Client;"
        "call_command('check', deploy=True, fail_level='WARNING');"
        "r = Client().get('/nowhere/', secure=True, HTTP_HOST='study.example.org');"
        "print(r.status_code, r['Strict-Transport-Security'], 'Content-Security-Policy' in r);"
        "print(Client().get('/nowhere/', HTTP_HOST='study.example.org').status_code)"
    )
    result = subprocess.run([sys.executable, "manage.py", "shell", "-v0", "-c", code], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "System check identified no issues" in result.stdout + result.stderr
    assert result.stdout.splitlines()[-2:] == [
        "404 max-age=31536000; includeSubDomains; preload True", "301",  # plain HTTP is sent to HTTPS
    ]
