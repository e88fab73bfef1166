"""Usefulness studies (issue 27), the gaps around the trials: attention-check rows in trials.csv,
backup and restore of the trial tables, the researcher preview of the trials and the dashboard's
per-method summary."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import re
import tarfile
import zipfile
from collections import defaultdict
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from study_helpers import DEMOGRAPHICS, form_value, researcher_client
from usefulness_helpers import answer_trial, current_url, radio_values, ready, take_trials, usefulness_study

from contracts.intervals import ComparisonSums, clustered_interval
from contracts.usefulness import AGREEMENT, DISTINCTION, FORWARD_SIMULATION
from studyapp.console.usefulness_summary import usefulness_summary
from studyapp.models import Participant, Study, Trial, TrialAnswer, TrialItem, TrialPanel
from studyapp.operations.backup import backup_tag
from studyapp.operations.export import verify_export
from studyapp.participation.blinding import find_leaks, forbidden_terms

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


def test_an_export_from_before_expected_answer_still_verifies(tmp_path):
    """An older usefulness export: trials.csv without the column and without check rows."""
    study = usefulness_study(tmp_path, DISTINCTION, checks=1)
    take_trials(Client(), study)
    out = tmp_path / "export"
    _export(study, out)
    rows = list(csv.reader(io.StringIO((out / "trials.csv").read_text(encoding="utf-8"))))
    old = [row[:-1] for row in rows if row[-1] == "" or row is rows[0]]
    assert len(old) == len(rows) - 1
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(old)
    text = buffer.getvalue()
    (out / "trials.csv").write_text(text, encoding="utf-8")
    manifest = json.loads((out / "export_manifest.json").read_text(encoding="utf-8"))
    entry = manifest["files"]["trials.csv"]
    entry |= {"sha256": hashlib.sha256(text.encode()).hexdigest(), "rows": len(old) - 1, "columns": old[0]}
    (out / "export_manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert verify_export(out) == []


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


# --- dashboard: the per-method summary ---------------------------------------------------------


def _take_at_random(study: Study, seed: int, fail_checks: bool = False) -> Participant:
    """A participant who answers every trial at random (seeded), checks as instructed unless ``fail_checks``."""
    rng = random.Random(seed)
    client = Client()
    participant = ready(client, study)
    for _ in range(participant.sequence_length):
        html = client.get(current_url(client, participant)).content.decode()
        offered = radio_values(html, "answer")
        instructed = TrialItem.objects.get(participant=participant, position=participant.answered + 1).expected_answer
        if instructed:
            answer = next(v for v in offered if v != instructed) if fail_checks else instructed
        else:
            answer = rng.choice(offered) if offered else None
        answer_trial(client, participant, answer=answer, confidence=str(rng.randint(1, 4)))
        participant.refresh_from_db()
    return participant


def _expected_shares(study: Study, out: Path, leave_out: set[str]) -> dict[tuple[str, str], tuple[int, int, int, tuple | None]]:
    """From the export: per (method or arm, phase) the participants, matches, answers and clustered interval."""
    rows = _csv_rows(_export(study, out)["trials.csv"])
    per: dict[tuple[str, str], dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for row in rows:
        if row["expected_answer"] or row["phase"] == "learn" or row["participant"] in leave_out:
            continue
        key = (row["arm"], row["phase"]) if study.task == FORWARD_SIMULATION else (row["method"], "")
        counts = per[key][row["participant"]]
        counts[0] += 1
        counts[1] += row["matches_model"] == "true"
    result = {}
    for key, people in per.items():
        groups = list(people.values())
        sums = ComparisonSums("", len(groups), sum(a for _, a in groups), sum(n - a for n, a in groups), 0,
                              sum(a * a for _, a in groups), sum(a * n for n, a in groups), sum(n * n for n, _ in groups))
        result[key] = (len(groups), int(sums.method_1), int(sums.answers), clustered_interval(sums))
    return result


@pytest.mark.parametrize("task", TASKS)
def test_the_summary_gives_each_methods_share_matching_the_model_as_the_export_scores_it(task, tmp_path):
    study = usefulness_study(tmp_path, task, checks=1)
    people = [_take_at_random(study, seed) for seed in range(4)]
    inattentive = _take_at_random(study, 99, fail_checks=True)
    excluded = _take_at_random(study, 7)
    Participant.objects.filter(pk=excluded.pk).update(excluded=True)
    bot = _take_at_random(study, 8)
    Participant.objects.filter(pk=bot.pk).update(simulated=True)
    expected = _expected_shares(study, tmp_path / "export", {inattentive.public_id, excluded.public_id, bot.public_id})
    rows = usefulness_summary(study)
    if task == FORWARD_SIMULATION:
        assert {r.method for r in rows} == {p.arm for p in people}
        for row in rows:
            for phase, share in (("pre", row.pre), ("post", row.post)):
                n_people, matches, answers, interval = expected[(row.method, phase)]
                assert (share.participants, share.matches, share.answers) == (n_people, matches, answers)
                assert (share.low, share.high) == (interval or (None, None))
            assert row.answered == row.pre.answers + row.post.answers
    else:
        assert [r.method for r in rows] == ["bla_t", "cam"] and all(r.pre is None and r.post is None for r in rows)
        for row in rows:
            n_people, matches, answers, interval = expected[(row.method, "")]
            assert (row.participants, row.share.matches, row.answered) == (n_people, matches, answers) == (4, matches, answers)
            assert interval is not None and (row.share.low, row.share.high) == pytest.approx(interval)
    with_bot = usefulness_summary(study, include_simulated=True)
    assert sum(r.answered for r in with_bot) > sum(r.answered for r in rows)


@pytest.mark.parametrize("task", TASKS)
def test_the_dashboard_shows_the_summary_with_zero_one_and_more_participants(task, tmp_path):
    study = usefulness_study(tmp_path, task, checks=1)
    client = researcher_client("ada", study)
    url = reverse("studyapp:dashboard", args=[study.slug])
    page = client.get(url)
    assert page.status_code == 200
    assert "data-usefulness-summary" in page.content.decode() and "No answered trials yet." in page.content.decode()
    half = ready(Client(), study)
    answer_trial(Client(), half)  # one participant with one answer
    assert client.get(url).status_code == 200
    _take_at_random(study, 1)
    html = client.get(url).content.decode()
    assert "no interval under two participants" in html and "data-share=" in html
    more = [_take_at_random(study, seed) for seed in range(2, 6 if task == FORWARD_SIMULATION else 3)]
    html = client.get(url + "?simulated=1").content.decode()
    assert re.search(r"\[\d+–\d+\]", html)  # an interval once two participants answered (in one arm)
    first = more[0]
    assert f'data-checks="{first.public_id}">1 / 1<' in html  # the trial attention checks are counted
    archive = zipfile.ZipFile(io.BytesIO(client.get(reverse("studyapp:export", args=[study.slug])).content))
    assert "trials.csv" in archive.namelist() and "participants.csv, trials.csv)" in html
    checks = [r for r in _csv_rows(archive.read("trials.csv")) if r["expected_answer"]]
    answered = TrialItem.objects.filter(participant__study=study, answer__isnull=False).exclude(expected_answer="")
    assert len(checks) == answered.count() >= 2
    if task == FORWARD_SIMULATION:
        assert "Pre-test matching the model" in html and "Post-test matching the model" in html
    else:
        assert 'data-method="bla_t"' in html and 'data-method="cam"' in html


@pytest.mark.parametrize("task", TASKS)
def test_the_dashboards_pool_and_exposure_tables_list_the_trials(task, tmp_path):
    study = usefulness_study(tmp_path, task, checks=1)
    for seed in (1, 2):
        _take_at_random(study, seed)
    html = researcher_client("ada", study).get(reverse("studyapp:dashboard", args=[study.slug])).content.decode()
    asked = TrialItem.objects.filter(participant__study=study, expected_answer="")
    cells: dict[str, int] = defaultdict(int)
    for method, phase, dataset in asked.values_list("trial__method", "trial__phase", "trial__dataset__key"):
        group = method if task != FORWARD_SIMULATION else (f"learn · {method or 'none'}" if phase == "learn" else phase)
        cells[f"{group}/{dataset}"] += 1
    assert cells and all(f'<td data-cell="{cell}">{n}</td>' in html for cell, n in cells.items())
    assert "Trial exposure" in html and "Pair exposure" not in html
    # The preference chart's empty note and the design (of comparisons) are not a usefulness study's.
    assert "No answers to draw yet." not in html and "data-design=" not in html
    trial = Trial.objects.filter(bundle__study=study).first()
    shown = asked.filter(trial=trial).count()
    assert re.search(rf"<code>{re.escape(trial.trial_id)}</code>.*?<td>{shown}</td><td>{shown}</td>", html, re.S)


def test_the_dashboard_summary_costs_the_same_queries_for_more_participants(tmp_path):
    study = usefulness_study(tmp_path, DISTINCTION, checks=1)
    client = researcher_client("ada", study)
    url = reverse("studyapp:dashboard", args=[study.slug])
    _take_at_random(study, 1)
    _take_at_random(study, 2)
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    for seed in range(3, 8):
        _take_at_random(study, seed)
    with CaptureQueriesContext(connection) as more:
        assert client.get(url).status_code == 200
    assert len(more.captured_queries) == len(few.captured_queries)


def test_a_preference_study_has_no_usefulness_summary(study, tmp_path):
    html = researcher_client("ada", study).get(reverse("studyapp:dashboard", args=[study.slug])).content.decode()
    assert "data-usefulness-summary" not in html and usefulness_summary(study) == []


def test_a_researcher_sees_only_the_dashboard_and_preview_of_their_own_usefulness_study(tmp_path):
    mine = usefulness_study(tmp_path, AGREEMENT, slug="mine")
    theirs = usefulness_study(tmp_path / "other", FORWARD_SIMULATION, slug="theirs")
    client = researcher_client("ada", mine)
    for name in ("dashboard", "preview"):
        assert client.get(reverse(f"studyapp:{name}", args=[mine.slug])).status_code == 200
        assert client.get(reverse(f"studyapp:{name}", args=[theirs.slug])).status_code == 403
    assert client.get(reverse("studyapp:preview_question", args=[theirs.slug, 1])).status_code == 403
    listing = client.get(reverse("studyapp:dashboard_index")).content.decode()
    assert "mine" in listing and "theirs" not in listing


def test_the_admin_shows_a_researcher_the_trials_and_trial_answers_of_their_own_study_only(tmp_path):
    mine = usefulness_study(tmp_path, AGREEMENT, slug="mine")
    theirs = usefulness_study(tmp_path / "other", DISTINCTION, slug="theirs")
    _take_at_random(mine, 1)
    _take_at_random(theirs, 2)
    client = researcher_client("ada", mine)
    answers = client.get(reverse("admin:studyapp_trialanswer_changelist")).content.decode()
    own = TrialAnswer.objects.filter(item__participant__study=mine)
    other = TrialAnswer.objects.filter(item__participant__study=theirs)
    assert own.exists() and other.exists()
    assert f"{own.count()} trial answers" in answers
    assert client.get(reverse("admin:studyapp_trialanswer_change", args=[own.first().pk])).status_code == 200
    assert client.get(reverse("admin:studyapp_trialanswer_change", args=[other.first().pk])).status_code == 302
    trials = client.get(reverse("admin:studyapp_trial_changelist")).content.decode()
    assert f"{Trial.objects.filter(bundle__study=mine).count()} trials" in trials  # the bundles' ids coincide
    theirs_trial = Trial.objects.filter(bundle__study=theirs).first()
    assert client.get(reverse("admin:studyapp_trial_change", args=[theirs_trial.pk])).status_code == 302
    assert client.post(reverse("admin:studyapp_trialanswer_delete", args=[own.first().pk]),
                       {"post": "yes"}).status_code == 403 and own.count() == TrialAnswer.objects.filter(
        item__participant__study=mine).count()


# --- the researcher's preview ------------------------------------------------------------------


def _walk_trial_preview(client: Client, study: Study) -> list[str]:
    """Consent → about you → instructions → every preview trial (first answer, confidence 2) → thank-you."""
    url = reverse("studyapp:preview", args=[study.slug])
    response = client.post(url, {"agree": "on"})
    response = client.post(response["Location"], DEMOGRAPHICS)
    response = client.post(response["Location"])
    trials = []
    while "/q/" in response["Location"]:
        page = client.get(response["Location"])
        assert page.status_code == 200
        html = page.content.decode()
        trials.append(html)
        data = {"shown": form_value(html, "shown"), "next": "1"}
        if offered := radio_values(html, "answer"):
            data |= {"answer": offered[0], "confidence": "2"}
        response = client.post(response["Location"], data)
        assert response.status_code == 302
    assert response["Location"] == reverse("studyapp:preview_done", args=[study.slug])
    assert client.get(response["Location"]).status_code == 200
    return trials


@pytest.mark.parametrize("task", TASKS)
def test_the_preview_shows_a_usefulness_studys_trials_as_participants_see_them_and_stores_nothing(task, tmp_path):
    study = usefulness_study(tmp_path, task, checks=1)
    Study.objects.filter(pk=study.pk).update(status=Study.Status.DRAFT)
    client = researcher_client("ada", study)
    before = _counts()
    pages = _walk_trial_preview(client, study)
    assert _counts() == before  # no participant, trial item (exposure) or answer
    assert all("data-preview" in page for page in pages)
    *trials, check = pages
    assert "To show that you are reading" in check and not any("To show that you are reading" in t for t in trials)
    panels = [len(re.findall(r'<img src="/[^"]*" alt="(?:Explanation|The image with the parts)', t)) for t in trials]
    if task == DISTINCTION:
        assert len(trials) == 2 and all(n >= 2 for n in panels)  # one trial per method, all its panels
        assert all("Which explanation belongs to the class the model decided for?" in t for t in trials)
    elif task == AGREEMENT:
        assert len(trials) == 2 and panels == [1, 1] and all("The model says" in t for t in trials)
    else:
        pre, *learning, post = trials
        assert "Which class will the model decide for" in pre and "Which class will the model decide for" in post
        assert len(learning) == 3 and all("Study how it decided" in t for t in learning)  # bla_t, cam, none
        assert sorted(panels[1:-1]) == [0, 1, 1] and panels[0] == panels[-1] == 0
    terms = forbidden_terms(study)
    leaks = [find_leaks(re.sub(r"<[^>]+>", " ", page), terms) for page in pages]
    assert not any(leaks)


def test_an_invalid_preview_trial_answer_shows_the_trial_again_and_positions_past_the_end_are_404(tmp_path):
    study = usefulness_study(tmp_path, AGREEMENT)
    client = researcher_client("ada", study)
    url = reverse("studyapp:preview_question", args=[study.slug, 1])
    html = client.get(url).content.decode()
    response = client.post(url, {"shown": form_value(html, "shown"), "confidence": "2"})
    assert response.status_code == 400 and "Please choose an answer." in response.content.decode()
    assert client.post(url, {"shown": "forged", "answer": "correct", "confidence": "2"}).status_code == 400
    assert client.get(reverse("studyapp:preview_question", args=[study.slug, 3])).status_code == 404
    assert client.get(reverse("studyapp:preview_question", args=[study.slug, 0])).status_code == 404
    assert not TrialAnswer.objects.exists()
