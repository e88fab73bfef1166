"""``manage.py restore_study_data FILE``: restore a backup into a migrated database, all or nothing."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.serializers.base import DeserializationError
from django.db import DatabaseError

from studyapp.operations.backup import BackupError, restore_backup, trial_answers


class Command(BaseCommand):
    help = (
        "Restore a backup written by backup_study_data into this database (run `migrate` first) and media "
        "folder; its authentication tag and every checksum are verified before anything is written, and a "
        "failure changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("backup", help="backup file written by backup_study_data")
        parser.add_argument("--replace", action="store_true", help="delete the studies this database holds first")
        parser.add_argument(
            "--trust-unsigned", action="store_true",
            help="restore a backup without a valid authentication tag (only one whose origin you trust)",
        )  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            summary = restore_backup(options["backup"], replace=options["replace"], trust_unsigned=options["trust_unsigned"])
        except BackupError as exc:
            raise CommandError(str(exc)) from None
        except (DeserializationError, DatabaseError) as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CommandError(f"{options['backup']}: its data cannot be loaded into this database ({first_line}).") from None
        rows = summary.rows
        self.stdout.write(
            f"restored {summary.path}: {rows['studyapp.study']} studies, {rows['studyapp.participant']} participants, "
            f"{rows['studyapp.answer']} answers, {summary.media_files} images"
            + trial_answers(rows)
        )
