"""``manage.py create_researcher``: a staff login for the dashboard and admin, password printed once."""
from __future__ import annotations

import secrets
import shlex
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandParser

from studyapp.console.access import researcher_group


def new_password(user: Any) -> str:
    """A random password (96 bits) that the configured password validators accept for this user."""
    while True:
        password = secrets.token_urlsafe(12)
        try:
            validate_password(password, user)
        except ValidationError:
            continue
        return password


def database_url() -> str:
    """The DATABASE_URL of the database this command uses (a SQLite file as an absolute path; no password)."""
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    user = f"{db['USER']}@" if db.get("USER") else ""
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{user}{db.get('HOST') or 'localhost'}{port}/{db['NAME']}"


def changepassword_hint(username: str) -> str:
    """The command line that sets a new password for ``username`` in this very database."""
    line = f"DATABASE_URL={shlex.quote(database_url())} python manage.py changepassword {shlex.quote(username)}"
    return line + (" (add the database's password to the URL)" if settings.DATABASES["default"].get("PASSWORD") else "")


class Command(BaseCommand):
    help = (
        "Create a researcher login (staff, in the 'researchers' group: sees the studies they own or share) "
        "with a random password that is printed once; an existing login is left as it is."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="researcher", help="login name (default: %(default)s)")
        parser.add_argument("--superuser", action="store_true", help="an administrator who sees every study")

    def handle(self, *args: Any, **options: Any) -> None:
        users = get_user_model()
        username = options["username"]
        if users.objects.filter(username=username).exists():
            self.stdout.write(
                f"researcher login {username!r} already exists (its password was printed when it was created; "
                f"set a new one with: {changepassword_hint(username)})"
            )
            return
        user = users(username=username, is_staff=True, is_superuser=options["superuser"])
        password = new_password(user)
        user.set_password(password)
        user.save()
        user.groups.add(researcher_group())
        role = "administrator, sees every study" if options["superuser"] else "sees the studies it owns or shares"
        self.stdout.write(f"researcher login: {username}  password: {password}  (shown only now; {role})")
