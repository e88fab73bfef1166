"""Load benchmark of the study app: simulated participants over HTTP against gunicorn + PostgreSQL.

Creates a throw-away PostgreSQL database, migrates it, imports a synthetic bundle into an open
study, starts gunicorn (config/gunicorn.conf.py) on a free localhost port and lets N participants
take the study at once through the real pages (forms, cookies, CSRF). Prints answers per second,
p50/p95 latency (all requests and answer POSTs alone) and checks that every acknowledged answer is
in the database exactly once. Targets: >= 200 answers/s, p95 <= 150 ms, zero answers lost.

    .venv/bin/python bench/study_load.py [--participants 100] [--workers 2] [--threads 4]
"""
from __future__ import annotations

import argparse
import os
import resource
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TARGET_ANSWERS_PER_S = 200.0
TARGET_P95_MS = 150.0


def free_port() -> int:
    """A TCP port on localhost that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--participants", type=int, default=100, help="simulated participants, all started at once")
    parser.add_argument("--questions-per-cell", type=int, default=4, help="questions per type × dataset (2 datasets × 3 types)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--think-ms", type=int, default=0, help="pause before each answer (0 = as fast as possible)")
    parser.add_argument("--fetch-images", action="store_true", help="also fetch every image like a browser")
    parser.add_argument("--postgres", default=os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres"),
                        help="PostgreSQL server to create the throw-away database on")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


class Server:
    """gunicorn serving the project on a private database and media folder."""

    def __init__(self, env: dict[str, str], port: int, workers: int, threads: int) -> None:
        self.env = {**env, "PORT": str(port), "WEB_CONCURRENCY": str(workers), "GUNICORN_THREADS": str(threads)}
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "config.wsgi"]
        self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(self.url + "/admin/login/", timeout=5)
                return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError("gunicorn did not start within 30 s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)


def manage(env: dict[str, str], *args: str) -> None:
    """Run a manage.py command against the benchmark database."""
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)


def stored_answers(slug: str) -> list[tuple[str, int, str]]:
    """(participant token, position, choice) of every stored answer of the study."""
    from studyapp.models import Answer

    return list(
        Answer.objects.filter(item__participant__study__slug=slug).values_list(
            "item__participant__token", "item__position", "choice"
        )
    )


def main() -> int:
    args = parse_args()
    database = f"bench_study_{os.getpid()}"
    admin_url = args.postgres
    base = admin_url.rsplit("/", 1)[0]
    work = Path(tempfile.mkdtemp(prefix="study-load-"))
    env = {
        **os.environ,
        "DATABASE_URL": f"{base}/{database}",
        "MEDIA_ROOT": str(work / "media"),
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    server = Server(env, free_port(), args.workers, args.threads)
    try:
        from studyapp.synthetic import write_synthetic_bundle

        bundle = write_synthetic_bundle(work / "bundle", pairs_per_cell=12, images_per_dataset=16, seed=args.seed, image_size=64)
        manage(env, "migrate", "--no-input")
        manage(env, "import_stimuli", str(bundle), "--study", "load", "--open", "--verbosity", "0")
        os.environ.update({k: env[k] for k in ("DATABASE_URL", "MEDIA_ROOT", "SECRET_KEY", "DEBUG", "DJANGO_SETTINGS_MODULE")})
        import django

        django.setup()
        from studyapp.models import Study
        from studyapp.simulation import run_participants, simulation_marker

        Study.objects.filter(slug="load").update(questions_per_cell=args.questions_per_cell)
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        self_before = resource.getrusage(resource.RUSAGE_SELF)
        server.start()
        think = args.think_ms / 1000
        reports, summary = run_participants(
            server.url + "/s/load/", args.participants, seed=args.seed, marker=simulation_marker("load"),
            think_s=(think * 0.5, think * 1.5), fetch_images=args.fetch_images,
        )  # fmt: skip
        stored = stored_answers("load")
        acknowledged = {(r.token, pos, choice) for r in reports for pos, choice in r.acknowledged}
        lost = acknowledged - set(stored)
        duplicates = len(stored) - len(set(stored))
        errors = [e for r in reports for e in r.errors]
        self_after = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        server.stop()
        from django.db import connections

        connections.close_all()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        subprocess.run(["rm", "-rf", str(work)], check=False)

    print(f"gunicorn {args.workers} workers × {args.threads} threads, PostgreSQL; {summary.participants} participants "
          f"at once, {args.questions_per_cell * 6} questions each, think time {args.think_ms} ms")
    print(f"completed {summary.completed}/{summary.participants}, {summary.answers} answers acknowledged, "
          f"{len(stored)} stored, lost {len(lost)}, duplicates {duplicates}, 5xx {summary.server_errors}, "
          f"bot errors {len(errors)}")
    print(f"throughput {summary.answers_per_s:.0f} answers/s ({summary.requests / summary.seconds:.0f} requests/s) "
          f"over {summary.seconds:.1f} s")
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu = children.ru_utime + children.ru_stime - children_before.ru_utime - children_before.ru_stime
    client_cpu = self_after.ru_utime + self_after.ru_stime - self_before.ru_utime - self_before.ru_stime
    print(f"CPU: gunicorn {server_cpu:.1f} s ({server_cpu / summary.requests * 1000:.2f} ms/request), "
          f"simulated browsers {client_cpu:.1f} s, on {os.cpu_count()} cores; load average now "
          f"{os.getloadavg()[0]:.1f}")
    print(f"latency all requests p50 {summary.p50_ms:.1f} ms, p95 {summary.p95_ms:.1f} ms; "
          f"answer POSTs p50 {summary.answer_p50_ms:.1f} ms, p95 {summary.answer_p95_ms:.1f} ms")
    verdict = (summary.answers_per_s >= TARGET_ANSWERS_PER_S, summary.p95_ms <= TARGET_P95_MS)
    print(f"targets: >= {TARGET_ANSWERS_PER_S:.0f} answers/s {'met' if verdict[0] else 'MISSED'}, "
          f"p95 <= {TARGET_P95_MS:.0f} ms {'met' if verdict[1] else 'MISSED'}, zero lost {'met' if not lost else 'MISSED'}")
    for error in errors[:5]:
        print("bot error:", error)
    return 1 if lost or duplicates or errors or summary.completed < summary.participants else 0


if __name__ == "__main__":
    sys.exit(main())
