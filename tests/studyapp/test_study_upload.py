"""Creating a study from the browser: a bundle .zip is checked like import_stimuli, refused whole or imported whole."""
from __future__ import annotations

import io
import json
import re
import stat
import zipfile
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from studyapp.models import Bundle, Pair, Stimulus, Study

from study_helpers import researcher_client

pytestmark = pytest.mark.django_db


def zip_folder(folder: Path, prefix: str = "") -> io.BytesIO:
    """The bundle folder as a .zip (members under ``prefix``), named like an uploaded file."""
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, prefix + path.relative_to(folder).as_posix())
    data.seek(0)
    data.name = "bundle.zip"
    return data


def zip_members(*members: tuple[zipfile.ZipInfo | str, bytes]) -> io.BytesIO:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as archive:
        for info, content in members:
            archive.writestr(info, content)
    data.seek(0)
    data.name = "bundle.zip"
    return data


def post(client: Client, upload: io.BytesIO, slug: str = "fresh", checks: str = "0"):
    return client.post(reverse("studyapp:new_study"),
                       {"title": "Fresh study", "slug": slug, "attention_checks": checks, "bundle": upload})  # fmt: skip


def nothing_imported(media_root: Path) -> bool:
    return not Study.objects.exists() and not Bundle.objects.exists() and not list(Path(media_root).rglob("*.png"))


def test_upload_creates_a_draft_owned_by_the_uploader(bundle_dir, media_root):
    ada = researcher_client("ada")
    response = post(ada, zip_folder(bundle_dir, prefix="mnist38/"), checks="2")
    assert response.status_code == 302 and response["Location"] == reverse("studyapp:dashboard", args=["fresh"])
    study = Study.objects.get(slug="fresh")
    assert study.status == Study.Status.DRAFT and study.title == "Fresh study" and study.attention_checks == 2
    assert list(study.researchers.values_list("username", flat=True)) == ["ada"]
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    assert Pair.objects.filter(bundle__study=study).count() == len(manifest["pairs"])
    assert Stimulus.objects.filter(pair__bundle__study=study).count() == 2 * len(manifest["pairs"])
    page = ada.get(response["Location"]).content.decode()
    assert "was created as a draft" in page and "Preview as participant" in page
    assert researcher_client("bob").get(response["Location"]).status_code == 403


def test_a_bad_bundle_lists_its_problems_and_imports_nothing(bundle_dir, media_root):
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    manifest["pairs"][0]["predicted_class"] = "no such class"
    manifest["pairs"][1]["stimuli"][0]["file"] = "images/missing.png"
    (bundle_dir / "manifest.json").write_text(json.dumps(manifest))
    response = post(researcher_client("ada"), zip_folder(bundle_dir))
    assert response.status_code == 400
    page = response.content.decode()
    assert "The bundle was not imported" in page
    assert "predicted_class &#x27;no such class&#x27; is not a class" in page
    assert "bla-upload-" not in page and "/tmp" not in page  # paths as inside the zip, no temporary folder
    assert nothing_imported(media_root)


def test_attention_checks_that_outnumber_the_questions_import_nothing(bundle_dir, media_root):
    page = post(researcher_client("ada"), zip_folder(bundle_dir), checks="99").content.decode()
    assert "use at most" in page and nothing_imported(media_root)


@pytest.mark.parametrize("name, attr, problem", [
    ("../escape.txt", 0o100644, "leaves the bundle"),
    ("/etc/passwd", 0o100644, "absolute path"),
    ("link", stat.S_IFLNK | 0o777, "symbolic link"),
])  # fmt: skip
def test_traversal_absolute_paths_and_symlinks_are_refused(bundle_dir, media_root, name, attr, problem):
    upload = zip_folder(bundle_dir)
    with zipfile.ZipFile(upload, "a") as archive:
        info = zipfile.ZipInfo(name)
        info.external_attr = attr << 16
        archive.writestr(info, b"/etc/passwd" if "link" in name else b"x")
    upload.seek(0)
    response = post(researcher_client("ada"), upload)
    assert response.status_code == 400 and problem in response.content.decode()
    assert nothing_imported(media_root) and not (media_root.parent / "escape.txt").exists()


def test_zip_bombs_are_refused_by_size_and_member_count(bundle_dir, media_root, settings):
    settings.STUDY_UPLOAD_MAX_UNPACKED_BYTES = 10 * 1024 * 1024
    bomb = zip_folder_from(zip_members(("manifest.json", b"{}"), ("images/zeros.png", b"\0" * (11 * 1024 * 1024))))
    assert bomb.getbuffer().nbytes < 100 * 1024  # deflate squeezes 11 MB of zeros into a few kB
    response = post(researcher_client("ada"), bomb)
    assert response.status_code == 400 and "STUDY_UPLOAD_MAX_UNPACKED_BYTES" in response.content.decode()
    settings.STUDY_UPLOAD_MAX_MEMBERS = 3
    response = post(researcher_client("bob"), zip_folder(bundle_dir))
    assert response.status_code == 400 and "STUDY_UPLOAD_MAX_MEMBERS" in response.content.decode()
    assert nothing_imported(media_root)


def zip_folder_from(stored: io.BytesIO) -> io.BytesIO:
    """A deflated copy of a zip (writestr stores uncompressed by default)."""
    data = io.BytesIO()
    with zipfile.ZipFile(stored) as source, zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info), compress_type=zipfile.ZIP_DEFLATED)
    data.seek(0)
    data.name = "bomb.zip"
    return data


def test_a_lying_header_is_caught_while_unpacking(media_root, settings):
    settings.STUDY_UPLOAD_MAX_UNPACKED_BYTES = 1000
    upload = zip_members(("manifest.json", b"{}"), ("images/a.png", b"\0" * 5000))
    raw = bytearray(upload.getvalue())
    # Shrink the declared sizes of the big member in the central directory so the header check passes.
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as archive:
        info = archive.getinfo("images/a.png")
    central = raw.rfind(b"PK\x01\x02")
    raw[central + 24:central + 28] = (10).to_bytes(4, "little")
    lying = io.BytesIO(bytes(raw))
    lying.name = "lying.zip"
    response = post(researcher_client("ada"), lying)
    assert response.status_code == 400 and info.file_size == 5000
    assert nothing_imported(media_root)


def test_an_upload_over_the_size_limit_is_refused(bundle_dir, media_root, settings):
    settings.STUDY_UPLOAD_MAX_BYTES = 1024
    response = post(researcher_client("ada"), zip_folder(bundle_dir))
    assert response.status_code == 400 and "STUDY_UPLOAD_MAX_BYTES" in response.content.decode()
    assert nothing_imported(media_root)


def test_not_a_zip_and_no_manifest_are_one_sentence_each(media_root):
    ada = researcher_client("ada")
    junk = io.BytesIO(b"not a zip")
    junk.name = "bundle.zip"
    assert "not a readable zip archive" in post(ada, junk).content.decode()
    assert "holds no manifest.json" in post(ada, zip_members(("notes.txt", b"hi"))).content.decode()
    assert nothing_imported(media_root)


def test_creating_needs_the_add_study_permission_and_a_free_address(study, bundle_dir, django_user_model):
    plain = Client()
    plain.force_login(django_user_model.objects.create_user("staff", password="x" * 12, is_staff=True))
    assert plain.get(reverse("studyapp:new_study")).status_code == 403
    assert post(plain, zip_folder(bundle_dir), slug="other").status_code == 403
    taken = post(researcher_client("ada"), zip_folder(bundle_dir), slug=study.slug)
    assert taken.status_code == 400 and "exists already" in taken.content.decode()
    assert post(researcher_client("bob"), zip_folder(bundle_dir), slug="new").status_code == 400
    assert Study.objects.count() == 1


def test_file_parts_stay_refused_on_every_other_form(study):
    upload = io.BytesIO(b"x" * 1000)
    upload.name = "x.zip"
    response = researcher_client("ada", study).post(reverse("studyapp:texts", args=[study.slug]), {"title": "t", "f": upload})
    assert response.status_code == 400


def test_the_upload_and_the_study_forms_need_their_csrf_token(study, bundle_dir, media_root):
    ada = researcher_client("ada", study)
    ada.handler.enforce_csrf_checks = True
    assert post(ada, zip_folder(bundle_dir)).status_code == 403
    assert not Study.objects.filter(slug="fresh").exists()
    assert ada.post(reverse("studyapp:status", args=[study.slug]), {"status": "closed"}).status_code == 403
    assert ada.post(reverse("studyapp:texts", args=[study.slug]), {"title": "x"}).status_code == 403
    study.refresh_from_db()
    assert study.status == Study.Status.OPEN and study.title == "Pilot study"
    page = ada.get(reverse("studyapp:new_study")).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = ada.post(reverse("studyapp:new_study"), {"title": "Fresh", "slug": "fresh", "attention_checks": "0",
                                                        "bundle": zip_folder(bundle_dir), "csrfmiddlewaretoken": token})  # fmt: skip
    assert response.status_code == 302 and Study.objects.filter(slug="fresh").exists()
