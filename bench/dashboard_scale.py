"""Scale benchmark of the researcher dashboard: 10,000 participants × 12 answers on PostgreSQL.

Creates a throw-away PostgreSQL database, migrates it (the live chart's count triggers included),
imports a synthetic bundle (2 datasets × 3 comparisons, 12 questions a participant) into two
studies and fills them with bulk_create: a large one (--participants, default 10,000) and a small
one (10). It then measures, with Django's test Client logged in as the study's researcher, the
dashboard page (bytes, median and worst ms over --repeats requests), the live chart's computation
(``comparison_bars``: ms), and the per-answer cost of storing an answer with its count update (the
trigger) in the small and the large study side by side, and prints each against its target
(page ≤ 100 KiB and ≤ 200 ms, chart ≤ 50 ms, per-answer cost independent of the study's size).

    .venv/bin/python bench/dashboard_scale.py [--participants 10000] [--repeats 20]
        [--postgres postgres://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TARGET_PAGE_KIB = 100.0
TARGET_PAGE_MS = 200.0
TARGET_CHART_MS = 50.0
SMALL_STUDY = 10
TIMED_ANSWERS = 200


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--participants", type=int, default=10_000, help="participants of the large study"
    )
    parser.add_argument(
        "--repeats", type=int, default=20, help="requests / chart computations timed"
    )
    parser.add_argument(
        "--postgres",
        default="postgres://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL URL allowed to create databases",
    )
    return parser.parse_args()


def timed_ms(call: Callable[[], object], repeats: int) -> tuple[list[float], object]:
    """Milliseconds of each of ``repeats`` calls, and the last call's result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        times.append(1000 * (time.perf_counter() - start))
    return times, result


def fill(
    study, participants: int, rng: random.Random, answered: bool = True, label: str = "bench"
) -> list[int]:
    """``participants`` participants of ``study`` with 12 items each (answered); the item ids."""
    from studyapp.models import Answer, Pair, Participant, SequenceItem, Stimulus

    cells: dict[tuple[str, int], list[int]] = {}
    for pk, question_type, dataset in Pair.objects.filter(bundle__study=study).values_list(
        "pk", "question_type", "dataset_id"
    ):
        cells.setdefault((question_type, dataset), []).append(pk)
    stimuli: dict[int, list[int]] = {}
    for pk, pair in Stimulus.objects.filter(pair__bundle__study=study).values_list("pk", "pair_id"):
        stimuli.setdefault(pair, []).append(pk)
    per_cell = study.questions_per_cell
    length = per_cell * len(cells)
    people = Participant.objects.bulk_create(
        Participant(
            study=study, sequence_length=length, simulated=False, external_id=f"{label}-{i}"
        )
        for i in range(participants)
    )
    items = []
    for person in people:
        pairs = [pk for cell in cells.values() for pk in rng.sample(cell, per_cell)]
        rng.shuffle(pairs)
        for position, pair in enumerate(pairs, start=1):
            a, b = rng.sample(stimuli[pair], 2)
            items.append(
                SequenceItem(
                    participant=person,
                    position=position,
                    pair_id=pair,
                    stimulus_a_id=a,
                    stimulus_b_id=b,
                )
            )
    items = SequenceItem.objects.bulk_create(items, batch_size=5000)
    if answered:
        Answer.objects.bulk_create(
            (
                Answer(
                    item=item,
                    choice=rng.choice(("A", "B", "equal")),
                    response_ms=rng.randrange(500, 9000),
                )
                for item in items
            ),
            batch_size=5000,
        )
        Participant.objects.filter(study=study).update(answered=length)
    return [item.pk for item in items]


def answer_cost_ms(study, rng: random.Random) -> float:
    """Median ms to store one answer (with its count trigger) in ``study``, over TIMED_ANSWERS."""
    from studyapp.models import Answer

    items = fill(study, TIMED_ANSWERS // 12 + 1, rng, answered=False, label="timed")[:TIMED_ANSWERS]
    times = []
    for item in items:
        start = time.perf_counter()
        Answer.objects.create(
            item_id=item, choice=rng.choice(("A", "B", "equal")), response_ms=1000
        )
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def verdict(value: float, target: float) -> str:
    return f"{value / target:.2f}× target ({'met' if value <= target else 'MISSED'})"


def main() -> int:
    args = parse_args()
    database = f"bench_dashboard_{os.getpid()}"
    base = args.postgres.rsplit("/", 1)[0]
    work = Path(tempfile.mkdtemp(prefix="dashboard-scale-"))
    os.environ.update(
        {
            "DATABASE_URL": f"{base}/{database}",
            "MEDIA_ROOT": str(work / "media"),
            "SECRET_KEY": secrets.token_urlsafe(50),
            "DEBUG": "0",
            "DJANGO_SETTINGS_MODULE": "config.settings",
        }
    )
    with psycopg.connect(args.postgres, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    try:
        return run(args, work)
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}"')


def run(args: argparse.Namespace, work: Path) -> int:
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from studyapp.console.access import researcher_group
    from studyapp.console.live_chart import comparison_bars
    from studyapp.models import Study
    from tests.synthetic_bundle import write_synthetic_bundle

    call_command("migrate", "--no-input", verbosity=0)
    bundle = write_synthetic_bundle(work / "bundle", pairs_per_cell=6, images_per_dataset=8, seed=0)
    for slug in ("large", "small"):
        call_command("import_stimuli", str(bundle), "--study", slug, "--open", verbosity=0)
    Study.objects.update(questions_per_cell=2, attention_checks=0)
    large, small = Study.objects.get(slug="large"), Study.objects.get(slug="small")
    rng = random.Random(0)
    start = time.perf_counter()
    fill(large, args.participants, rng)
    fill(small, SMALL_STUDY, rng)
    print(
        f"filled {args.participants:,} + {SMALL_STUDY} participants × 12 answers in "
        f"{time.perf_counter() - start:.1f} s (bulk_create, count triggers firing)"
    )

    with connection.cursor() as cursor:
        cursor.execute(
            "ANALYZE"
        )  # planner statistics, as autovacuum keeps them on a running server
    user = User.objects.create_user("researcher", password=secrets.token_urlsafe(12), is_staff=True)
    user.groups.add(researcher_group())
    large.researchers.add(user)
    client = Client()
    client.force_login(user)
    url = reverse("studyapp:dashboard", args=[large.slug]) + "?refresh=0"
    client.get(url)  # warm: templates, URL resolver, connection
    page_ms, response = timed_ms(lambda: client.get(url), args.repeats)
    assert response.status_code == 200, response.status_code
    kib = len(response.content) / 1024
    search_ms, _ = timed_ms(lambda: client.get(url + "&q=bench-9999"), args.repeats)
    chart_ms, bars = timed_ms(lambda: comparison_bars(large), args.repeats)
    answers = sum(bar.answers for bar in bars)
    small_cost, large_cost = answer_cost_ms(small, rng), answer_cost_ms(large, rng)

    print(
        f"dashboard page: {kib:.1f} KiB ({verdict(kib, TARGET_PAGE_KIB)}); "
        f"median {statistics.median(page_ms):.1f} ms, worst {max(page_ms):.1f} ms "
        f"over {args.repeats} "
        f"({verdict(statistics.median(page_ms), TARGET_PAGE_MS)})"
    )
    print(f"dashboard search ?q=: median {statistics.median(search_ms):.1f} ms")
    print(
        f"live chart ({len(bars)} comparisons, {answers:,} answers): median "
        f"{statistics.median(chart_ms):.1f} ms, worst {max(chart_ms):.1f} ms "
        f"({verdict(statistics.median(chart_ms), TARGET_CHART_MS)})"
    )
    print(
        f"one answer stored with its count update: {small_cost:.2f} ms "
        f"at {SMALL_STUDY} participants, "
        f"{large_cost:.2f} ms at {args.participants:,} ({large_cost / small_cost:.2f}×)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
