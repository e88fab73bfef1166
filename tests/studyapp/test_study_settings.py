"""Settings and deployment: production settings pass check --deploy; missing secrets fail with one
sentence; the app's own settings have defaults and system checks for bad values."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import CheckMessage, run_checks
from django.core.exceptions import ImproperlyConfigured

from studyapp.conf import from_environment, study_settings

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


@pytest.mark.parametrize(("name", "value", "check_id", "sentence"), [
    ("STUDY_ENROL_LIMIT", 0, "studyapp.E002", "STUDY_ENROL_LIMIT is 0; it must be at least 1."),
    ("STUDY_PROXY_COUNT", -1, "studyapp.E002", "STUDY_PROXY_COUNT is -1; it must be at least 0."),
    ("LOGIN_LOCKOUT_S", 0, "studyapp.E002", "LOGIN_LOCKOUT_S is 0; it must be at least 1."),
    ("STUDY_UPLOAD_MAX_MEMBERS", "many", "studyapp.E001",
     "STUDY_UPLOAD_MAX_MEMBERS must be an integer, got 'many'."),
    ("STUDY_IMPORT_MAX_SIDE", True, "studyapp.E001",
     "STUDY_IMPORT_MAX_SIDE must be an integer, got True."),
    ("STUDY_BACKUP_KEY", 12345, "studyapp.E003", "STUDY_BACKUP_KEY must be a string, got int."),
    ("STUDY_CSP", {"img-src": None}, "studyapp.E004",
     "STUDY_CSP must map directive names to strings, got {'img-src': None}."),
    ("STUDY_BACKUP_KEY", "secret", "studyapp.W001",
     "STUDY_BACKUP_KEY is 6 characters long; a key needs at least 32."),
])  # fmt: skip
def test_a_bad_setting_is_one_system_check_message_naming_it(settings, name, value, check_id,
                                                             sentence):
    assert _study_checks() == []
    setattr(settings, name, value)
    [message] = _study_checks()
    assert (message.id, message.msg) == (check_id, sentence)
    assert message.hint.startswith(f"{name}: ")
    assert message.is_serious() == check_id.startswith("studyapp.E")


def test_a_setting_missing_from_the_settings_module_takes_its_default(settings):
    del settings.STUDY_ENROL_LIMIT, settings.LOGIN_FAILURE_LIMIT
    limits = study_settings()
    assert (limits.study_enrol_limit, limits.login_failure_limit) == (30, 5)
    assert _study_checks() == []


def test_a_setting_of_the_wrong_type_stops_its_reader_with_the_checks_sentence(settings):
    settings.STUDY_ENROL_WINDOW_S = "ten minutes"
    sentence = "^STUDY_ENROL_WINDOW_S must be an integer, got 'ten minutes'.$"
    with pytest.raises(ImproperlyConfigured, match=sentence):
        study_settings()


def test_the_environment_sets_the_app_settings_and_the_rest_keep_their_defaults():
    environ = {"STUDY_ENROL_LIMIT": "45", "STUDY_PROXY_COUNT": "x", "STUDY_CSP": "ignored"}
    values = from_environment(environ)
    assert (values["STUDY_ENROL_LIMIT"], values["STUDY_PROXY_COUNT"]) == (45, "x")
    assert (values["STUDY_ENROL_WINDOW_S"], values["STUDY_BACKUP_KEY"]) == (600, "")
    assert values["STUDY_CSP"] == {}
    assert len(values) == 14 and all(name.startswith(("STUDY_", "LOGIN_")) for name in values)


def test_manage_py_check_refuses_a_bad_value_from_the_environment():
    result = _manage("check", STUDY_ENROL_WINDOW_S="-5", STUDY_IMPORT_MAX_PIXELS="16MP")
    assert result.returncode != 0
    assert "(studyapp.E002) STUDY_ENROL_WINDOW_S is -5; it must be at least 1." in result.stderr
    assert "(studyapp.E001) STUDY_IMPORT_MAX_PIXELS must be an integer, got '16MP'." in (
        result.stderr)


def _study_checks() -> list[CheckMessage]:
    return [message for message in run_checks() if message.id.startswith("studyapp.")]
