"""Usefulness studies (issue 27), the gaps around the trials: attention-check rows in trials.csv,
backup and restore of the trial tables, the researcher preview of the trials and the dashboard's
per-method summary."""

from __future__ import annotations

import csv
import io
import json
import tarfile
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from study_helpers import researcher_client
from usefulness_helpers import answer_trial, current_url, radio_values, ready, take_trials, usefulness_study

from contracts.usefulness import AGREEMENT, DISTINCTION, FORWARD_SIMULATION
from studyapp.models import Participant, Study, Trial, TrialAnswer, TrialItem, TrialPanel
from studyapp.operations.backup import backup_tag
from studyapp.operations.export import verify_export

pytestmark = pytest.mark.django_db
TASKS = (DISTINCTION, AGREEMENT, FORWARD_SIMULATION)
TRIAL_TABLES = (Trial, TrialPanel, TrialItem, TrialAnswer)


@pytest.fixture(autouse=True)
def media(settings, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _export(study: Study, out: Path) -> dict[str, bytes]:
    call_command("export_responses", "--study", study.slug, "--out", str(out), stdout=io.StringIO())
    return {p.name: p.read_bytes() for p in out.iterdir() if p.suffix == ".csv"}


def _csv_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def _counts() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in (Participant, *TRIAL_TABLES))


def _images(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# --- trials.csv: attention checks --------------------------------------------------------------


@pytest.mark.parametrize("task", TASKS)
def test_every_attention_check_has_a_row_with_its_instructed_answer(task, tmp_path):
    study = usefulness_study(tmp_path, task, checks=2)
    client = Client()
    participant = ready(client, study)
    items = {i.position: i for i in TrialItem.objects.filter(participant=participant).select_related("trial")}
    failed = None
    for position in range(1, participant.sequence_length + 1):
        item = items[position]
        if item.expected_answer and failed is None:  # fail the first check, pass the second
            failed = position
            answer_trial(client, participant, answer=_other_option(client, participant, item.expected_answer))
        elif item.expected_answer:
            answer_trial(client, participant, answer=item.expected_answer)
        else:
            answer_trial(client, participant)
    out = tmp_path / "export"
    rows = _csv_rows(_export(study, out)["trials.csv"])
    assert verify_export(out) == []
    assert [int(r["position"]) for r in rows] == list(range(1, participant.sequence_length + 1))
    checks = [r for r in rows if r["expected_answer"]]
    assert {int(r["position"]) for r in checks} == {p for p, i in items.items() if i.expected_answer}
    for row in checks:
        item = items[int(row["position"])]
        assert row["trial_id"] == item.trial.trial_id and row["phase"] in ("", "pre", "post")
        assert row["expected_answer"] == item.expected_answer
        assert row["answer"] == item.answer.answer and row["confidence"] == "3"
        assert row["matches_model"] in ("true", "false")
        assert (row["answer"] == row["expected_answer"]) == (int(row["position"]) != failed)
    assert all(r["expected_answer"] == "" for r in rows if not items[int(r["position"])].expected_answer)
    manifest = json.loads((out / "export_manifest.json").read_text(encoding="utf-8"))
    assert manifest["database_rows"]["attention_checks"] == 2
    assert manifest["database_rows"]["attention_checks_passed"] == 1
    assert manifest["database_rows"]["trials"] == len(rows) - 2
    assert manifest["files"]["trials.csv"]["rows"] == len(rows)


def _other_option(client: Client, participant: Participant, instructed: str) -> str:
    """An answer the current trial page offers that is not the instructed one."""
    offered = radio_values(client.get(current_url(client, participant)).content.decode(), "answer")
    return next(value for value in offered if value != instructed)


def test_verify_export_notices_a_check_row_missing_from_trials_csv(tmp_path):
    study = usefulness_study(tmp_path, AGREEMENT, checks=1)
    take_trials(Client(), study)
    out = tmp_path / "export"
    _export(study, out)
    lines = (out / "trials.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if not line.rstrip("\n").endswith(("correct", "incorrect"))]
    assert len(kept) == len(lines) - 1
    (out / "trials.csv").write_text("".join(kept), encoding="utf-8")
    problems = verify_export(out)
    assert any("0 attention-check rows, but the database held 1" in p for p in problems)
    assert any("rows, the manifest says" in p for p in problems)


# --- backup and restore ------------------------------------------------------------------------


@pytest.mark.parametrize("task", TASKS)
def test_a_restored_usefulness_study_exports_the_same_trials_and_goes_on(task, tmp_path, media):
    study = usefulness_study(tmp_path, task, checks=1)
    take_trials(Client(), study)
    take_trials(Client(), study)
    half_client = Client()
    half = ready(half_client, study)
    answer_trial(half_client, half)
    half.refresh_from_db()
    before, counts, images = _export(study, tmp_path / "before"), _counts(), _images(media)
    assert counts[-1] > 0
    backup = tmp_path / "study.tar"
    out = io.StringIO()
    call_command("backup_study_data", "--out", str(backup), stdout=out)
    assert f"{TrialAnswer.objects.count()} trial answers" in out.getvalue()
    Participant.objects.all().delete()
    Study.objects.all().delete()
    for path in media.rglob("*.png"):
        path.unlink()
    assert _counts() == (0,) * 5

    out = io.StringIO()
    call_command("restore_study_data", str(backup), stdout=out)
    assert f"{counts[-1]} trial answers" in out.getvalue()
    restored = Study.objects.get(slug=study.slug)
    assert restored.task == task and _counts() == counts and _images(media) == images
    assert _export(restored, tmp_path / "after") == before
    assert verify_export(tmp_path / "after") == []
    again = Participant.objects.get(token=half.token)
    assert again.arm == half.arm and again.answered == 1
    answer_trial(Client(), again)  # the half-way participant goes on after the restore
    assert TrialAnswer.objects.filter(item__participant=again).count() == 2
    newcomer = take_trials(Client(), restored)
    assert newcomer.completed_at is not None and (newcomer.arm != "") == (task == FORWARD_SIMULATION)


def test_restore_replace_puts_back_the_trials_of_the_backup(tmp_path):
    study = usefulness_study(tmp_path, FORWARD_SIMULATION)
    take_trials(Client(), study)
    before = _export(study, tmp_path / "before")
    backup = tmp_path / "study.tar"
    call_command("backup_study_data", "--out", str(backup), stdout=io.StringIO())
    later = take_trials(Client(), study)
    call_command("restore_study_data", str(backup), "--replace", stdout=io.StringIO())
    assert not Participant.objects.filter(public_id=later.public_id).exists()
    assert _export(Study.objects.get(slug=study.slug), tmp_path / "after") == before


def test_a_backup_from_before_the_trial_tables_still_restores(study, tmp_path):
    """A preference backup whose header lists no trial tables (written before migration 0007)."""
    backup, old = tmp_path / "new.tar", tmp_path / "old.tar"
    call_command("backup_study_data", "--out", str(backup), stdout=io.StringIO())
    with tarfile.open(backup) as source:
        members = {m.name: source.extractfile(m).read() for m in source.getmembers()}
    header = json.loads(members["backup.json"])
    header["rows"] = {k: v for k, v in header["rows"].items() if not k.startswith("studyapp.trial")}
    header["studyapp_migrations"] = [m for m in header["studyapp_migrations"] if m != "0007_usefulness_trials"]
    members["backup.json"] = json.dumps(header).encode()
    members["backup.sig"] = backup_tag(members["backup.json"]).encode()
    with tarfile.open(old, "w") as target:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            target.addfile(info, io.BytesIO(data))
    call_command("restore_study_data", str(old), "--replace", stdout=io.StringIO())
    assert Study.objects.get(slug=study.slug).task == "preference"
