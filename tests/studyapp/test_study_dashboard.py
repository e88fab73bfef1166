"""Researcher side: login required, counts, answers per cell, exposure, exclusion and deletion."""
from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from study_helpers import take_study

from studyapp.models import Answer, Participant, SequenceItem
from studyapp.participation.design import pair_exposure
from studyapp.participation.flow import enrol

pytestmark = pytest.mark.django_db


def test_research_pages_require_staff_login(study, django_user_model):
    anonymous = Client()
    plain = Client()
    plain.force_login(django_user_model.objects.create_user("p", password="x"))
    p = enrol(study)
    for url in (
        reverse("studyapp:dashboard_index"),
        reverse("studyapp:dashboard", args=[study.slug]),
        reverse("studyapp:export", args=[study.slug]),
        reverse("studyapp:delete", args=[study.slug, p.public_id]),
    ):
        for client in (anonymous, plain):
            response = client.get(url)
            assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert anonymous.post(reverse("studyapp:exclude", args=[study.slug, p.public_id])).status_code == 302
    assert anonymous.post(reverse("studyapp:delete", args=[study.slug, p.public_id])).status_code == 302
    assert Participant.objects.filter(pk=p.pk, excluded=False).exists()


def test_dashboard_shows_counts_cells_and_exposure(study, admin_client):
    take_study(Client(), study)
    enrol(study)
    page = admin_client.get(reverse("studyapp:dashboard", args=[study.slug])).content.decode()
    assert '<dd data-count="started">2</dd>' in page
    assert '<dd data-count="completed">1</dd>' in page
    assert '<dd data-count="incomplete">1</dd>' in page
    for cell in ("bla_t_vs_cam/mnist38", "bla_t_vs_random/catsdogs", "bla_t_vs_l2x_f/mnist38"):
        assert f'<td data-cell="{cell}">2</td>' in page
    # Which pairs two participants got depends on their random tokens; the page must show the spread.
    shown = pair_exposure(study.pk).values()
    assert f"shown to {min(shown)}–{max(shown)} participants each" in page
    assert '<meta http-equiv="refresh" content="15">' in page
    assert "refresh" not in admin_client.get(reverse("studyapp:dashboard", args=[study.slug]) + "?refresh=0").content.decode().split("</head>")[0]


def test_exclude_include_and_delete_participant(study, admin_client):
    done = take_study(Client(), study)
    url = reverse("studyapp:exclude", args=[study.slug, done.public_id])
    assert admin_client.post(url, {"reason": "failed sanity check"}).status_code == 302
    done.refresh_from_db()
    assert (done.status, done.exclusion_reason) == ("excluded", "failed sanity check")
    page = admin_client.get(reverse("studyapp:dashboard", args=[study.slug])).content.decode()
    assert '<dd data-count="excluded">1</dd>' in page and '<dd data-count="completed">0</dd>' in page
    admin_client.post(reverse("studyapp:include", args=[study.slug, done.public_id]))
    done.refresh_from_db()
    assert done.status == "completed" and done.exclusion_reason == ""

    delete = reverse("studyapp:delete", args=[study.slug, done.public_id])
    confirm = admin_client.get(delete)
    assert "12 answers" in confirm.content.decode()
    assert Participant.objects.filter(pk=done.pk).exists()  # GET only asks
    admin_client.post(delete)
    assert not Participant.objects.filter(pk=done.pk).exists()
    assert not SequenceItem.objects.exists() and not Answer.objects.exists()


def test_admin_pages_load(study, admin_client):
    done = take_study(Client(), study)
    for name, args in (
        ("admin:studyapp_study_changelist", []), ("admin:studyapp_study_change", [study.pk]),
        ("admin:studyapp_participant_changelist", []), ("admin:studyapp_participant_change", [done.pk]),
        ("admin:studyapp_pair_changelist", []), ("admin:studyapp_answer_changelist", []),
        ("admin:studyapp_bundle_changelist", []),
    ):  # fmt: skip
        assert admin_client.get(reverse(name, args=args)).status_code == 200, name


def _study_page_urls(slug: str, public_id: str) -> list[str]:
    """Every research URL of one study (all patterns under research/<slug>/), new pages included."""
    from django.urls import URLPattern, get_resolver

    values = {"slug": slug, "public_id": public_id, "position": 1}
    urls = []
    for pattern in get_resolver().url_patterns:
        for inner in getattr(pattern, "url_patterns", []):
            if isinstance(inner, URLPattern) and str(inner.pattern).startswith("research/<slug:slug>/"):
                urls.append(reverse(f"studyapp:{inner.name}", kwargs={k: values[k] for k in inner.pattern.regex.groupindex}))
    return urls


def test_a_researcher_without_access_gets_403_on_every_page_of_the_study(study):
    from study_helpers import researcher_client

    from studyapp.models import Study

    participant = take_study(Client(), study)
    outsider = researcher_client("eve", Study.objects.create(slug="eves", title="Eve's"))
    urls = _study_page_urls(study.slug, participant.public_id)
    assert len(urls) == 14 and reverse("studyapp:preview_question", args=[study.slug, 1]) in urls
    before = list(Participant.objects.values_list("pk", "excluded"))
    for url in urls:
        statuses = {method: getattr(outsider, method)(url, {"reason": "x", "status": "closed"}).status_code
                    for method in ("get", "post")}  # fmt: skip
        assert set(statuses.values()) <= {403, 405} and 403 in statuses.values(), (url, statuses)
    assert list(Participant.objects.values_list("pk", "excluded")) == before
    study.refresh_from_db()
    assert study.status == "open"
    assert outsider.get(reverse("studyapp:dashboard", args=["no-such-study"])).status_code == 404


def test_a_study_from_upload_to_export(bundle_dir, media_root):
    """upload → draft → German texts → preview (nothing recorded) → open → a participant in German → export."""
    import csv
    import io
    import zipfile

    from study_helpers import researcher_client
    from test_study_preview import rows, walk_preview
    from test_study_texts import settings_of
    from test_study_upload import zip_folder

    from studyapp.models import Study

    ada = researcher_client("ada")
    response = ada.post(reverse("studyapp:new_study"),
                        {"title": "Pilot", "slug": "pilot", "attention_checks": "1", "bundle": zip_folder(bundle_dir)})  # fmt: skip
    assert response.status_code == 302
    study = Study.objects.get(slug="pilot")
    assert study.status == Study.Status.DRAFT
    assert Client().post(study.get_absolute_url(), {"agree": "on"}).status_code == 403  # a draft takes nobody
    assert ada.post(reverse("studyapp:texts", args=[study.slug]), settings_of(study, language="de")).status_code == 302
    before = rows()
    walk_preview(ada, study)
    assert rows() == before
    assert ada.post(reverse("studyapp:status", args=[study.slug]), {"status": "open"}).status_code == 302
    participant_client = Client()
    assert '<html lang="de"' in participant_client.get(study.get_absolute_url()).content.decode()
    participant = take_study(participant_client, study)
    assert participant.completed_at is not None
    assert participant.language == "de"
    export = ada.get(reverse("studyapp:export", args=[study.slug]))
    with zipfile.ZipFile(io.BytesIO(export.content)) as archive:
        people = list(csv.DictReader(io.StringIO(archive.read("participants.csv").decode("utf-8-sig"))))
        answers = list(csv.DictReader(io.StringIO(archive.read("answers.csv").decode("utf-8-sig"))))
    assert [(p["participant"], p["language"]) for p in people] == [(participant.public_id, "de")]
    assert len(answers) == participant.sequence_length
