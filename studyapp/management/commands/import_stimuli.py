"""``manage.py import_stimuli BUNDLE --study SLUG``: validate a stimulus bundle and import it all-or-nothing."""
from __future__ import annotations

import sys
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from studyapp.models import Study, attention_check_problem
from studyapp.operations.bundle import BundleError, ValidatedBundle, import_bundle, validate_bundle

MAX_PER_PARTICIPANT = 100  # the bound of Study.questions_per_cell and Study.attention_checks


class Command(BaseCommand):
    help = "Validate a stimulus bundle (manifest.json + images/) and import it into a study; re-importing it changes nothing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("bundle", help="bundle folder holding manifest.json and images/")
        parser.add_argument("--study", required=True, help="slug of the study (created as a draft if missing)")
        parser.add_argument("--title", help="title of a newly created study (default: the slug)")
        parser.add_argument("--open", action="store_true", help="open the study to participants after the import")
        parser.add_argument(
            "--attention-checks", type=int, metavar="N",
            help="attention checks per participant (default: 2 for a new study, an existing study keeps its own)",
        )  # fmt: skip
        parser.add_argument(
            "--questions-per-comparison", type=int, metavar="N", dest="questions_per_cell",
            help="questions each participant answers per comparison (question type) and dataset, 1 to 100 "
                 "(default: 4 for a new study, an existing study keeps its own)",
        )  # fmt: skip
        parser.add_argument(
            "--owner", action="append", default=[], metavar="USERNAME",
            help="researcher login that owns the study (repeatable); without one only superusers see it",
        )  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> None:
        quiet = options["verbosity"] == 0 or not sys.stderr.isatty()
        owners = self._owners(options["owner"])
        try:
            with tqdm(desc="checking pairs", unit="pair", disable=quiet) as bar:
                bundle = validate_bundle(options["bundle"], progress=bar.update)
            self._check_questions(bundle, options["study"], options["attention_checks"], options["questions_per_cell"])
            with tqdm(desc="storing images", unit="image", disable=quiet) as bar:
                result = import_bundle(bundle, options["study"], title=options["title"], progress=bar.update)
        except BundleError as exc:
            raise CommandError(str(exc)) from None
        result.study.researchers.add(*owners)
        for setting in ("attention_checks", "questions_per_cell"):
            if options[setting] is not None:
                Study.objects.filter(pk=result.study.pk).update(**{setting: options[setting]})
        if options["open"]:
            Study.objects.filter(pk=result.study.pk).update(status=Study.Status.OPEN)
        status = Study.objects.get(pk=result.study.pk).status
        if result.created:
            summary = f"imported bundle {bundle.manifest['bundle_id']!r}: {result.pairs} {result.unit}, {result.images} images"
        else:
            summary = f"bundle {bundle.manifest['bundle_id']!r} was already imported; nothing changed"
        self.stdout.write(f"{summary} → study {result.study.slug!r} ({status}), link {result.study.get_absolute_url()}")

    def _check_questions(self, bundle: ValidatedBundle, slug: str, checks: int | None, per_cell: int | None) -> None:
        """Stop before anything is written when a number is out of range or the attention checks would
        outnumber the questions."""
        if checks is not None and checks < 0:
            raise CommandError(f"--attention-checks {checks} must be 0 or more.")
        if checks is not None and checks > MAX_PER_PARTICIPANT:
            raise CommandError(f"--attention-checks {checks} must be at most {MAX_PER_PARTICIPANT}.")
        if per_cell is not None and not 1 <= per_cell <= MAX_PER_PARTICIPANT:
            raise CommandError(f"--questions-per-comparison {per_cell} must be between 1 and {MAX_PER_PARTICIPANT}.")
        flags = "--attention-checks sets the number" if per_cell is None else \
            "--attention-checks and --questions-per-comparison set the numbers"
        study = Study.objects.filter(slug=slug).first() or Study()
        checks = study.attention_checks if checks is None else checks
        per_cell = study.questions_per_cell if per_cell is None else per_cell
        problem = attention_check_problem(checks, bundle.questions_per_participant(per_cell))
        if problem:
            raise CommandError(f"{problem} ({flags}.)")

    def _owners(self, usernames: list[str]) -> list:
        """The staff accounts named by --owner; an unknown or non-staff name stops the import before it starts."""
        users = {u.username: u for u in get_user_model().objects.filter(username__in=usernames, is_staff=True)}
        unknown = [name for name in usernames if name not in users]
        if unknown:
            raise CommandError(f"--owner {unknown[0]!r} is not a staff login (create it with manage.py create_researcher).")
        return [users[name] for name in usernames]
