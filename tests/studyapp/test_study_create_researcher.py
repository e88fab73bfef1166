"""``manage.py create_researcher`` prints a password that works once, and never resets it."""
from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_created_login_opens_the_dashboard_and_a_second_call_changes_nothing(django_user_model, capsys):
    call_command("create_researcher", "--username", "ada")
    password = re.search(r"password: (\S+)", capsys.readouterr().out).group(1)
    assert len(password) >= 16
    client = Client()
    assert client.login(username="ada", password=password)
    assert client.get(reverse("studyapp:dashboard_index")).status_code == 200
    call_command("create_researcher", "--username", "ada")
    assert "already exists" in capsys.readouterr().out
    assert django_user_model.objects.get(username="ada").check_password(password)
