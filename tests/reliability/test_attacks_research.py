"""Attacks as a researcher or on the researcher login (issue 15): other researchers' studies, staff without
permissions, password guessing, weak passwords. Each asserts the refusal and that nothing changed."""
from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth.forms import SetPasswordForm
from django.contrib.auth.models import Group, User
from django.contrib.auth.password_validation import validate_password
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import URLPattern, get_resolver, reverse
from study_helpers import researcher_client, take_study

from studyapp.console.access import researcher_group
from studyapp.models import Participant, Study
from studyapp.operations.bundle import import_bundle, validate_bundle

pytestmark = pytest.mark.django_db


@pytest.fixture
def other_study(study, tmp_path) -> Study:
    """A second open study (the same bundle, no attention checks like ``study``), owned by nobody yet."""
    result = import_bundle(validate_bundle(tmp_path / "bundle"), "second", title="Second study")
    Study.objects.filter(pk=result.study.pk).update(status=Study.Status.OPEN, questions_per_cell=2, attention_checks=0)
    return Study.objects.get(pk=result.study.pk)


def _study_urls(study: Study, participant: Participant) -> list[str]:
    urls = []
    for pattern in get_resolver().url_patterns:
        for inner in getattr(pattern, "url_patterns", []):
            if isinstance(inner, URLPattern) and str(inner.pattern).startswith("research/<"):
                values = {"slug": study.slug, "public_id": participant.public_id, "position": 1}
                urls.append(reverse(f"studyapp:{inner.name}", kwargs={k: values[k] for k in inner.pattern.regex.groupindex}))
    return urls


def _rows() -> list[tuple]:
    return list(Participant.objects.order_by("pk").values_list("pk", "excluded", "exclusion_reason"))


def test_a_researcher_sees_and_changes_only_their_own_studies(study, other_study):
    mine, theirs = take_study(Client(), study), take_study(Client(), other_study)
    ada, bob = researcher_client("ada", study), researcher_client("bob", other_study)
    urls = _study_urls(other_study, theirs)
    assert len(urls) == 14  # the planner page (issue 28) is the 14th
    before = _rows()
    for url in urls:
        for method in ("get", "post"):
            assert getattr(ada, method)(url, {"reason": "x"}).status_code in (403, 405), (method, url)
    assert _rows() == before  # bob's participant neither excluded nor deleted
    index = ada.get(reverse("studyapp:dashboard_index")).content.decode()
    assert f"/research/{study.slug}/" in index and f"/research/{other_study.slug}/" not in index
    assert bob.get(reverse("studyapp:export", args=[other_study.slug])).status_code == 200
    assert ada.get(reverse("studyapp:dashboard", args=[study.slug])).status_code == 200
    assert ada.post(reverse("studyapp:exclude", args=[study.slug, mine.public_id])).status_code == 302
    # The admin follows the same rule: lists, object pages and filters.
    participants = ada.get(reverse("admin:studyapp_participant_changelist")).content.decode()
    assert mine.public_id in participants and theirs.public_id not in participants and "Second study" not in participants
    assert ada.get(reverse("admin:studyapp_participant_change", args=[theirs.pk])).status_code == 302  # "doesn't exist"
    assert ada.get(reverse("admin:studyapp_study_change", args=[other_study.pk])).status_code == 302
    assert ada.post(reverse("admin:studyapp_participant_delete", args=[theirs.pk]), {"post": "yes"}).status_code == 302
    assert Participant.objects.filter(pk=theirs.pk).exists()


def test_staff_without_permissions_gets_nothing_and_groups_and_superusers_see_what_they_should(study, other_study):
    participant = take_study(Client(), study)
    bare = Client()
    bare.force_login(User.objects.create_user("staff", password="x" * 12, is_staff=True))
    study.researchers.add(User.objects.get(username="staff"))  # listed, but without any permission
    before = _rows()
    for url in _study_urls(study, participant):
        for method in ("get", "post"):
            assert getattr(bare, method)(url).status_code in (403, 405), (method, url)
    assert "pilot" not in bare.get(reverse("studyapp:dashboard_index")).content.decode()
    assert bare.get(reverse("admin:studyapp_participant_changelist")).status_code == 403
    assert _rows() == before
    lab = Group.objects.create(name="lab")
    study.research_groups.add(lab)
    colleague = User.objects.create_user("cy", password="x" * 12, is_staff=True)
    colleague.groups.add(researcher_group(), lab)
    shared = Client()
    shared.force_login(colleague)
    assert shared.get(reverse("studyapp:dashboard", args=[study.slug])).status_code == 200
    assert shared.get(reverse("studyapp:dashboard", args=[other_study.slug])).status_code == 403
    admin = Client()
    admin.force_login(User.objects.create_superuser("root", password="x" * 12))
    assert all(admin.get(reverse("studyapp:dashboard", args=[s.slug])).status_code == 200 for s in (study, other_study))


def test_import_gives_the_study_its_owner_and_refuses_an_unknown_one(bundle_dir, media_root):
    call_command("create_researcher", "--username", "ada", stdout=io.StringIO())
    with pytest.raises(CommandError, match="--owner 'mallory' is not a staff login"):
        call_command("import_stimuli", str(bundle_dir), "--study", "owned", "--owner", "mallory", stdout=io.StringIO())
    assert not Study.objects.exists() and not list(media_root.rglob("*.png"))
    call_command("import_stimuli", str(bundle_dir), "--study", "owned", "--owner", "ada", stdout=io.StringIO())
    assert list(Study.objects.get(slug="owned").researchers.values_list("username", flat=True)) == ["ada"]


def _login(client: Client, username: str, password: str, **extra):
    return client.post(reverse("admin:login"), {"username": username, "password": password, "next": "/research/"},
                       **extra)  # fmt: skip


def test_password_guessing_is_locked_out_per_account_and_per_client_until_unlocked(study, settings):
    settings.LOGIN_FAILURE_LIMIT, settings.LOGIN_CLIENT_FAILURE_LIMIT = 5, 8
    User.objects.create_user("ada", password="correct horse battery", is_staff=True)
    here = {"REMOTE_ADDR": "203.0.113.7"}
    guesses = [_login(Client(), "ada", f"guess{i}", REMOTE_ADDR=f"198.51.100.{i}").status_code for i in range(5)]
    assert guesses == [200] * 5  # the login page again, with the usual error
    refused = _login(Client(), "ada", "correct horse battery", **here)
    assert refused.status_code == 200 and "_auth_user_id" not in refused.client.session
    assert "Too many failed logins" in refused.content.decode() and "unlock_logins" in refused.content.decode()
    assert _login(Client(), "ADA", "correct horse battery", **here).client.session.get("_auth_user_id") is None
    out = io.StringIO()
    call_command("unlock_logins", "--username", "ada", stdout=out)
    assert "unlocked login 'ada'" in out.getvalue()
    assert _login(Client(), "ada", "correct horse battery", **here).status_code == 302
    # One client guessing many accounts is stopped too, also for an account it never tried.
    User.objects.create_user("bob", password="another long secret", is_staff=True)
    for i in range(8):
        _login(Client(), f"user{i}", "x", **here)
    assert "Too many failed logins" in _login(Client(), "bob", "another long secret", **here).content.decode()
    assert _login(Client(), "bob", "another long secret", REMOTE_ADDR="192.0.2.9").status_code == 302
    call_command("unlock_logins", stdout=io.StringIO())
    assert _login(Client(), "bob", "another long secret", **here).status_code == 302


def test_weak_passwords_are_refused_and_create_researcher_makes_one_that_passes(django_user_model):
    user = django_user_model.objects.create_user("ada", is_staff=True)
    for weak in ("a", "password", "12345678901", "qwerty123"):
        assert not SetPasswordForm(user, {"new_password1": weak, "new_password2": weak}).is_valid(), weak
    out = io.StringIO()
    call_command("create_researcher", "--username", "bob", stdout=out)
    password = re.search(r"password: (\S+)", out.getvalue()).group(1)
    bob = django_user_model.objects.get(username="bob")
    validate_password(password, bob)  # raises if any validator refuses it
    assert bob.is_staff and not bob.is_superuser and bob.groups.filter(name="researchers").exists()
