"""Crash test under load: simulated participants against gunicorn + PostgreSQL, SIGKILLed mid-run.

Creates a throw-away PostgreSQL database, imports a synthetic bundle into an open study and starts
gunicorn (config/gunicorn.conf.py, >= 2 workers). N participants take the study at once over HTTP;
when a third and two thirds of the expected answers are in, the whole gunicorn process group
(master and workers) is killed with SIGKILL and restarted after a pause. Afterwards the study is
exported with ``export_responses`` and checked: every answer the server acknowledged is in
answers.csv exactly once with the choice given, every participant finished, no 5xx was ever
answered, and the export's manifest matches its files. Prints answers/s, p50/p95 latency and the
counts checked; exits non-zero if anything was lost.

    .venv/bin/python bench/crash_load.py [--participants 200] [--crashes 2] [--workers 2]
"""
from __future__ import annotations

import argparse
import csv
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from http_client import RunSummary, summarize, timed_participants  # noqa: E402
from study_load import Server, add_port_argument, listen_port, manage  # noqa: E402

SLUG = "crash"
DEFAULT_POSTGRES = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")


@dataclass
class CrashResult:
    """What a crash run did and what the export showed."""

    participants: int = 0
    summary: RunSummary | None = None  # what the bots saw; the properties below read it once they finished
    completed_in_export: int = 0
    found_once: int = 0
    wrong_choice: int = 0
    stored: int = 0
    duplicates: int = 0
    crashes: int = 0
    downtime_s: float = 0.0
    bot_errors: list[str] = field(default_factory=list)
    export_problems: list[str] = field(default_factory=list)

    @property
    def completed_bots(self) -> int:
        return self.summary.completed

    @property
    def acknowledged(self) -> int:
        return self.summary.answers

    @property
    def server_errors(self) -> int:
        return self.summary.server_errors

    @property
    def connection_errors(self) -> int:
        return self.summary.connection_errors

    @property
    def lost(self) -> int:
        """Acknowledged answers not found exactly once with their choice."""
        return self.acknowledged - self.found_once

    @property
    def ok(self) -> bool:
        """Nothing lost or doubled, everyone finished, no 5xx, export intact."""
        return (
            self.lost == 0 and self.wrong_choice == 0 and self.duplicates == 0 and self.server_errors == 0
            and self.completed_bots == self.completed_in_export == self.participants
            and not self.bot_errors and not self.export_problems
        )  # fmt: skip

    def lines(self) -> list[str]:
        """The human-readable report the bench prints."""
        summary = self.summary
        return [
            f"participants {self.participants}: finished {self.completed_bots} (export says completed: "
            f"{self.completed_in_export}); crashes survived {self.crashes} (SIGKILL of master + workers, "
            f"{self.downtime_s:.1f} s down in all)",
            f"answers acknowledged {self.acknowledged}, found exactly once {self.found_once}, lost {self.lost}, "
            f"wrong choice {self.wrong_choice}, duplicates {self.duplicates}, stored {self.stored} "
            f"({self.stored - self.found_once} stored but never acknowledged: responses cut by a crash)",
            f"5xx answers {self.server_errors}, connection failures while down {self.connection_errors}, "
            f"bot errors {len(self.bot_errors)}, export problems {len(self.export_problems)}",
            f"throughput {summary.answers_per_s:.0f} answers/s over {summary.seconds:.1f} s with downtime, "
            f"{self.acknowledged / max(summary.seconds - self.downtime_s, 1e-9):.0f} answers/s while up; "
            f"latency all requests p50 {summary.p50_ms:.1f} ms, p95 {summary.p95_ms:.1f} ms; answers (until the "
            f"next page has arrived) p50 {summary.answer_p50_ms:.1f} ms, p95 {summary.answer_p95_ms:.1f} ms",
        ]


def _kill(server: Server) -> None:
    """SIGKILL gunicorn's whole process group (master and workers) and wait until it is gone."""
    assert server.process is not None
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(server.process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise RuntimeError("gunicorn workers survived SIGKILL")


def _check_export(env: dict[str, str], database_url: str, out: Path, bots: list, result: CrashResult) -> None:
    from studyapp.operations.export import verify_export

    manage(env, "export_responses", "--study", SLUG, "--out", str(out))
    result.export_problems = verify_export(out)
    with psycopg.connect(database_url) as conn:
        public_id = dict(conn.execute("SELECT token, public_id FROM studyapp_participant").fetchall())
    with (out / "answers.csv").open(encoding="utf-8", newline="") as handle:
        answers = list(csv.DictReader(handle))
    with (out / "participants.csv").open(encoding="utf-8", newline="") as handle:
        status = {row["participant"]: row["status"] for row in csv.DictReader(handle)}
    counts = Counter((row["participant"], int(row["position"])) for row in answers)
    choice = {(row["participant"], int(row["position"])): row["choice"] for row in answers}
    result.stored = len(answers)
    result.duplicates = sum(n - 1 for n in counts.values() if n > 1)
    for bot in bots:
        pid = public_id.get(bot.report.token)
        result.completed_in_export += status.get(pid) == "completed"
        for position, given in bot.report.acknowledged:
            found = counts.get((pid, position), 0) == 1
            result.found_once += found
            result.wrong_choice += found and choice[(pid, position)] != given


def run_crash_load(
    participants: int,
    *,
    crashes: int = 2,
    questions_per_cell: int = 4,
    workers: int = 2,
    threads: int = 4,
    down_s: float = 1.0,
    postgres: str = DEFAULT_POSTGRES,
    seed: int = 0,
    port: int = 0,
) -> CrashResult:
    """Run the crash test (see the module docstring); Django settings must be configured in this process.

    gunicorn gets this process's SECRET_KEY, so that the bots' simulation marker is accepted (it also
    exempts them from the per-client limit on starting a study: they all come from 127.0.0.1).
    """
    from django.conf import settings

    from studyapp.simulated.participants import simulation_marker
    from tests.synthetic_bundle import write_synthetic_bundle

    database = f"bla_crash_{os.getpid()}_{secrets.token_hex(3)}"
    database_url = f"{postgres.rsplit('/', 1)[0]}/{database}"
    work = Path(tempfile.mkdtemp(prefix="crash-load-"))
    env = {
        **os.environ, "DATABASE_URL": database_url, "MEDIA_ROOT": str(work / "media"), "DEBUG": "0",
        "SECRET_KEY": settings.SECRET_KEY, "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }  # fmt: skip
    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    server = Server(env, listen_port(port), workers, threads)
    result = CrashResult(participants=participants)
    try:
        bundle = write_synthetic_bundle(work / "bundle", pairs_per_cell=12, images_per_dataset=16, seed=seed, image_size=32)
        manage(env, "migrate", "--no-input")
        manage(env, "import_stimuli", str(bundle), "--study", SLUG, "--open", "--attention-checks", "0", "--verbosity", "0")
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("UPDATE studyapp_study SET questions_per_cell = %s WHERE slug = %s", (questions_per_cell, SLUG))
        expected = participants * questions_per_cell * 6
        marker = simulation_marker(SLUG)
        bots = timed_participants(server.url + f"/s/{SLUG}/", participants, seed=seed, marker=marker, give_up_after_s=600)
        server.start()
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=participants) as pool:
            running = [pool.submit(bot.run) for bot in bots]
            for k in range(1, crashes + 1):
                while sum(len(b.report.acknowledged) for b in bots) < expected * k / (crashes + 1):
                    if all(f.done() for f in running):
                        raise RuntimeError(f"all participants stopped before crash {k}")
                    time.sleep(0.02)
                down = time.perf_counter()
                _kill(server)
                time.sleep(down_s)
                server.start()
                result.downtime_s += time.perf_counter() - down
                result.crashes += 1
            reports = [f.result() for f in running]
        result.summary = summarize(reports, time.perf_counter() - start)
        result.bot_errors = [e for r in reports for e in r.errors]
        _check_export(env, database_url, work / "export", bots, result)
    finally:
        server.stop()
        with psycopg.connect(postgres, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        shutil.rmtree(work, ignore_errors=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--participants", type=int, default=200, help="simulated participants, all started at once")
    parser.add_argument("--crashes", type=int, default=2, help="SIGKILLs of the whole gunicorn process group")
    parser.add_argument("--questions-per-cell", type=int, default=2, help="questions per type × dataset (6 cells; the paper: 4)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (>= 2)")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--down-s", type=float, default=1.0, help="seconds the server stays down after each kill")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="PostgreSQL server for the throw-away database")
    parser.add_argument("--seed", type=int, default=0)
    add_port_argument(parser)
    args = parser.parse_args()
    os.environ.update({"SECRET_KEY": secrets.token_urlsafe(50), "DJANGO_SETTINGS_MODULE": "config.settings"})
    import django

    django.setup()
    result = run_crash_load(
        args.participants, crashes=args.crashes, questions_per_cell=args.questions_per_cell, workers=args.workers,
        threads=args.threads, down_s=args.down_s, postgres=args.postgres, seed=args.seed, port=args.port,
    )  # fmt: skip
    print(f"gunicorn {args.workers} workers × {args.threads} threads, PostgreSQL, {args.questions_per_cell * 6} "
          f"questions per participant, on {os.cpu_count()} cores")
    for line in result.lines():
        print(line)
    for error in (result.bot_errors + result.export_problems)[:5]:
        print("problem:", error)
    print("verdict:", "nothing lost" if result.ok else "FAILED")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
