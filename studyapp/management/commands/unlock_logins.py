"""``manage.py unlock_logins [--username NAME]``: lift the lockout after too many failed logins."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from studyapp.throttle import clear_login_failures


class Command(BaseCommand):
    help = "Forget failed logins: of one account (--username), or of every account and client."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", help="unlock only this login (default: every account and client)")

    def handle(self, *args: Any, **options: Any) -> None:
        username = options["username"]
        removed = clear_login_failures(username)
        scope = f"login {username!r}" if username else "every login and client"
        self.stdout.write(f"unlocked {scope} ({removed} failure counters removed)")
