"""``manage.py simulate_participants --study SLUG --n 50``: bots take the study over real HTTP."""
from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from studyapp.models import Study
from studyapp.simulated.participants import run_participants, simulation_marker
from studyapp.simulated.policies import parse_policy, parse_trial_policy


class Command(BaseCommand):
    help = (
        "Run simulated participants through a running study server over HTTP (forms, cookies, CSRF — "
        "never the ORM). They are stored with simulated=true and the analysis ignores them unless asked."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--study", required=True, help="slug of an open study")
        parser.add_argument("--n", type=int, default=50, help="number of participants (default: %(default)s)")
        parser.add_argument("--url", default="http://127.0.0.1:8000",
                            help="base URL of the running server (default: %(default)s)")
        parser.add_argument("--policy", default="random",
                            help="'random' or 'prefer:METHOD:P', e.g. prefer:bla_t:0.7; for a usefulness study "
                                 "'random' or 'match:P[,METHOD=P...]', e.g. match:0.5,bla_t=0.9 (answers as the model "
                                 "did with probability P per method) (default: %(default)s)")
        parser.add_argument("--concurrency", type=int, default=10, help="bots at a time (default: %(default)s)")
        parser.add_argument("--seed", type=int, default=0, help="seed of the bots' choices (default: %(default)s)")
        parser.add_argument("--inattentive-share", type=float, default=0.0, metavar="SHARE",
                            help="share of bots that answer every attention check wrongly (default: %(default)s)")

    def handle(self, *args: Any, **options: Any) -> None:
        study = Study.objects.filter(slug=options["study"]).first()
        if study is None:
            raise CommandError(f"--study {options['study']!r} does not exist.")
        if options["n"] < 1 or options["concurrency"] < 1:
            raise CommandError("--n and --concurrency must be at least 1.")
        if not 0.0 <= options["inattentive_share"] <= 1.0:
            raise CommandError(f"--inattentive-share {options['inattentive_share']} must be between 0 and 1.")
        try:
            if study.is_usefulness:
                choosers = {"trial_chooser": parse_trial_policy(options["policy"])}
            else:
                choosers = {"chooser": parse_policy(options["policy"])}
        except ValidationError as exc:
            raise CommandError(f"--policy: {exc.messages[0]}.") from None
        _check_listening(options["url"])
        study_url = options["url"].rstrip("/") + study.get_absolute_url()

        def close_connection(_report) -> None:
            connections.close_all()  # each bot thread opened its own connection for the policy

        reports, summary = run_participants(
            study_url, options["n"], concurrency=options["concurrency"], seed=options["seed"],
            marker=simulation_marker(study.slug), **choosers, inattentive_share=options["inattentive_share"],
            on_done=close_connection,
        )
        problems = [f"{r.external_id}: {'; '.join(r.errors)}" for r in reports if r.errors]
        self.stdout.write(
            f"{summary.completed} of {summary.participants} simulated participants completed study "
            f"{study.slug!r} ({summary.answers} answers acknowledged, {summary.attention_checks_passed} of "
            f"{summary.attention_checks} attention checks passed, {summary.screened_out} screened out, "
            f"{summary.turned_away} turned away) "
            f"in {summary.seconds:.1f} s"
        )
        if problems:
            raise CommandError(f"{len(problems)} participants failed; first: {problems[0]}")


def _check_listening(url: str, timeout_s: float = 5.0) -> None:
    """Refuse at once, in one sentence, when nothing accepts connections at ``url`` (the bots would retry for minutes)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CommandError(f"--url {url!r} is not an http:// or https:// address with a host.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        socket.create_connection((parts.hostname, port), timeout=timeout_s).close()
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise CommandError(
            f"Nothing answers at --url {url} ({reason}): start the study server first "
            "(manage.py runserver, in a second terminal) or pass the address it listens on."
        ) from None
