"""``manage.py backup_study_data --out FILE``: one file with all study data and stimulus images."""
from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from studyapp.operations.backup import BackupError, trial_answers, write_backup


class Command(BaseCommand):
    help = (
        "Write a backup (tar) of all studies, bundles, participants, answers, researcher accounts and stored "
        "images, read in one consistent snapshot; works the same on SQLite and PostgreSQL."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", required=True, help="backup file to write (replaced atomically; its folder is created), e.g. backups/study-2026-11-26.tar")

    def handle(self, *args: Any, **options: Any) -> None:
        quiet = options["verbosity"] == 0 or not sys.stderr.isatty()
        try:
            with tqdm(desc="backing up images", unit="image", disable=quiet) as bar:
                summary = write_backup(options["out"], progress=bar.update)
        except BackupError as exc:
            raise CommandError(str(exc)) from None
        except OSError as exc:
            raise CommandError(f"--out {options['out']!r} cannot be written ({exc.strerror}).") from None
        rows = summary.rows
        self.stdout.write(
            f"wrote backup {summary.path}: {rows['studyapp.study']} studies, {rows['studyapp.participant']} participants, "
            f"{rows['studyapp.answer']} answers, {rows['auth.user']} researcher accounts, {summary.media_files} images"
            + trial_answers(rows)
        )
