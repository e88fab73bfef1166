"""Blinding: nothing a participant can reach during a whole study names a method or a pair's metadata."""
from __future__ import annotations

import io
import re

import pytest
from django.test import Client
from django.urls import reverse
from PIL import Image
from study_helpers import DEMOGRAPHICS, form_value

from studyapp.models import Study
from studyapp.participation.blinding import find_leaks, forbidden_terms, study_text_leaks
from studyapp.participation.protocol import INLINE, NEXT_HEADER, PAGE_HEADER

pytestmark = pytest.mark.django_db


class Crawler:
    """A participant's browser that keeps everything it saw: URLs, headers, cookies, pages, assets."""

    def __init__(self) -> None:
        self.client = Client()
        self.seen: list[str] = []
        self.images: list[bytes] = []

    def fetch(self, method: str, url: str, data: dict | None = None, **headers: str):
        response = getattr(self.client, method)(url, data or {}, headers=headers)
        self.seen.append(f"{method.upper()} {url} {response.status_code}")
        self.seen.extend(f"{k}: {v}" for k, v in response.headers.items())
        self.seen.extend(f"cookie {c.key}={c.value}" for c in response.cookies.values())
        if response.streaming:
            body = b"".join(response.streaming_content)
            raster = response["Content-Type"] in ("image/png", "image/jpeg")
            self.images.append(body) if raster else self.seen.append(body.decode())
        else:
            text = response.content.decode()
            self.seen.append(text)
            for asset in re.findall(r'(?:src|href)="(/[^"]+)"', text):
                if asset not in self.seen:
                    self.seen.append(asset)
                    self.fetch("get", asset)
        return response


@pytest.mark.parametrize("inline", [False, True], ids=["plain-forms", "like-study-js"])
def test_full_participant_flow_reveals_no_method_or_pair_metadata(study: Study, inline: bool):
    browser = Crawler()
    url = study.get_absolute_url() + "?PROLIFIC_PID=p1"
    browser.fetch("get", url)
    location = browser.fetch("post", url, {"agree": "on", "external_id": "p1"})["Location"]
    location = browser.fetch("post", location, DEMOGRAPHICS)["Location"]
    browser.fetch("get", location)
    location = browser.fetch("post", location)["Location"]
    page = browser.fetch("get", location).content.decode()
    while "/q/" in location:
        headers = {NEXT_HEADER: INLINE} if inline else {}
        answered = browser.fetch("post", location, {"choice": "B", "shown": form_value(page, "shown")}, **headers)
        if answered.status_code == 200:  # the next question in the answer's response
            location, page = answered[PAGE_HEADER], answered.content.decode()
        else:
            location = answered["Location"]
            page = browser.fetch("get", location).content.decode() if "/q/" in location else ""
    assert "thank-you" in location
    browser.fetch("get", location)
    assert any(line.startswith(f"{PAGE_HEADER}: ") for line in browser.seen) == inline
    seen = "\n".join(browser.seen)
    assert "System A" in seen and len(browser.images) == 36  # 12 questions × (image + 2 explanations)
    terms = forbidden_terms(study)
    assert {"bla_t", "cam", "l2x_f", "random", "bla_t_vs_cam", "mnist38-q0-0", "mnist38-img0"} <= terms
    assert find_leaks(seen, terms) == []
    for data in browser.images:
        with Image.open(io.BytesIO(data)) as image:
            assert set(image.info) <= {"transparency"}, image.info


def test_leak_finder_finds_whole_words_only():
    assert find_leaks("System A (CAM) vs bla_t", {"cam", "bla_t"}) == ["bla_t", "cam"]
    assert find_leaks("became camera xcam-q token-cam_x", {"cam"}) == []


def test_dashboard_warns_when_study_texts_name_a_method(study: Study, admin_client):
    assert study_text_leaks(study) == {}
    Study.objects.filter(pk=study.pk).update(title="Is BLA-T better than Grad-CAM?")
    study.refresh_from_db()
    assert study_text_leaks(study) == {"title": ["bla-t", "grad-cam"]}
    page = admin_client.get(reverse("studyapp:dashboard", args=[study.slug])).content.decode()
    assert "Blinding: the title that participants see mentions bla-t, grad-cam" in page
