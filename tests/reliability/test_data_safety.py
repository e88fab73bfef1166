"""Data safety: the export's manifest matches files and database; backup and restore lose nothing."""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from study_helpers import answer_current, take_study

from studyapp.models import Answer, Participant, SequenceItem, Study
from studyapp.operations.export import verify_export
from studyapp.participation.flow import enrol

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
POSTGRES = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")


def _export(study: Study, out: Path) -> dict[str, bytes]:
    call_command("export_responses", "--study", study.slug, "--out", str(out), stdout=io.StringIO())
    return {p.name: p.read_bytes() for p in out.iterdir()}


def _with_answers(study: Study) -> Participant:
    """Two finished participants and one half-way; return the half-way one."""
    take_study(Client(), study, choices="ABE")
    take_study(Client(), study, choices="EEB", query="?PROLIFIC_PID=ext-2")
    client = Client()
    take = enrol(study, external_id="half")
    Participant.objects.filter(pk=take.pk).update(demographics_at=take.started_at, instructions_at=take.started_at)
    for choice in "AB":
        answer_current(client, take, choice)
    return take


def test_export_manifest_records_sha256_and_row_counts_that_match_the_database(study, tmp_path):
    _with_answers(study)
    files = _export(study, tmp_path / "export")
    manifest = json.loads(files["export_manifest.json"])
    for name in ("answers.csv", "participants.csv"):
        assert manifest["files"][name]["sha256"] == hashlib.sha256(files[name]).hexdigest()
        assert manifest["files"][name]["rows"] == files[name].decode().count("\n") - 1
    assert manifest["files"]["answers.csv"]["rows"] == Answer.objects.filter(item__participant__study=study).count() == 26
    assert manifest["files"]["participants.csv"]["rows"] == Participant.objects.filter(study=study).count() == 3
    assert manifest["database_rows"] == {"answers": 26, "attention_checks": 0, "participants": 3}
    assert verify_export(tmp_path / "export") == []


def test_verify_export_finds_a_changed_or_missing_file(study, tmp_path):
    _with_answers(study)
    out = tmp_path / "export"
    _export(study, out)
    answers = out / "answers.csv"
    answers.write_text(answers.read_text().replace(",A,", ",B,", 1))
    (out / "participants.csv").unlink()
    assert verify_export(out) == [
        f"{answers}: SHA-256 differs from the manifest (the file changed after export).",
        f"{out / 'participants.csv'}: missing.",
    ]


def _media_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_backup_and_restore_give_back_the_same_export_and_participants_can_go_on(study, tmp_path, media_root):
    half = _with_answers(study)
    before = _export(study, tmp_path / "before")
    images = _media_files(media_root)
    backup = tmp_path / "backups" / "study.tar"  # a folder that does not exist yet
    out = io.StringIO()
    call_command("backup_study_data", "--out", str(backup), stdout=out)
    assert f"wrote backup {backup}: 1 studies, 3 participants, 26 answers" in out.getvalue()
    Participant.objects.all().delete()
    Study.objects.all().delete()
    for path in media_root.rglob("*.png"):
        path.unlink()

    out = io.StringIO()
    call_command("restore_study_data", str(backup), stdout=out)
    assert "3 participants, 26 answers, 88 images" in out.getvalue()
    restored = Study.objects.get(slug=study.slug)
    after = _export(restored, tmp_path / "after")
    assert after["answers.csv"] == before["answers.csv"] and after["participants.csv"] == before["participants.csv"]
    assert _media_files(media_root) == images
    started = Participant.objects.get(token=half.token).started_at
    assert started == half.started_at  # microseconds survive
    answer_current(Client(), Participant.objects.get(token=half.token), "equal")  # the half-way one goes on
    newcomer = enrol(restored, external_id="after-restore")  # fresh ids after the restored ones
    assert SequenceItem.objects.filter(participant=newcomer).count() == 12


def test_backup_names_a_folder_it_cannot_create_and_writes_nothing(study, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(CommandError, match=r"cannot create folder '.*a-file/sub' \(Not a directory\)\.$"):
        call_command("backup_study_data", "--out", str(blocker / "sub" / "study.tar"))
    assert blocker.read_text() == "not a folder" and not list(tmp_path.rglob("*.tar"))


def test_restore_refuses_a_damaged_backup_and_a_full_database_and_changes_nothing(study, tmp_path, media_root):
    _with_answers(study)
    backup = tmp_path / "study.tar"
    call_command("backup_study_data", "--out", str(backup), stdout=io.StringIO())
    with pytest.raises(CommandError, match=r"the database already holds studies \['pilot'\]; .* --replace"):
        call_command("restore_study_data", str(backup))

    damaged = tmp_path / "damaged.tar"
    with tarfile.open(backup) as source, tarfile.open(damaged, "w") as target:
        members = source.getmembers()
        victim = next(m.name for m in members if m.name.startswith("media/"))
        for member in members:
            data = source.extractfile(member).read()
            if member.name == victim:
                data = data[:-1] + bytes([data[-1] ^ 1])  # one bit flipped
            target.addfile(member, io.BytesIO(data))
    Participant.objects.all().delete()
    Study.objects.all().delete()
    images = _media_files(media_root)
    with pytest.raises(CommandError, match=rf"damaged.tar: member '{victim}' does not match its SHA-256"):
        call_command("restore_study_data", str(damaged))
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(backup.read_bytes()[: backup.stat().st_size // 2])
    with pytest.raises(CommandError, match="truncated.tar: "):
        call_command("restore_study_data", str(truncated))
    assert not Study.objects.exists() and _media_files(media_root) == images


def test_restore_replace_puts_back_the_backed_up_state(study, tmp_path):
    _with_answers(study)
    before = _export(study, tmp_path / "before")
    backup = tmp_path / "study.tar"
    call_command("backup_study_data", "--out", str(backup), stdout=io.StringIO())
    take_study(Client(), study, query="?PROLIFIC_PID=later")
    call_command("restore_study_data", str(backup), "--replace", stdout=io.StringIO())
    after = _export(Study.objects.get(slug=study.slug), tmp_path / "after")
    assert after["answers.csv"] == before["answers.csv"]
    assert not Participant.objects.filter(external_id="later").exists()


def _manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=180)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.fixture
def fresh_databases(tmp_path):
    """A new SQLite file and a new PostgreSQL database, as DATABASE_URLs; the PostgreSQL one dropped afterwards."""
    name = f"bla_restore_{os.getpid()}"
    try:
        with psycopg.connect(POSTGRES, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server at {POSTGRES} ({exc})")
    yield {"sqlite": f"sqlite:///{tmp_path}/restored.sqlite3", "postgresql": f"{POSTGRES.rsplit('/', 1)[0]}/{name}"}
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_documented_commands_restore_into_a_fresh_sqlite_and_postgresql_database(study, tmp_path, fresh_databases):
    _with_answers(study)
    source = _export(study, tmp_path / "source")
    backup = tmp_path / "study.tar"
    call_command("backup_study_data", "--out", str(backup), stdout=io.StringIO())
    for vendor, url in fresh_databases.items():
        env = {**os.environ, "DATABASE_URL": url, "MEDIA_ROOT": str(tmp_path / f"media-{vendor}"),
               "SECRET_KEY": settings.SECRET_KEY, "DJANGO_SETTINGS_MODULE": "config.settings"}  # fmt: skip
        _manage(env, "migrate", "--no-input", "--verbosity", "0")
        assert "3 participants, 26 answers, 88 images" in _manage(env, "restore_study_data", str(backup))
        _manage(env, "export_responses", "--study", study.slug, "--out", str(tmp_path / vendor))
        for name in ("answers.csv", "participants.csv"):
            assert (tmp_path / vendor / name).read_bytes() == source[name], (connection.vendor, "→", vendor, name)
        assert verify_export(tmp_path / vendor) == []
        assert len(list((tmp_path / f"media-{vendor}").rglob("*.png"))) == 88
