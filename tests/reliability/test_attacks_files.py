"""Attacks through files (issue 15): malicious bundles, forged and bomb-laden backups, formula-bearing ids,
a report that cannot be built. Each asserts one clear refusal and that database and files are unchanged."""
from __future__ import annotations

import hashlib
import io
import json
import struct
import subprocess
import tarfile
import zlib
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from study_helpers import researcher_client, take_study

from analysis.io import load_export
from analysis.report import ReportOptions, build_report
from studyapp.models import Bundle, Participant, Study
from studyapp.operations.export import FORMULA_STARTS, spreadsheet_safe

pytestmark = pytest.mark.django_db


def _manifest(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text())


def _write_manifest(bundle: Path, manifest: dict) -> None:
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def _import(bundle: Path, slug: str = "attack") -> None:
    call_command("import_stimuli", str(bundle), "--study", slug, stdout=io.StringIO(), verbosity=0)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` grey pixels but holds almost no data (a bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b"")


def _nothing_imported(media_root: Path) -> bool:
    return not Study.objects.exists() and not Bundle.objects.exists() and not list(Path(media_root).rglob("*.*"))


@pytest.mark.parametrize("edit, message", [
    (lambda m: m["pairs"][3].update(image_id="cat\u0000.jpg"), r"pairs\[3\]\.image_id contains a NUL character"),
    (lambda m: m["datasets"][0].update(title="MNIST\u0000"), r"datasets\[0\]\.title contains a NUL character"),
    (lambda m: m["pairs"][0].update(note={"k\u0000": 1}), r"pairs\[0\]\.note \(a key\) contains a NUL character"),
    (lambda m: m["pairs"][5].update(pair_id="p" * 201), r"pairs\[5\]\.pair_id is 201 characters long; at most 200"),
    (lambda m: m["datasets"][1].update(task="t" * 301), r"datasets\[1\]\.task is 301 characters long; at most 300"),
    (lambda m: m["pairs"][1].update(image_id="\rimg"), r"pairs\[1\]\.image_id '\\rimg' contains a control character"),
    (lambda m: m["pairs"][2].update(pair_id="\t=1+1"), r"pairs\[2\]\.pair_id '\\t=1\+1' contains a control character"),
])  # fmt: skip
def test_nul_and_over_long_manifest_strings_are_one_clear_error(bundle_dir, media_root, edit, message):
    manifest = _manifest(bundle_dir)
    edit(manifest)
    _write_manifest(bundle_dir, manifest)
    with pytest.raises(CommandError, match=message):
        _import(bundle_dir)
    assert _nothing_imported(media_root)


@pytest.mark.parametrize("size, message", [
    ((13_500, 13_500), "far too many pixels"),  # 182 MP: Pillow's own bomb limit
    ((10_000, 10_000), r"10000x10000 pixels; at most 4096 a side and 16,000,000 pixels"),
    ((4_096, 4_000), r"4096x4000 pixels; at most 4096 a side and 16,000,000 pixels"),  # 16.4 MP
    ((5_000, 100), "5000x100 pixels"),
])  # fmt: skip
def test_over_large_images_are_refused_from_their_header(bundle_dir, media_root, size, message):
    victim = bundle_dir / _manifest(bundle_dir)["pairs"][2]["stimuli"][0]["file"]
    victim.write_bytes(_png_header_only(*size))  # 1 KB on disk; decoding it would not even succeed
    with pytest.raises(CommandError, match=rf"{victim}: the image (has|is) {message}"):
        _import(bundle_dir)
    assert _nothing_imported(media_root)


def test_an_over_large_manifest_is_refused_before_it_is_read(bundle_dir, media_root, settings):
    settings.STUDY_IMPORT_MAX_MANIFEST_BYTES = 4096
    size = (bundle_dir / "manifest.json").stat().st_size
    assert size > 4096
    with pytest.raises(CommandError, match=rf"the manifest is {size:,} bytes; at most 4,096 are allowed"):
        _import(bundle_dir)
    assert _nothing_imported(media_root)


def _backup(tmp_path: Path) -> Path:
    path = tmp_path / "study.tar"
    call_command("backup_study_data", "--out", str(path), stdout=io.StringIO())
    return path


def _rewrite(source: Path, target: Path, change) -> None:
    """Copy a backup member by member; ``change(name, data)`` returns new bytes, or None to drop the member."""
    with tarfile.open(source) as old, tarfile.open(target, "w") as new:
        for member in old.getmembers():
            data = change(member.name, old.extractfile(member).read())
            if data is not None:
                member.size = len(data)
                new.addfile(member, io.BytesIO(data))


def _emptied(media_root: Path) -> None:
    Participant.objects.all().delete()
    Study.objects.all().delete()
    for path in Path(media_root).rglob("*.*"):
        path.unlink()


def _with_added_superuser(name: str, data: bytes, header_rows: bool) -> bytes:
    if name == "data.json":
        rows = json.loads(data)
        rows.insert(0, {"model": "auth.user", "fields": {"username": "mallory", "password": "", "is_superuser": True,
                        "is_staff": True, "is_active": True, "groups": [], "user_permissions": []}})  # fmt: skip
        return json.dumps(rows).encode()
    return data


def test_a_forged_backup_with_recomputed_checksums_is_refused(study, tmp_path, media_root):
    take_study(Client(), study)
    backup = _backup(tmp_path)
    _emptied(media_root)
    forged = tmp_path / "forged.tar"
    data = _with_added_superuser("data.json", tarfile.open(backup).extractfile("data.json").read(), True)

    def forge(name: str, content: bytes) -> bytes:
        if name == "data.json":
            return data
        if name == "backup.json":  # the attacker recomputes the SHA-256, the size and even the row count
            header = json.loads(content)
            header["sha256"]["data.json"] = hashlib.sha256(data).hexdigest()
            header["bytes"]["data.json"] = len(data)
            header["rows"]["auth.user"] += 1
            return json.dumps(header).encode()
        return content

    _rewrite(backup, forged, forge)
    with pytest.raises(CommandError, match="forged.tar: the backup's authentication tag does not match"):
        call_command("restore_study_data", str(forged))
    unsigned = tmp_path / "unsigned.tar"
    _rewrite(forged, unsigned, lambda name, content: None if name == "backup.sig" else content)
    with pytest.raises(CommandError, match="unsigned.tar: the backup is not signed .* --trust-unsigned"):
        call_command("restore_study_data", str(unsigned))
    rows_off = tmp_path / "rows-off.tar"  # trusted by mistake, but the header's counts were not forged
    _rewrite(backup, rows_off, lambda name, content: data if name == "data.json" else (
        content.replace(hashlib.sha256(tarfile.open(backup).extractfile("data.json").read()).hexdigest().encode(),
                        hashlib.sha256(data).hexdigest().encode()) if name == "backup.json" else content))  # fmt: skip
    with pytest.raises(CommandError, match=r"rows-off.tar: (data.json holds rows|member 'data.json' is)"):
        call_command("restore_study_data", str(rows_off), "--trust-unsigned")
    assert not User.objects.filter(username="mallory").exists() and not Study.objects.exists()
    assert not list(Path(media_root).rglob("*.*"))
    call_command("restore_study_data", str(backup), stdout=io.StringIO())  # the genuine one restores
    assert Study.objects.filter(slug=study.slug).exists()


def _sparse_member(tmp_path: Path, name: str, size: int) -> Path:
    """A tar holding one sparse member of ``size`` bytes (a few KB on disk), made with GNU tar."""
    folder = tmp_path / "sparse"
    (folder / Path(name).parent).mkdir(parents=True, exist_ok=True)
    with (folder / name).open("wb") as handle:
        handle.truncate(size)
    out = tmp_path / "sparse.tar"
    subprocess.run(["tar", "--sparse", "--format=gnu", "-cf", str(out), "-C", str(folder), name], check=True)
    return out


def test_restore_never_reads_an_unlisted_or_over_large_member(study, tmp_path, media_root):
    take_study(Client(), study)
    backup = _backup(tmp_path)
    _emptied(media_root)
    bomb_name = "media/stimuli/" + "b" * 32 + ".png"
    bomb_tar = _sparse_member(tmp_path, bomb_name, 3 * 1024**3)
    assert bomb_tar.stat().st_size < 1024 * 1024
    with tarfile.open(bomb_tar) as source:
        bomb = source.getmember(bomb_name)
    assert bomb.issparse() and bomb.size == 3 * 1024**3
    # Appended to a genuine backup, unlisted: restore ignores it without reading a byte.
    with_bomb = tmp_path / "with-bomb.tar"
    with tarfile.open(backup) as old, tarfile.open(with_bomb, "w", format=tarfile.GNU_FORMAT) as new:
        for member in old.getmembers():
            new.addfile(member, old.extractfile(member))
        with tarfile.open(bomb_tar) as source:
            new.addfile(bomb, source.extractfile(bomb))
    call_command("restore_study_data", str(with_bomb), stdout=io.StringIO())
    assert not (Path(media_root) / "stimuli" / ("b" * 32 + ".png")).exists()
    _emptied(media_root)
    # Listed by a forged header (restored by mistake with --trust-unsigned): refused before reading.
    listed = tmp_path / "listed.tar"
    with tarfile.open(with_bomb) as old, tarfile.open(listed, "w", format=tarfile.GNU_FORMAT) as new:
        for member in old.getmembers():
            source = old.extractfile(member)
            if member.name == "backup.json":
                header = json.loads(source.read())
                header["sha256"][bomb_name] = "0" * 64
                data = json.dumps(header).encode()
                member.size = len(data)
                source = io.BytesIO(data)
            new.addfile(member, source)
    with pytest.raises(CommandError, match=rf"listed.tar: member '{bomb_name}' is not a plain file"):
        call_command("restore_study_data", str(listed), "--trust-unsigned")
    assert not Study.objects.exists() and not list(Path(media_root).rglob("*.*"))


def test_formula_ids_from_a_bundle_reach_the_export_as_text_and_analysis_reads_them(bundle_dir, media_root, tmp_path):
    manifest = _manifest(bundle_dir)
    evil = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)"]
    for pair, value in zip(manifest["pairs"], evil * len(manifest["pairs"]), strict=False):
        pair["image_id"] = value + pair["image_id"]
        pair["pair_id"] = value + pair["pair_id"]
    _write_manifest(bundle_dir, manifest)
    _import(bundle_dir)
    study = Study.objects.get(slug="attack")
    Study.objects.filter(pk=study.pk).update(status=Study.Status.OPEN, questions_per_cell=2, attention_checks=0)
    take_study(Client(), study)
    take_study(Client(), study, choices="BAE")
    out = tmp_path / "export"
    call_command("export_responses", "--study", "attack", "--out", str(out), stdout=io.StringIO())
    export = load_export(out / "answers.csv", out / "participants.csv")
    answers = export.answers
    for column in ("image_id", "pair_id"):
        assert not answers[column].str.startswith(FORMULA_STARTS).any()
        stored = {spreadsheet_safe(v) for v in study.bundle.pairs.values_list(column, flat=True)}
        assert set(answers[column]) <= stored  # one id per stored id: still tells pairs and images apart
    assert answers["image_id"].str.startswith("'").any()
    assert answers["pair_id"].nunique() == answers[["pair_id"]].drop_duplicates().shape[0]
    build_report(out / "answers.csv", out / "participants.csv", tmp_path / "report", ReportOptions())
    assert (tmp_path / "report" / "report.html").is_file()


def test_the_report_button_shows_a_message_when_the_report_cannot_be_built(study, monkeypatch):
    take_study(Client(), study)  # one participant: the analysis once crashed on this
    client = researcher_client("ada", study)
    response = client.post(reverse("studyapp:report", args=[study.slug]))
    assert response.status_code in (200, 302)

    def broken(*args, **kwargs):
        raise ValueError("'yerr' must not contain negative values")

    monkeypatch.setattr("studyapp.console.views.dashboard.study_report_html", broken)
    response = client.post(reverse("studyapp:report", args=[study.slug]), follow=True)
    assert response.status_code == 200 and "No report: the analysis failed" in response.content.decode()
