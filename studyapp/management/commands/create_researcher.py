"""``manage.py create_researcher``: a staff login for the dashboard and admin, password printed once."""
from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = (
        "Create a researcher login (staff, admin rights) with a random password that is printed once; "
        "an existing login is left as it is."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="researcher", help="login name (default: %(default)s)")

    def handle(self, *args: Any, **options: Any) -> None:
        users = get_user_model()
        username = options["username"]
        if users.objects.filter(username=username).exists():
            self.stdout.write(
                f"researcher login {username!r} already exists (its password was printed when it was created; "
                f"set a new one with: manage.py changepassword {username})"
            )
            return
        password = secrets.token_urlsafe(12)
        users.objects.create_superuser(username=username, password=password, email="")
        self.stdout.write(f"researcher login: {username}  password: {password}  (shown only now)")
