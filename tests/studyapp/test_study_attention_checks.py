"""Attention checks: planned at random positions, shown like any question with an instruction, exported
with ``question_type`` ``attention_check`` and the instructed ``expected_choice``, and refused when they
would outnumber the questions."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import tarfile
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from study_helpers import DEMOGRAPHICS, answer_current, form_value, start, take_study

from studyapp.models import Answer, Participant, SequenceItem, Study
from studyapp.operations.backup import backup_tag
from studyapp.operations.export import verify_export
from studyapp.participation.design import PairOption, SequenceError, pair_exposure, plan_sequence
from studyapp.participation.flow import StudyUnavailable, enrol
from studyapp.simulated.participants import instructed_choice, run_participants, simulation_marker

pytestmark = pytest.mark.django_db

INSTRUCTION = "To show that you are reading, choose <strong>Equally reasonable</strong> for this question."


def _options() -> list[PairOption]:
    """Two cells of three pairs each, stimuli numbered 10·pair and 10·pair + 1."""
    return [
        PairOption(pk=pk, cell=("t", "d1" if pk <= 3 else "d2"), image=("d", f"img{pk}"), stimuli=(10 * pk, 10 * pk + 1))
        for pk in range(1, 7)
    ]


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_plan_puts_checks_at_random_positions_and_keeps_the_questions():
    for seed in range(20):
        plain = plan_sequence(_options(), {}, 2, random.Random(seed))
        checked = plan_sequence(_options(), {}, 2, random.Random(seed), attention_checks=2)
        assert [item.position for item in checked] == [1, 2, 3, 4, 5, 6]
        checks = [item for item in checked if item.expected_choice]
        assert [item.expected_choice for item in checks] == ["equal", "equal"]
        questions = [item for item in checked if not item.expected_choice]
        # The questions are the plan without checks, in its order, renumbered around the checks.
        assert [(q.pair, q.stimulus_a, q.stimulus_b) for q in questions] == [
            (p.pair, p.stimulus_a, p.stimulus_b) for p in plain
        ]
        # Four of six pairs are asked, so both checks show one of the two pairs not asked.
        assert {c.pair for c in checks}.isdisjoint({q.pair for q in questions}) and len({c.pair for c in checks}) == 2
        assert all({c.stimulus_a, c.stimulus_b} == {10 * c.pair, 10 * c.pair + 1} for c in checks)
    positions = {
        tuple(i.position for i in plan_sequence(_options(), {}, 2, random.Random(seed), 2) if i.expected_choice)
        for seed in range(20)
    }
    assert len(positions) > 5  # positions differ between participants


def test_plan_without_checks_draws_as_before_and_reuses_pairs_only_when_it_must():
    assert plan_sequence(_options(), {}, 2, random.Random(7)) == plan_sequence(_options(), {}, 2, random.Random(7), 0)
    checked = plan_sequence(_options(), {}, 3, random.Random(7), attention_checks=2)  # all six pairs asked
    assert len(checked) == 8 and sum(bool(i.expected_choice) for i in checked) == 2


def test_plan_refuses_more_checks_than_questions():
    with pytest.raises(SequenceError) as error:
        plan_sequence(_options(), {}, 1, random.Random(0), attention_checks=3)
    assert str(error.value) == (
        "The study asks for 3 attention checks but each participant answers only 2 questions; "
        "use at most 2 attention checks."
    )


def test_new_studies_get_two_checks_and_the_fixture_study_none(study: Study):
    assert Study(slug="fresh", title="Fresh").attention_checks == 2
    assert study.attention_checks == 0 and enrol(study).sequence_length == 12


def test_sequences_store_the_checks_and_exposure_counts_only_questions(checked_study: Study):
    participants = [enrol(checked_study, external_id=f"p{i}") for i in range(6)]
    positions = set()
    for participant in participants:
        items = list(SequenceItem.objects.filter(participant=participant).order_by("position"))
        assert [i.position for i in items] == list(range(1, 15)) and participant.sequence_length == 14
        checks = [i for i in items if i.expected_choice]
        assert [c.expected_choice for c in checks] == ["equal", "equal"]
        positions.add(tuple(c.position for c in checks))
    assert len(positions) > 1
    exposure = pair_exposure(checked_study.pk)
    assert sum(exposure.values()) == 6 * 12  # the 12 checks are not counted as exposure


def _take_passing_one_check(study: Study) -> tuple[Participant, list[int], dict[int, str]]:
    """A participant who answers "A" throughout except "equal" at the first check (passes it, fails the second);
    returns them, their check positions and the question pages they saw."""
    client = Client()
    participant = start(client, study)
    client.post(reverse("studyapp:demographics", args=[participant.token]), DEMOGRAPHICS)
    client.post(reverse("studyapp:instructions", args=[participant.token]))
    check_positions = list(
        SequenceItem.objects.filter(participant=participant).exclude(expected_choice="").values_list("position", flat=True)
    )
    pages = {}
    for position in range(1, participant.sequence_length + 1):
        url = reverse("studyapp:question", args=[participant.token, position])
        pages[position] = client.get(url).content.decode()
        choice = "equal" if position == check_positions[0] else "A"
        client.post(url, {"choice": choice, "shown": form_value(pages[position], "shown")})
    return participant, check_positions, pages


def test_a_check_is_shown_like_a_question_answered_and_exported(checked_study: Study, tmp_path: Path):
    participant, check_positions, pages = _take_passing_one_check(checked_study)
    for position, page in pages.items():
        assert (INSTRUCTION in page) == (position in check_positions)
        assert "Which system behaves more reasonably?" in page and page.count('name="choice"') == 3
    participant.refresh_from_db()
    assert participant.completed_at is not None

    out = tmp_path / "export"
    call_command("export_responses", "--study", checked_study.slug, "--out", str(out), stdout=io.StringIO())
    rows = {int(r["position"]): r for r in _read(out / "answers.csv")}
    assert len(rows) == 14
    for position in check_positions:
        item = SequenceItem.objects.select_related("pair__dataset", "stimulus_a", "stimulus_b").get(
            participant=participant, position=position
        )
        assert rows[position] == {
            **rows[position], "question_type": "attention_check", "expected_choice": "equal",
            "pair_id": item.pair.pair_id, "dataset": item.pair.dataset.key, "image_id": item.pair.image_id,
            "method_a": item.stimulus_a.method, "method_b": item.stimulus_b.method,
        }  # fmt: skip
    first, second = (rows[p] for p in check_positions)
    assert (first["choice"], first["chosen_method"]) == ("equal", "equal")
    assert second["choice"] == "A" and second["chosen_method"] == rows[check_positions[1]]["method_a"]
    others = [r for p, r in rows.items() if p not in check_positions]
    assert all(r["expected_choice"] == "" and r["question_type"].startswith("bla_t_vs_") for r in others)

    manifest = json.loads((out / "export_manifest.json").read_text())
    assert manifest["database_rows"]["attention_checks"] == 2
    # Issue 26 appends the comparison model after expected_choice, issue 28 the design weight; a check row has no model.
    assert manifest["files"]["answers.csv"]["columns"][-5:] == ["expected_choice", "method_1", "method_2", "result",
                                                                "design_weight"]
    assert all(rows[p]["method_1"] == rows[p]["method_2"] == rows[p]["result"] == "" for p in check_positions)
    assert verify_export(out) == []


def test_dashboard_shows_checks_passed_and_counts_only_questions_per_cell(checked_study: Study, admin_client):
    participant, _, _ = _take_passing_one_check(checked_study)
    page = admin_client.get(reverse("studyapp:dashboard", args=[checked_study.slug])).content.decode()
    assert f'<td data-checks="{participant.public_id}">1 / 2</td>' in page
    assert '<dd data-count="attention_checks">2</dd>' in page
    for question_type in ("bla_t_vs_cam", "bla_t_vs_l2x_f", "bla_t_vs_random"):
        for dataset in ("mnist38", "catsdogs"):  # 2 questions per cell; the check answers are not counted in one
            assert f'<td data-cell="{question_type}/{dataset}">2</td>' in page
    assert "shown to 0–1 participants each" in page


def test_verify_export_notices_a_dropped_check_row_and_reads_old_manifests(checked_study: Study, tmp_path: Path):
    take_study(Client(), checked_study)
    out = tmp_path / "export"
    call_command("export_responses", "--study", checked_study.slug, "--out", str(out), stdout=io.StringIO())
    answers = out / "answers.csv"
    text = answers.read_text(encoding="utf-8")
    answers.write_text(text.replace(",attention_check,", ",bla_t_vs_cam,", 1))  # one check passed off as a question
    assert any("1 attention-check rows, but the database held 2" in p for p in verify_export(out))

    manifest_path = out / "export_manifest.json"
    manifest = json.loads(manifest_path.read_text())
    answers.write_text(text)
    del manifest["database_rows"]["attention_checks"]
    for entry in manifest["files"].values():
        del entry["columns"]  # a manifest written before attention checks
    manifest_path.write_text(json.dumps(manifest))
    assert verify_export(out) == []


def test_an_answer_to_a_check_keeps_the_hot_path_queries(checked_study: Study):
    client = Client()
    participant = start(client, checked_study)
    client.post(reverse("studyapp:demographics", args=[participant.token]), DEMOGRAPHICS)
    client.post(reverse("studyapp:instructions", args=[participant.token]))
    position = SequenceItem.objects.filter(participant=participant).exclude(expected_choice="").first().position
    for _ in range(position - 1):
        answer_current(client, participant)
    url = reverse("studyapp:question", args=[participant.token, position])
    shown = form_value(client.get(url).content.decode(), "shown")
    with CaptureQueriesContext(connection) as queries:
        response = client.post(url, {"choice": "equal", "shown": shown})
    assert response.status_code == 302
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    statements = [s for s in statements if s not in ("SAVEPOINT", "RELEASE")]
    assert statements == ["SELECT", *(["WITH"] if connection.vendor == "postgresql" else ["INSERT", "UPDATE"])]


def test_more_checks_than_questions_is_one_sentence_and_nobody_is_enrolled(study: Study):
    study.attention_checks = 13
    with pytest.raises(ValidationError) as error:
        study.full_clean()
    assert error.value.message_dict == {"attention_checks": [
        "The study asks for 13 attention checks but each participant answers only 12 questions; "
        "use at most 12 attention checks."
    ]}  # fmt: skip
    study.attention_checks = 12
    study.full_clean()
    Study.objects.filter(pk=study.pk).update(attention_checks=13)  # set past the validation
    study.refresh_from_db()
    with pytest.raises(StudyUnavailable, match="13 attention checks"):
        enrol(study)
    page = Client().post(study.get_absolute_url(), {"agree": "on"})
    assert page.status_code == 403
    assert Participant.objects.count() == 0 and SequenceItem.objects.count() == 0


def test_admin_study_form_shows_and_validates_the_checks(study: Study, admin_client):
    url = reverse("admin:studyapp_study_change", args=[study.pk])
    page = admin_client.get(url).content.decode()
    assert 'name="attention_checks"' in page
    data = {
        "slug": study.slug, "title": study.title, "status": study.status, "consent_text": study.consent_text,
        "instructions": study.instructions, "questions_per_cell": "2", "attention_checks": "13",
        "completion_code": study.completion_code, "created_at_0": "2026-01-01", "created_at_1": "00:00:00",
        "question_prompt": study.question_prompt, "completion_message": study.completion_message, "language": "en",
        "screened_out_code": study.screened_out_code, "no_consent_code": study.no_consent_code,
        "max_failed_checks": "1", "release_after_minutes": "60",
        "design": "balanced", "adaptive_objective": "shares", "adaptive_min_share": "0.5",
    }  # fmt: skip
    response = admin_client.post(url, data)
    assert response.status_code == 200 and "use at most 12 attention checks" in response.content.decode()
    study.refresh_from_db()
    assert study.attention_checks == 0
    assert admin_client.post(url, {**data, "attention_checks": "3"}).status_code == 302
    study.refresh_from_db()
    assert study.attention_checks == 3


def _import(bundle: Path, slug: str, *extra: str) -> str:
    out = io.StringIO()
    call_command("import_stimuli", str(bundle), "--study", slug, *extra, stdout=out, verbosity=0)
    return out.getvalue()


def test_import_sets_the_checks_and_refuses_too_many_writing_nothing(bundle_dir: Path, media_root: Path):
    _import(bundle_dir, "s1")
    assert Study.objects.get(slug="s1").attention_checks == 2  # a new study's default
    _import(bundle_dir, "s2", "--attention-checks", "5")
    assert Study.objects.get(slug="s2").attention_checks == 5
    # 6 cells × 4 questions per cell (the default) = 24 questions.
    with pytest.raises(CommandError) as error:
        _import(bundle_dir, "s3", "--attention-checks", "25")
    assert str(error.value) == (
        "The study asks for 25 attention checks but each participant answers only 24 questions; "
        "use at most 24 attention checks. (--attention-checks sets the number.)"
    )
    with pytest.raises(CommandError, match="--attention-checks -1 must be 0 or more"):
        _import(bundle_dir, "s3", "--attention-checks", "-1")
    assert not Study.objects.filter(slug="s3").exists()
    assert len({p.name for p in media_root.rglob("*.png")}) == 2 * 88


def _as_old_backup(backup: Path, old: Path) -> None:
    """Rewrite a backup as one from before migration 0003: no check fields in its rows or migrations, signed anew."""
    with tarfile.open(backup) as source, tarfile.open(old, "w") as target:
        members = {m.name: source.extractfile(m).read() for m in source.getmembers()}
        rows = json.loads(members["data.json"])
        for row in rows:
            row["fields"].pop("attention_checks", None)
            row["fields"].pop("expected_choice", None)
        members["data.json"] = json.dumps(rows).encode()
        header = json.loads(members["backup.json"])
        header["studyapp_migrations"] = [m for m in header["studyapp_migrations"] if m < "0003"]
        header["sha256"]["data.json"] = hashlib.sha256(members["data.json"]).hexdigest()
        header["bytes"]["data.json"] = len(members["data.json"])
        members["backup.json"] = json.dumps(header).encode()
        members["backup.sig"] = backup_tag(members["backup.json"]).encode()
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            target.addfile(info, io.BytesIO(data))


def test_backups_carry_the_checks_and_one_from_before_them_restores_without(checked_study: Study, tmp_path: Path):
    take_study(Client(), checked_study)
    before = {r["position"]: r["expected_choice"] for r in _export_rows(checked_study, tmp_path / "before")}
    backup, old = tmp_path / "new.tar", tmp_path / "old.tar"
    call_command("backup_study_data", "--out", str(backup), stdout=io.StringIO())
    _as_old_backup(backup, old)

    call_command("restore_study_data", str(backup), "--replace", stdout=io.StringIO())
    restored = Study.objects.get(slug=checked_study.slug)
    assert restored.attention_checks == 2
    assert {r["position"]: r["expected_choice"] for r in _export_rows(restored, tmp_path / "after")} == before
    call_command("restore_study_data", str(old), "--replace", stdout=io.StringIO())
    assert Study.objects.get(slug=checked_study.slug).attention_checks == 0  # old studies keep their behaviour


def _export_rows(study: Study, out: Path) -> list[dict[str, str]]:
    call_command("export_responses", "--study", study.slug, "--out", str(out), stdout=io.StringIO())
    return _read(out / "answers.csv")


def test_a_bot_reads_the_instruction_as_a_person_would():
    buttons = ('<button type="submit" name="choice" value="A" data-key="a">System A <kbd>A</kbd></button>'
               '<button type="submit" name="choice" value="equal" data-key="e">Equally reasonable <kbd>E</kbd></button>')
    assert instructed_choice(f"<p>{INSTRUCTION}</p>{buttons}") == "equal"
    assert instructed_choice(f"<p>Which system behaves more reasonably?</p>{buttons}") is None


@pytest.mark.django_db(transaction=True)
def test_inattentive_bots_fail_the_checks_and_attentive_ones_pass(live_server, checked_study: Study):
    url = live_server.url + checked_study.get_absolute_url()
    reports, summary = run_participants(url, 6, concurrency=3, seed=4, marker=simulation_marker(checked_study.slug),
                                        inattentive_share=0.5)  # fmt: skip
    assert [r.errors for r in reports] == [[]] * 6 and sum(not r.attentive for r in reports) == 3
    assert (summary.attention_checks, summary.attention_checks_passed) == (12, 6)
    assert not any(r.screened_out for r in reports) and all(r.completed for r in reports)  # 2 failures allowed here
    for report in reports:
        items = SequenceItem.objects.filter(participant__token=report.token).exclude(expected_choice="")
        stored = sorted(items.values_list("position", "expected_choice", "answer__choice"))
        assert stored == sorted(report.checks) and len(stored) == 2
        assert all((expected == choice) == report.attentive for _, expected, choice in stored)


@pytest.mark.django_db(transaction=True)
def test_simulate_command_takes_an_inattentive_share(live_server, checked_study: Study, capsys):
    call_command("simulate_participants", "--study", checked_study.slug, "--n", "4", "--url", live_server.url,
                 "--inattentive-share", "0.25", "--concurrency", "2")
    out = capsys.readouterr().out
    assert "4 of 4 simulated participants completed" in out and "6 of 8 attention checks passed" in out
    assert "0 screened out" in out
    with pytest.raises(CommandError, match=r"--inattentive-share 1.5 must be between 0 and 1\."):
        call_command("simulate_participants", "--study", checked_study.slug, "--inattentive-share", "1.5")
    answers = Answer.objects.filter(item__participant__study=checked_study).exclude(item__expected_choice="")
    failed = {a.item.participant_id for a in answers.select_related("item") if a.choice != a.item.expected_choice}
    assert answers.count() == 8 and len(failed) == 1


def test_the_analysis_reads_the_checks_of_an_export(checked_study: Study, tmp_path: Path):
    from analysis.io import load_export

    attentive = take_study(Client(), checked_study, choices="E")  # "equal" throughout passes every check
    careless, _, _ = _take_passing_one_check(checked_study)
    out = tmp_path / "export"
    call_command("export_responses", "--study", checked_study.slug, "--out", str(out), stdout=io.StringIO())
    export = load_export(out / "answers.csv", out / "participants.csv")
    passed = export.checks.groupby("participant")["passed"].sum().to_dict()
    assert passed == {attentive.public_id: 2, careless.public_id: 1}
    assert len(export.answers) == 2 * 12 and set(export.answers["question_type"]) >= {"bla_t_vs_cam"}
