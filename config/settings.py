"""Django settings for the BLA Study app; deployment values come from environment variables."""
import os
import tempfile
from pathlib import Path

import dj_database_url

from studyapp.conf import PARTICIPANT_LANGUAGES, from_environment

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("SECRET_KEY", "dev-only-insecure-key-change-me")
DEBUG = os.environ.get("DEBUG", "1") == "1"
ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1,testserver").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "studyapp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "studyapp.security.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
WSGI_APPLICATION = "config.wsgi.application"

# Persistent connections without Django's health check (a SELECT 1 before every request, a fifth of
# a question page's time under load); the participant hot path replaces a dropped connection itself
# (studyapp.participation.flow.question_participant), other views fail once and Django then drops the connection.
DATABASES = {"default": dj_database_url.config(default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}", conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions take the write lock up front (no upgrade deadlocks under concurrent
    # participants); WAL lets readers continue while one participant's answer is written.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests use a file, not shared-cache memory, whose table locks fail at once instead of waiting.
    DATABASES["default"]["TEST"] = {"NAME": str(Path(tempfile.gettempdir()) / f"blastudy-test-{os.getpid()}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Participant pages come in these languages (studyapp/locale); each study picks one or lets the
# browser choose (studyapp.participation.language activates it per page, so no LocaleMiddleware); research pages stay English.
LANGUAGE_CODE = "en"
LANGUAGES = list(PARTICIPANT_LANGUAGES)
TIME_ZONE = "UTC"
USE_TZ = True

STATIC_URL = "static/"
COLLECTED_STATIC = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
# Development serves static files straight from the apps (WHITENOISE_USE_FINDERS); a collected
# folder is used only once `collectstatic` made it (production settings always use it).
STATIC_ROOT = COLLECTED_STATIC if COLLECTED_STATIC.is_dir() else None
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

LOGIN_URL = "admin:login"
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend", "studyapp.console.access.StudyAccessBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"django.contrib.auth.password_validation.{name}"}
    for name in ("UserAttributeSimilarityValidator", "MinimumLengthValidator", "CommonPasswordValidator",
                 "NumericPasswordValidator")
]  # fmt: skip
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_HTTPONLY = True
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

# Request bodies: the site's forms are small and take no files (a file part is refused, never spooled).
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("DATA_UPLOAD_MAX_MEMORY_SIZE", str(256 * 1024)))
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE
FILE_UPLOAD_HANDLERS = ["studyapp.security.NoFileUploads"]

# The app's STUDY_* and LOGIN_* settings (enrolment and login throttles, trusted proxies, import and
# upload limits, the backup key): defaults, meanings and valid values in studyapp/conf.py, checked
# by `manage.py check` (studyapp/checks.py); an environment variable of the same name sets each.
globals().update(from_environment(os.environ))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}
