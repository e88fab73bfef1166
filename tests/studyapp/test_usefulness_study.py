"""Usefulness studies (issue 27): import of distinction, agreement and forward-simulation
bundles, their pages, per-answer save, resume, attention checks, arms and the export's
trials.csv."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from study_helpers import form_value
from usefulness_helpers import (
    answer_trial,
    current_url,
    radio_values,
    ready,
    take_trials,
    usefulness_study,
)

from contracts.usefulness import (
    AGREEMENT,
    DISTINCTION,
    FORWARD_SIMULATION,
    TRIAL_COLUMNS,
    matches_model,
    panel_classes_value,
)
from studyapp.models import (
    DEFAULT_TASK_INSTRUCTIONS,
    Participant,
    Study,
    Trial,
    TrialAnswer,
    TrialItem,
    TrialPanel,
)
from studyapp.operations.export import verify_export
from studyapp.participation.blinding import find_leaks, forbidden_terms
from tests.synthetic_usefulness_bundle import write_usefulness_bundle

pytestmark = pytest.mark.django_db
TASKS = (DISTINCTION, AGREEMENT, FORWARD_SIMULATION)


@pytest.fixture(autouse=True)
def media(settings, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


def _export(study: Study, out: Path) -> dict[str, list[dict[str, str]]]:
    call_command("export_responses", "--study", study.slug, "--out", str(out), stdout=io.StringIO())
    rows = {}
    for name in ("answers.csv", "participants.csv", "trials.csv"):
        with (out / name).open(encoding="utf-8", newline="") as handle:
            rows[name] = list(csv.DictReader(handle))
    return rows


@pytest.mark.parametrize("task", TASKS)
def test_import_stimuli_imports_a_usefulness_bundle_with_its_panels(task, tmp_path):
    root = write_usefulness_bundle(tmp_path / "bundle", task)
    out = io.StringIO()
    call_command("import_stimuli", str(root), "--study", "useful", "--open", stdout=out)
    study = Study.objects.get(slug="useful")
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    assert (study.task, study.status, study.is_usefulness) == (task, Study.Status.OPEN, True)
    assert study.instructions == DEFAULT_TASK_INSTRUCTIONS[task]
    assert (
        f"imported bundle 'synthetic-{task}-0': {len(manifest['trials'])} trials" in out.getvalue()
    )
    assert Trial.objects.filter(bundle__study=study).count() == len(manifest["trials"])
    for entry in manifest["trials"]:
        trial = Trial.objects.get(bundle__study=study, trial_id=entry["trial_id"])
        panels = list(trial.panels.order_by("order").values_list("class_name", "source_file"))
        assert panels == [(p["class"], p["file"]) for p in entry["panels"]]
        assert (trial.predicted_class, trial.model_correct, trial.phase) == (
            entry["predicted_class"],
            entry["model_correct"],
            entry["phase"] or "",
        )
        assert trial.method == ("" if entry["method"] in (None, "none") else entry["method"])
        assert trial.image.name.startswith("stimuli/") and "images/" not in trial.image.name
    again = io.StringIO()
    call_command("import_stimuli", str(root), "--study", "useful", stdout=again)
    assert "was already imported; nothing changed" in again.getvalue()


def test_a_broken_usefulness_bundle_is_refused_with_one_sentence_and_nothing_imported(tmp_path):
    root = write_usefulness_bundle(tmp_path / "bundle", DISTINCTION)
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    manifest["trials"][0]["panels"][0]["class"] = "giraffe"
    (root / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(
        CommandError, match=r"trials\[0\]\.panels\[0\]\.class 'giraffe' is not a class of dataset"
    ):
        call_command("import_stimuli", str(root), "--study", "broken", stdout=io.StringIO())
    assert not Study.objects.filter(slug="broken").exists() and not TrialPanel.objects.exists()


def test_too_many_attention_checks_for_the_trials_are_refused(tmp_path):
    root = write_usefulness_bundle(
        tmp_path / "bundle", AGREEMENT
    )  # 2 methods × 2 datasets, 2 per cell: 8 trials
    with pytest.raises(
        CommandError, match="asks for 9 attention checks but each participant answers only 8"
    ):
        call_command(
            "import_stimuli",
            str(root),
            "--study",
            "s",
            "--attention-checks",
            "9",
            "--questions-per-comparison",
            "2",
            stdout=io.StringIO(),
        )


def test_distinction_page_shows_shuffled_panels_without_classes_and_stores_the_order(tmp_path):
    study = usefulness_study(tmp_path, DISTINCTION)
    client = Client()
    participant = ready(client, study)
    items = list(TrialItem.objects.filter(participant=participant).select_related("trial"))
    assert len(items) == participant.sequence_length == 8  # 2 per method × dataset
    assert Counter((i.trial.method, i.trial.dataset.key) for i in items) == {
        (m, d): 2 for m in ("bla_t", "cam") for d in ("mnist38", "shapes")
    }
    for item in items:
        top = TrialPanel.objects.get(trial=item.trial, order=0)
        assert sorted(item.panel_order) == sorted(item.trial.panels.values_list("pk", flat=True))
        assert item.panel_order[item.prediction_panel - 1] == top.pk
    page = client.get(current_url(client, participant))
    html = page.content.decode()
    first = items[0]
    assert page.status_code == 200
    assert radio_values(html, "answer") == [str(n) for n in range(1, len(first.panel_order) + 1)]
    assert radio_values(html, "confidence") == ["1", "2", "3", "4"]
    shown = [TrialPanel.objects.get(pk=pk).url for pk in first.panel_order]
    assert [html.index(url) for url in shown] == sorted(
        html.index(url) for url in shown
    )  # in the stored order
    assert (
        "Explanation 1" in html
        and "Which explanation belongs to the class the model decided for?" in html
    )
    assert "The model says" not in html  # distinction never names the prediction
    words = {
        name for name in first.trial.dataset.class_names if not name.isdigit()
    }  # "of 8" is the progress
    assert not find_leaks(html, words | forbidden_terms(study))


def test_panel_orders_differ_between_participants(tmp_path):
    study = usefulness_study(tmp_path, DISTINCTION, per_cell=3)
    orders = {
        tuple(
            TrialItem.objects.filter(participant=ready(Client(), study))
            .order_by("trial_id")
            .values_list("prediction_panel", flat=True)
        )
        for _ in range(6)
    }
    assert len(orders) > 1


def test_agreement_page_names_the_prediction_and_asks_correct_or_incorrect(tmp_path):
    study = usefulness_study(tmp_path, AGREEMENT)
    client = Client()
    participant = ready(client, study)
    item = TrialItem.objects.select_related("trial").get(participant=participant, position=1)
    html = client.get(current_url(client, participant)).content.decode()
    assert f"The model says: <strong>{item.trial.predicted_class}</strong>" in html
    assert radio_values(html, "answer") == ["correct", "incorrect"]
    assert "The model is right" in html and "The model is wrong" in html
    assert html.count('class="systems trial panels-1"') == 1 and item.prediction_panel is None
    assert not find_leaks(html, forbidden_terms(study))


def test_an_answer_is_saved_once_and_a_second_submit_moves_on(tmp_path):
    study = usefulness_study(tmp_path, AGREEMENT)
    client = Client()
    participant = ready(client, study)
    url = current_url(client, participant)
    shown = form_value(client.get(url).content.decode(), "shown")
    data = {"shown": shown, "answer": "incorrect", "confidence": "4", "client_ms": "600"}
    first, again = client.post(url, data), client.post(url, data | {"answer": "correct"})
    question2 = reverse("studyapp:question", args=[participant.token, 2])
    assert first["Location"] == again["Location"] == question2
    assert list(
        TrialAnswer.objects.values_list("item__position", "answer", "confidence", "response_ms")
    ) == [(1, "incorrect", 4, 600)]
    participant.refresh_from_db()
    assert participant.answered == 1
    # reload, back button and another browser all resume at the next trial
    assert client.get(url)["Location"] == question2
    assert (
        Client().get(reverse("studyapp:resume", args=[participant.token]))["Location"] == question2
    )
    assert client.get(study.get_absolute_url())["Location"] == question2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"answer": "correct"}, "Please say how sure you are."),
        ({"confidence": "2"}, "Please choose an answer."),
        ({"answer": "correct", "confidence": "5"}, "Select a valid choice."),
        ({"answer": "maybe", "confidence": "2"}, "Select a valid choice."),
    ],
)
def test_answer_and_confidence_are_required_with_a_clear_error(tmp_path, data, message):
    study = usefulness_study(tmp_path, AGREEMENT)
    client = Client()
    participant = ready(client, study)
    url = current_url(client, participant)
    shown = form_value(client.get(url).content.decode(), "shown")
    response = client.post(url, {"shown": shown, **data})
    assert response.status_code == 400 and message in response.content.decode()
    assert 'role="alert"' in response.content.decode()
    assert not TrialAnswer.objects.exists()


def test_forward_simulation_runs_pre_learn_post_in_the_balanced_arms(tmp_path):
    study = usefulness_study(tmp_path, FORWARD_SIMULATION)
    people = [ready(Client(), study) for _ in range(6)]
    assert Counter(p.arm for p in people) == {"bla_t": 2, "cam": 2, "none": 2}
    client = Client()
    participant = ready(client, study)
    items = list(
        TrialItem.objects.filter(participant=participant)
        .select_related("trial")
        .order_by("position")
    )
    phases = [item.trial.phase for item in items]
    assert phases == ["pre"] * 4 + ["learn"] * 4 + ["post"] * 4
    assert {item.trial.arm for item in items if item.trial.phase == "learn"} == {participant.arm}
    pre = client.get(current_url(client, participant)).content.decode()
    first = items[0].trial
    assert (
        radio_values(pre, "answer") == first.dataset.class_names
        and "Which class will the model decide" in pre
    )
    assert "The model says" not in pre and "panels-0" in pre
    for _ in range(4):
        answer_trial(client, participant)
    learn_url = current_url(client, participant)
    learn = client.get(learn_url).content.decode()
    assert f"The model says: <strong>{items[4].trial.predicted_class}</strong>" in learn
    assert radio_values(learn, "answer") == [] and 'name="next"' in learn
    assert ("panels-1" in learn) == (participant.arm != "none")
    response = client.post(learn_url, {"shown": form_value(learn, "shown"), "client_ms": "700"})
    assert response.status_code == 302
    stored = TrialAnswer.objects.get(item=items[4])
    assert (stored.answer, stored.confidence, stored.response_ms) == ("", None, 700)


def test_an_attention_check_instructs_an_answer_among_the_trials(tmp_path):
    study = usefulness_study(tmp_path, DISTINCTION, checks=2)
    client = Client()
    participant = ready(client, study)
    assert participant.sequence_length == 10
    checks = list(TrialItem.objects.filter(participant=participant).exclude(expected_answer=""))
    assert len(checks) == 2
    for item in TrialItem.objects.filter(participant=participant).order_by("position"):
        html = client.get(current_url(client, participant)).content.decode()
        if item.expected_answer:
            assert (
                f"choose <strong>Explanation {item.expected_answer}</strong> for this question"
                in html
            )
            answer_trial(client, participant, answer=item.expected_answer)
        else:
            assert "To show that you are reading" not in html
            answer_trial(client, participant)
    rows = _export(study, tmp_path / "export")
    assert verify_export(tmp_path / "export") == []
    assert len(rows["trials.csv"]) == 10  # the 8 trials of the design and the 2 checks
    instructed = {int(r["position"]): r["expected_answer"] for r in rows["trials.csv"] if r["expected_answer"]}
    assert instructed == {item.position: item.expected_answer for item in checks}
    manifest = json.loads(
        (tmp_path / "export" / "export_manifest.json").read_text(encoding="utf-8")
    )
    assert manifest["database_rows"] | {} == {
        "answers": 0,
        "attention_checks": 2,
        "attention_checks_passed": 2,
        "participants": 1,
        "trials": 8,
    }


@pytest.mark.parametrize("task", TASKS)
def test_the_export_writes_trials_csv_scored_against_the_model(task, tmp_path):
    study = usefulness_study(tmp_path, task)
    done = take_trials(Client(), study)
    half = ready(Client(), study)
    answer_trial(Client(), half)
    rows = _export(study, tmp_path / "export")
    assert verify_export(tmp_path / "export") == []
    with (tmp_path / "export" / "trials.csv").open(encoding="utf-8") as handle:
        assert next(csv.reader(handle)) == list(TRIAL_COLUMNS)
    trials = rows["trials.csv"]
    assert len(trials) == done.sequence_length + 1
    mine = [r for r in trials if r["participant"] == done.public_id]
    assert [int(r["position"]) for r in mine] == list(range(1, done.sequence_length + 1))
    for row in mine:
        item = TrialItem.objects.select_related("trial__dataset", "answer").get(
            participant=done, position=row["position"]
        )
        trial, answer = item.trial, item.answer
        classes = [TrialPanel.objects.get(pk=pk).class_name for pk in item.panel_order]
        learning = trial.phase == "learn"
        expected_match = (
            ""
            if learning
            else str(
                matches_model(
                    task,
                    answer.answer,
                    predicted_class=trial.predicted_class,
                    model_correct=trial.model_correct,
                    prediction_panel=item.prediction_panel,
                )
            ).lower()
        )
        assert row == {
            "study": study.slug,
            "participant": done.public_id,
            "position": str(item.position),
            "trial_id": trial.trial_id,
            "task": task,
            "phase": trial.phase,
            "arm": done.arm,
            "method": trial.method,
            "dataset": trial.dataset.key,
            "image_id": trial.image_id,
            "true_class": trial.true_class,
            "predicted_class": trial.predicted_class,
            "model_correct": str(trial.model_correct).lower(),
            "panel_classes": panel_classes_value(classes),
            "prediction_panel": "" if item.prediction_panel is None else str(item.prediction_panel),
            "answer": answer.answer,
            "matches_model": expected_match,
            "confidence": "" if learning else "3",
            "response_ms": str(answer.response_ms),
            "answered_at": row["answered_at"],
            "expected_answer": "",
        }
        if task == DISTINCTION:
            assert classes[item.prediction_panel - 1] == trial.predicted_class
            assert (
                row["matches_model"] == str(item.prediction_panel == 1).lower()
            )  # the first panel was chosen
    participants = {r["participant"]: r for r in rows["participants.csv"]}
    assert (
        participants[done.public_id]["arm"] == done.arm
        and participants[done.public_id]["status"] == "completed"
    )
    assert (participants[half.public_id]["arm"] != "") == (task == FORWARD_SIMULATION)
    assert rows["answers.csv"] == []


def test_a_preference_study_exports_as_before(study, tmp_path):
    call_command(
        "export_responses",
        "--study",
        study.slug,
        "--out",
        str(tmp_path / "out"),
        stdout=io.StringIO(),
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "answers.csv",
        "export_manifest.json",
        "participants.csv",
    ]
    header = (tmp_path / "out" / "participants.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.endswith(",simulated,language,outcome")


@pytest.mark.parametrize("task", TASKS)
def test_a_whole_usefulness_study_reveals_no_method_or_trial_metadata(task, tmp_path):
    study = usefulness_study(tmp_path, task, checks=1)
    client = Client()
    participant = ready(client, study)
    terms = forbidden_terms(study)
    assert {"bla_t", "cam"} <= terms and "mnist38-t0" in terms and "mnist38-img0" in terms
    seen = []
    for _ in range(participant.sequence_length):
        page = client.get(current_url(client, participant))
        seen.append(page.content.decode())
        seen.extend(f"{k}: {v}" for k, v in page.headers.items())
        answer_trial(client, participant)
    done = client.get(current_url(client, participant))
    assert done.status_code == 200 and "completion code" in done.content.decode()
    assert find_leaks("\n".join(seen), terms) == []


@pytest.mark.parametrize("task", TASKS)
def test_every_trial_page_is_german_for_a_german_participant(task, tmp_path):
    study = usefulness_study(tmp_path, task, checks=1)
    Study.objects.filter(pk=study.pk).update(language="de")
    client = Client()
    participant = ready(client, study)
    instructions = client.get(
        reverse("studyapp:instructions", args=[participant.token])
    )  # read: moves on
    assert instructions.status_code == 302
    Participant.objects.filter(pk=participant.pk).update(instructions_at=None)
    german = client.get(reverse("studyapp:instructions", args=[participant.token])).content.decode()
    assert "Ihre Aufgabe" in german or "Bitte" in german
    client.post(reverse("studyapp:instructions", args=[participant.token]))
    for _ in range(participant.sequence_length):
        page = client.get(current_url(client, participant))
        html = page.content.decode()
        assert page["Content-Language"] == "de" and "Frage" in html and "Weiter" in html
        assert "Question" not in html and "Next" not in html and "The model" not in html
        if radio_values(html, "answer"):
            assert "Wie sicher sind Sie?" in html and "4 – sicher" in html
        answer_trial(client, participant)


@pytest.mark.parametrize("task", TASKS)
def test_bad_tokens_positions_and_forged_stamps_never_fail_with_a_server_error(task, tmp_path):
    study = usefulness_study(tmp_path, task)
    client = Client()
    participant = ready(client, study)
    token = participant.token
    for url in (
        f"/p/{token}/q/0/",
        f"/p/{token}/q/99/",
        f"/p/{token}/q/2/",
        f"/p/{token[:-1]}x/q/1/",
        "/p/nobody/q/1/",
        f"/p/{token}/q/99999999999/",
    ):
        assert client.get(url).status_code in (302, 404), url
        assert client.post(url, {"answer": "1", "confidence": "1", "shown": "x"}).status_code in (
            302,
            404,
        ), url
    url = current_url(client, participant)
    for data in (
        {},
        {"shown": "forged", "answer": "1", "confidence": "3"},
        {"shown": "x" * 5000},
        {"shown": form_value(client.get(url).content.decode(), "shown"), "confidence": "\x00"},
    ):
        response = client.post(url, data)
        assert response.status_code == 400, data
    other = ready(Client(), study)
    stolen = form_value(Client().get(current_url(client, other)).content.decode(), "shown")
    assert (
        client.post(url, {"shown": stolen, "answer": "correct", "confidence": "2"}).status_code
        == 400
    )
    assert not TrialAnswer.objects.exists()


def test_the_dashboard_of_a_usefulness_study_shows_its_progress_and_participants(
    tmp_path, admin_client
):
    study = usefulness_study(tmp_path, FORWARD_SIMULATION)
    done = take_trials(Client(), study)
    ready(Client(), study)
    page = admin_client.get(reverse("studyapp:dashboard", args=[study.slug]))
    html = page.content.decode()
    assert page.status_code == 200 and done.public_id in html
    assert admin_client.get(reverse("studyapp:export", args=[study.slug])).status_code == 200
    assert admin_client.get(reverse("studyapp:preview", args=[study.slug])).status_code in (
        200,
        302,
    )
