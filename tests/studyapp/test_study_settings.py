"""Settings and deployment: production settings pass check --deploy; missing secrets fail with one sentence."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    dropped = ("SECRET_KEY", "ALLOWED_HOSTS", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE")
    environment = {k: v for k, v in os.environ.items() if k not in dropped}
    environment.update(env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def test_production_settings_pass_check_deploy():
    result = _manage(
        "check", "--deploy", "--fail-level", "WARNING",
        DJANGO_SETTINGS_MODULE="config.settings_production", SECRET_KEY="k" * 10 + "x9!Qz#pL2@vN8$rT5%wY7^bH3&mJ6*cF4(dS1)gK0-aE" * 2,
        ALLOWED_HOSTS="study.example.org",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_settings_refuse_a_missing_secret_key():
    result = _manage("check", DJANGO_SETTINGS_MODULE="config.settings_production", ALLOWED_HOSTS="x.org")
    assert result.returncode != 0
    assert "SECRET_KEY must be set in the environment" in result.stderr


def test_database_url_selects_the_database(tmp_path):
    code = "from django.db import connection; print(connection.vendor, connection.settings_dict['NAME'])"
    result = _manage("shell", "-c", code, DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3")
    assert result.stdout.splitlines()[-1].split() == ["sqlite", f"{tmp_path}/db.sqlite3"]
