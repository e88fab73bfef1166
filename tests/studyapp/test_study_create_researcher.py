"""``manage.py create_researcher`` prints a password that works once, and never resets it."""
from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

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


@pytest.mark.django_db(False)
def test_the_changepassword_hint_names_the_database_in_use(tmp_path):
    """Run from another folder on a relative SQLite path: the hint's DATABASE_URL is that file, absolutely."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "DATABASE_URL": "sqlite:///demo/db.sqlite3", "DJANGO_SETTINGS_MODULE": "config.settings"}
    (tmp_path / "demo").mkdir()

    def manage(*args: str) -> str:
        done = subprocess.run([sys.executable, str(root / "manage.py"), *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300, check=True)  # fmt: skip
        return done.stdout

    manage("migrate", "--no-input", "--verbosity", "0")
    manage("create_researcher", "--username", "ada")
    hint = re.search(r"set a new one with: (.+)\)$", manage("create_researcher", "--username", "ada").strip()).group(1)
    database = tmp_path / "demo" / "db.sqlite3"
    assert hint == f"DATABASE_URL=sqlite:///{database} python manage.py changepassword ada"
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT username FROM auth_user").fetchall() == [("ada",)]
