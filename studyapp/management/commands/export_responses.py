"""``manage.py export_responses --study SLUG --out DIR``: write answers.csv and participants.csv (docs/formats.md)."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from studyapp.models import Study
from studyapp.operations.export import write_export


class Command(BaseCommand):
    help = "Write a study's answers.csv, participants.csv (a usefulness study's trials.csv) and export_manifest.json (SHA-256, row counts) into a folder."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--study", required=True, help="slug of the study to export")
        parser.add_argument("--out", required=True, help="folder to write answers.csv and participants.csv into")

    def handle(self, *args: Any, **options: Any) -> None:
        study = Study.objects.filter(slug=options["study"]).first()
        if study is None:
            known = ", ".join(Study.objects.values_list("slug", flat=True)) or "none"
            raise CommandError(f"--study {options['study']!r} does not exist (studies: {known}).")
        try:
            counts = write_export(study, options["out"])
        except OSError as exc:
            raise CommandError(f"--out {options['out']!r} cannot be written ({exc.strerror}).") from None
        trials = f", {counts['trials.csv']} trials" if "trials.csv" in counts else ""
        files = "answers.csv, participants.csv and trials.csv" if trials else "answers.csv and participants.csv"
        self.stdout.write(
            f"wrote {counts['answers.csv']} answers{trials} and {counts['participants.csv']} participants of study "
            f"{study.slug!r} to {options['out']}/{files} (SHA-256 in export_manifest.json)"
        )
