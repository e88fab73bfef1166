"""Blinding audit: crawl everything a participant can reach in a whole study — pages, error pages,
headers, cookies, URLs, scripts, stylesheets, image bytes and metadata — from a bundle whose source
files carry method names in their names and metadata; nothing may name a method or a pair's metadata,
and the two sides of a question must look alike except for their pixels."""
from __future__ import annotations

import io
import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.urls import reverse
from PIL import Image, PngImagePlugin

from studyapp.models import Study
from studyapp.operations.bundle import BundleError, import_bundle, validate_bundle
from studyapp.participation.blinding import find_leaks, forbidden_terms
from studyapp.simulated.participants import parse_page

pytestmark = pytest.mark.django_db
LINK = re.compile(r'(?:src|href|action)="(/[^"]*)"')


@pytest.fixture
def leaky_study(bundle_dir: Path, media_root: Path) -> Study:
    """The synthetic bundle, its files tagged with PNG text chunks and EXIF naming their method and pair.

    File names that name a method are refused by the bundle contract itself (see the test below).
    """
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    for pair in manifest["pairs"]:
        for stimulus in pair["stimuli"]:
            source = bundle_dir / stimulus["file"]
            target = stimulus["file"].replace(".png", ".tagged.png")  # written beside, then moved onto the name
            info = PngImagePlugin.PngInfo()
            info.add_text("method", stimulus["method"])
            info.add_text("Comment", f"{pair['question_type']} {pair['image_id']}")
            with Image.open(source) as image:
                exif = Image.Exif()
                exif[0x010E] = f"explanation by {stimulus['method']}"  # ImageDescription
                image.save(bundle_dir / target, "PNG", pnginfo=info, exif=exif)
            (bundle_dir / target).replace(source)
    result = import_bundle(validate_bundle(bundle_dir), "audit", title="Which explanation is more reasonable?")
    # The crawler answers every check "B": two failures must not screen it out before the end.
    Study.objects.filter(pk=result.study.pk).update(status=Study.Status.OPEN, questions_per_cell=2,
                                                    max_failed_checks=2)
    return Study.objects.get(pk=result.study.pk)


@pytest.mark.django_db
def test_a_bundle_whose_file_names_name_a_method_is_refused(bundle_dir: Path) -> None:
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    stimulus = manifest["pairs"][0]["stimuli"][0]
    target = f"images/{stimulus['method']}__{manifest['pairs'][0]['pair_id']}.png"
    (bundle_dir / stimulus["file"]).rename(bundle_dir / target)
    stimulus["file"] = target
    (bundle_dir / "manifest.json").write_text(json.dumps(manifest))
    root = stimulus["method"].split("_")[0]  # bla_t -> bla, cam -> cam: the shortest word found is named
    with pytest.raises(BundleError, match=f"{re.escape(target)}: file name reveals the method word '{root}'"):
        validate_bundle(bundle_dir)
    assert not Study.objects.exists()


class Crawler:
    """A participant's browser that fetches every linked asset once and keeps all it was sent."""

    def __init__(self) -> None:
        self.client = Client(REMOTE_ADDR="192.0.2.10")
        self.texts: list[str] = []
        self.images: dict[str, tuple[bytes, dict[str, str]]] = {}
        self.fetched: set[str] = set()

    def request(self, method: str, url: str, data: dict[str, str] | None = None):
        response = getattr(self.client, method)(url, data or {})
        self.texts += [f"{method} {url} -> {response.status_code}"]
        self.texts += [f"{k}: {v}" for k, v in response.headers.items()]
        self.texts += [f"cookie {c.key}={c.value}" for c in response.cookies.values()]
        body = b"".join(response.streaming_content) if response.streaming else response.content
        if response.get("Content-Type", "").startswith("image/") and "svg" not in response["Content-Type"]:
            self.images[url] = (body, dict(response.headers))
            self.texts.append(body.decode("latin-1"))  # raw bytes: chunks, comments, trailing data
        else:
            text = body.decode()
            self.texts.append(text)
            for link in LINK.findall(text):
                if link not in self.fetched and not link.startswith("/p/") and not link.startswith("/s/"):
                    self.fetched.add(link)
                    self.request("get", link)
        return response


def _take_study(browser: Crawler, study: Study) -> list[tuple[str, str]]:
    """Go through the study by filling in whatever form each page has; return each question's (A, B) image URLs."""
    sides = []
    url = study.get_absolute_url() + "?PROLIFIC_PID=audit-1"
    while "thank-you" not in url:
        page = browser.request("get", url)
        if page.status_code == 302:
            url = page["Location"]
            continue
        forms, images = parse_page(page.content.decode())
        form = forms[0]
        data = dict(form.fields) | {name: "on" for name in form.checkboxes}
        data |= {name: values[0] for name, values in form.radios.items()} | {name: "30" for name in form.numbers}
        if any(name == "choice" for name, _ in form.buttons):
            sides.append((images[-2], images[-1]))
            browser.request("post", url, {"choice": "equal", "shown": data["shown"]})  # bad answers shown too
            browser.request("post", url, {"shown": "forged"})
            data["choice"] = "B"
        url = browser.request("post", url, data)["Location"]
    browser.request("get", url)
    return sides


def test_nothing_a_participant_can_reach_names_a_method_or_pair_metadata(leaky_study, settings):
    browser = Crawler()
    sides = _take_study(browser, leaky_study)
    # Error and refusal pages a participant can run into.
    browser.request("get", reverse("studyapp:resume", args=["x" * 43]))
    browser.request("get", "/img/" + "y" * 20 + ".png")
    browser.client.cookies.clear()  # a newcomer from the same network
    settings.STUDY_ENROL_LIMIT = 0
    assert browser.request("post", leaky_study.get_absolute_url(), {"agree": "on"}).status_code == 429
    Study.objects.filter(pk=leaky_study.pk).update(status=Study.Status.CLOSED)
    assert "has ended" in browser.request("get", leaky_study.get_absolute_url()).content.decode()

    # 12 questions and a new study's 2 attention checks, each an image and 2 explanations (a check's
    # image may be one a question showed too).
    explanations = {url for side in sides for url in side}
    assert len(sides) == 14 and len(explanations) == 28 and 40 <= len(browser.images) <= 42
    seen = "\n".join(browser.texts)
    assert "System A" in seen and "Many people have just started" in seen
    terms = forbidden_terms(leaky_study)
    assert {"bla_t", "cam", "l2x_f", "random", "bla_t_vs_cam", "mnist38-q0-0", "mnist38-img0"} <= terms
    assert find_leaks(seen, terms) == []
    for url, (data, _) in browser.images.items():
        with Image.open(io.BytesIO(data)) as image:
            assert set(image.info) <= {"transparency"} and not image.getexif(), (url, image.info)
    for a, b in sides:
        (data_a, headers_a), (data_b, headers_b) = browser.images[a], browser.images[b]
        with Image.open(io.BytesIO(data_a)) as ia, Image.open(io.BytesIO(data_b)) as ib:
            assert (ia.format, ia.mode, ia.size) == (ib.format, ib.mode, ib.size)
        same = lambda h: {k: v for k, v in h.items() if k != "Content-Length"}  # noqa: E731
        assert same(headers_a) == same(headers_b)
        assert len(urlsplit(a).path) == len(urlsplit(b).path)
