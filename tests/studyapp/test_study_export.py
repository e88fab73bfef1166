"""export_responses: answers.csv and participants.csv exactly as DESIGN.md defines them, column by column."""
from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from study_helpers import take_study

from studyapp.models import Participant
from studyapp.operations.export import iso_utc
from studyapp.participation.flow import enrol, questions, record_answer

pytestmark = pytest.mark.django_db

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_iso_utc_is_utc_with_z():
    assert iso_utc(datetime(2026, 11, 26, 10, 0, 0, 123000, tzinfo=UTC)) == "2026-11-26T10:00:00.123Z"
    assert iso_utc(None) == ""


def test_export_columns_match_design_and_database(study, tmp_path):
    """A study without attention checks exports as before, plus an empty ``expected_choice`` column."""
    done = take_study(Client(), study, choices="ABE")
    partial = enrol(study, external_id="ext-1", simulated=True)
    Participant.objects.filter(pk=partial.pk).update(demographics_at=done.demographics_at, gender="other", age=61,
                                                     ml_experience="strongly disagree", xai_experience="strongly agree")
    first = partial.items.get(position=1)
    record_answer(partial, questions(partial.token)[0], "B", 1234)
    excluded = enrol(study)
    Participant.objects.filter(pk=excluded.pk).update(excluded=True)

    out = tmp_path / "export"
    call_command("export_responses", "--study", study.slug, "--out", str(out), stdout=io.StringIO())
    assert sorted(p.name for p in out.iterdir()) == ["answers.csv", "export_manifest.json", "participants.csv"]

    header = (out / "answers.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header == ("study,participant,position,pair_id,question_type,dataset,image_id,method_a,method_b,"
                      "choice,chosen_method,response_ms,answered_at,expected_choice,method_1,method_2,result,"
                      "design_weight")
    answers = _read(out / "answers.csv")
    assert len(answers) == 13
    mine = [r for r in answers if r["participant"] == done.public_id]
    assert [r["position"] for r in mine] == [str(i) for i in range(1, 13)]
    assert [r["choice"] for r in mine][:3] == ["A", "B", "equal"]
    for row in mine:
        item = done.items.select_related("pair__dataset", "stimulus_a", "stimulus_b", "answer").get(position=int(row["position"]))
        expected_chosen = {"A": item.stimulus_a.method, "B": item.stimulus_b.method, "equal": "equal"}[row["choice"]]
        other = item.pair.question_type.removeprefix("bla_t_vs_")
        result = {"bla_t": "method_1", "equal": "equal"}.get(expected_chosen, "method_2")
        assert row == {
            "study": "pilot", "participant": done.public_id, "position": row["position"],
            "pair_id": item.pair.pair_id, "question_type": item.pair.question_type, "dataset": item.pair.dataset.key,
            "image_id": item.pair.image_id, "method_a": item.stimulus_a.method, "method_b": item.stimulus_b.method,
            "choice": item.answer.choice, "chosen_method": expected_chosen,
            "response_ms": str(item.answer.response_ms), "answered_at": iso_utc(item.answer.answered_at),
            "expected_choice": "", "method_1": "bla_t", "method_2": "random(bla_t)" if other == "random" else other,
            "result": result, "design_weight": "1",
        }  # fmt: skip
        assert ISO.match(row["answered_at"])
        assert {row["method_a"], row["method_b"]} == {"bla_t", row["question_type"].removeprefix("bla_t_vs_")}
    bot = next(r for r in answers if r["participant"] == partial.public_id)
    assert (bot["position"], bot["choice"], bot["response_ms"]) == ("1", "B", "1234")
    assert bot["chosen_method"] == first.stimulus_b.method

    header = (out / "participants.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header == (
        "study,participant,status,started_at,completed_at,gender,age,ml_experience,xai_experience,simulated,language,outcome"
    )
    people = {r["participant"]: r for r in _read(out / "participants.csv")}
    assert people[done.public_id] == {
        "study": "pilot", "participant": done.public_id, "status": "completed",
        "started_at": iso_utc(done.started_at), "completed_at": iso_utc(done.completed_at), "gender": "female",
        "age": "34", "ml_experience": "agree", "xai_experience": "undecided", "simulated": "false", "language": "en",
        "outcome": "complete",
    }  # fmt: skip
    assert people[partial.public_id] == {
        "study": "pilot", "participant": partial.public_id, "status": "incomplete",
        "started_at": iso_utc(partial.started_at),
        "completed_at": "", "gender": "other", "age": "61", "ml_experience": "strongly disagree",
        "xai_experience": "strongly agree", "simulated": "true", "language": "en", "outcome": "",
    }  # fmt: skip
    assert people[excluded.public_id]["status"] == "excluded"
    assert list(people) == [done.public_id, partial.public_id, excluded.public_id]


def test_export_overwrites_atomically_and_leaves_no_temp_files(study, tmp_path):
    out = tmp_path / "export"
    out.mkdir()
    (out / "answers.csv").write_text("old")
    call_command("export_responses", "--study", study.slug, "--out", str(out), stdout=io.StringIO())
    assert sorted(p.name for p in out.iterdir()) == ["answers.csv", "export_manifest.json", "participants.csv"]
    assert (out / "answers.csv").read_text().startswith("study,participant,position")


def test_export_errors_are_one_sentence(study, tmp_path):
    with pytest.raises(CommandError, match=r"--study 'nope' does not exist \(studies: pilot\)"):
        call_command("export_responses", "--study", "nope", "--out", str(tmp_path))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CommandError, match="cannot be written"):
        call_command("export_responses", "--study", study.slug, "--out", str(blocker / "sub"))


def test_dashboard_zip_holds_the_same_files(study, tmp_path, admin_client):
    take_study(Client(), study)
    out = tmp_path / "export"
    call_command("export_responses", "--study", study.slug, "--out", str(out), stdout=io.StringIO())
    response = admin_client.get(f"/research/{study.slug}/export.zip")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert sorted(archive.namelist()) == ["answers.csv", "export_manifest.json", "participants.csv"]
        for name in ("answers.csv", "participants.csv"):
            assert archive.read(name) == (out / name).read_bytes()
        manifest = json.loads(archive.read("export_manifest.json"))
        assert manifest["files"] == json.loads((out / "export_manifest.json").read_text())["files"]
