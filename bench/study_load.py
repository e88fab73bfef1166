"""Load benchmark of the study app: simulated participants over HTTP against gunicorn + PostgreSQL.

Creates a throw-away PostgreSQL database, migrates it, imports a synthetic bundle into an open
study, starts gunicorn (config/gunicorn.conf.py) on a free localhost port and lets N participants
take the study at once through the real pages (forms, cookies, CSRF), then checks that every
acknowledged answer is in the database exactly once.

Default (open loop): every participant answers on a fixed schedule, one answer every
--answer-every seconds (100 participants every 0.45 s offer 222 answers/s, above the 200/s target); an answer's latency
runs from the moment it was due until the next question page has arrived. Answers are sent as
study.js sends them (the next page comes back in the POST's response); --plain-forms answers like
a browser without JavaScript (POST, redirect, GET: two requests per answer).
--closed-loop instead lets every participant answer as fast as the server allows (saturation);
there latency is simply participants / throughput. Throughput and the latency the targets are
checked on are those of the time while all participants were answering (the 100 concurrent
participants of the target); the whole run's latency, enrolment included, is printed beside them.
Prints the CPU each side used (gunicorn, PostgreSQL, the simulated browsers, everything else on
the machine) and whether the targets (>= 200 answers/s sustained, answer p95 <= 150 ms, zero
answers lost) are met.

    .venv/bin/python bench/study_load.py [--participants 100] [--answer-every 0.45] [--plain-forms] [--closed-loop]
"""
from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
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


def add_port_argument(parser: argparse.ArgumentParser) -> None:
    """--port: where gunicorn listens (0, the default: a free port), for a machine with a firewall or a busy port."""
    parser.add_argument("--port", type=int, default=0, help="localhost port for gunicorn (default: a free one)")


def listen_port(requested: int) -> int:
    """The port gunicorn should use: the requested one, or a free one for 0."""
    if not 0 <= requested <= 65535:
        raise SystemExit(f"--port {requested} is not a TCP port (0-65535)")
    return requested or free_port()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--participants", type=int, default=100, help="simulated participants, all started at once")
    parser.add_argument("--answer-every", type=float, default=0.45,
                        help="seconds between one participant's answers (open loop; offered load = participants / this)")
    parser.add_argument("--closed-loop", action="store_true", help="answer as fast as the server allows (saturation)")
    parser.add_argument("--questions-per-cell", type=int, default=6, help="questions per type × dataset (2 datasets × 3 types)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--fetch-images", action="store_true", help="also fetch every image like a browser")
    parser.add_argument("--plain-forms", action="store_true",
                        help="answer like a browser without JavaScript: POST, redirect, GET (two requests per answer)")
    parser.add_argument("--postgres", default=os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres"),
                        help="PostgreSQL server to create the throw-away database on")
    parser.add_argument("--seed", type=int, default=0)
    add_port_argument(parser)
    args = parser.parse_args()
    if args.participants < 1 or args.answer_every <= 0 or args.questions_per_cell < 1:
        parser.error("--participants and --questions-per-cell must be at least 1 and --answer-every positive.")
    return args  # fmt: skip


TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) * TICK_S


def processes(parent: int | None = None, name: str | None = None) -> list[int]:
    """Processes with the given parent or command name, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm, rest = (entry / "stat").read_text().rsplit(")", 1)
        except OSError:
            continue
        if (parent is not None and int(rest.split()[1]) == parent) or (name is not None and comm.endswith(f"({name}")):
            found.append(int(entry.name))
    return found


def machine_busy_s() -> float:
    """CPU seconds all cores together spent busy since boot (from /proc/stat)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) * TICK_S


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU seconds used so far by gunicorn, PostgreSQL, this process (the simulated browsers) and the machine."""

    gunicorn: float
    postgres: float
    client: float
    machine: float

    @classmethod
    def take(cls, gunicorn_pid: int) -> CpuSnapshot:
        gunicorn = [gunicorn_pid, *processes(parent=gunicorn_pid)]
        return cls(sum(map(process_cpu_s, gunicorn)), sum(map(process_cpu_s, processes(name="postgres"))),
                   time.process_time(), machine_busy_s())  # fmt: skip

    def __sub__(self, other: CpuSnapshot) -> CpuSnapshot:
        return CpuSnapshot(self.gunicorn - other.gunicorn, self.postgres - other.postgres,
                           self.client - other.client, self.machine - other.machine)  # fmt: skip


class CpuSampler(threading.Thread):
    """Takes a CpuSnapshot every ``every_s`` seconds, so the CPU of any window of the run can be read."""

    def __init__(self, gunicorn_pid: int, every_s: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.gunicorn_pid, self.every_s = gunicorn_pid, every_s
        self.samples: list[tuple[float, CpuSnapshot]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.samples.append((time.perf_counter(), CpuSnapshot.take(self.gunicorn_pid)))
            self.stopped.wait(self.every_s)

    def between(self, start: float, end: float) -> tuple[CpuSnapshot, float]:
        """CPU used between the samples nearest to ``start`` and ``end``, and the seconds between them."""
        (t0, first), (t1, last) = (min(self.samples, key=lambda s: abs(s[0] - t)) for t in (start, end))
        return last - first, t1 - t0


class Server:
    """gunicorn serving the project on a private database and media folder."""

    def __init__(self, env: dict[str, str], port: int, workers: int, threads: int) -> None:
        self.env = {**env, "PORT": str(port), "WEB_CONCURRENCY": str(workers), "GUNICORN_THREADS": str(threads),
                    "GUNICORN_MAX_REQUESTS": "0"}  # a recycled worker would take its CPU time with it
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


def cpu_line(cpu: CpuSnapshot, count: int, unit: str) -> str:
    """CPU seconds per side and per ``unit`` (request or answer), and what other processes took."""
    per = 1000 / max(count, 1)
    other = max(cpu.machine - cpu.gunicorn - cpu.postgres - cpu.client, 0.0)
    return (f"gunicorn {cpu.gunicorn:.1f} s ({cpu.gunicorn * per:.2f} ms/{unit}), PostgreSQL {cpu.postgres:.1f} s "
            f"({cpu.postgres * per:.2f} ms/{unit}), simulated browsers {cpu.client:.1f} s ({cpu.client * per:.2f} ms/{unit}), "
            f"other processes {other:.1f} s ({other * per:.2f} ms/{unit})")


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
    server = Server(env, listen_port(args.port), args.workers, args.threads)
    try:
        from tests.synthetic_bundle import write_synthetic_bundle

        bundle = write_synthetic_bundle(work / "bundle", pairs_per_cell=12, images_per_dataset=16, seed=args.seed, image_size=64)
        manage(env, "migrate", "--no-input")
        manage(env, "import_stimuli", str(bundle), "--study", "load", "--open", "--verbosity", "0")
        os.environ.update({k: env[k] for k in ("DATABASE_URL", "MEDIA_ROOT", "SECRET_KEY", "DEBUG", "DJANGO_SETTINGS_MODULE")})
        import django

        django.setup()
        from http_client import run_timed_participants, steady_window

        from studyapp.models import Study
        from studyapp.simulated.participants import simulation_marker

        Study.objects.filter(slug="load").update(questions_per_cell=args.questions_per_cell, attention_checks=0)
        server.start()
        assert server.process is not None
        every = None if args.closed_loop else args.answer_every
        load_before = os.getloadavg()[0]
        sampler = CpuSampler(server.process.pid)
        sampler.start()
        reports, summary = run_timed_participants(
            server.url + "/s/load/", args.participants, seed=args.seed, marker=simulation_marker("load"),
            answer_every_s=every, fetch_images=args.fetch_images, inline=not args.plain_forms,
        )  # fmt: skip
        sampler.stopped.set()
        sampler.join()
        load_after = os.getloadavg()[0]
        stored = stored_answers("load")
    finally:
        server.stop()
        from django.db import connections

        connections.close_all()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        subprocess.run(["rm", "-rf", str(work)], check=False)

    acknowledged = {(r.token, pos, choice) for r in reports for pos, choice in r.acknowledged}
    lost = acknowledged - set(stored)
    duplicates = len(stored) - len(set(stored))
    errors = [e for r in reports for e in r.errors]
    questions = args.questions_per_cell * 6
    mode = "closed loop: every participant answers as fast as the server allows" if args.closed_loop else (
        f"open loop: each participant answers every {args.answer_every:g} s, "
        f"offered {args.participants / args.answer_every:.0f} answers/s")
    print(f"configuration: gunicorn {args.workers} workers x {args.threads} threads, PostgreSQL, {os.cpu_count()} cores; "
          f"{args.participants} participants started at once, {questions} questions each; {mode}; answers "
          + ("as plain forms (POST, redirect, GET)" if args.plain_forms else "as study.js sends them (next page in the POST's response)"))
    print(f"answers: {summary.completed}/{summary.participants} completed, {summary.answers} acknowledged, "
          f"{len(stored)} stored, lost {len(lost)}, duplicates {duplicates}, 5xx {summary.server_errors}, "
          f"connection errors {summary.connection_errors}, bot errors {len(errors)}")
    print(f"throughput: {summary.steady_answers_per_s:.0f} answers/s sustained (while all participants were answering, "
          f"{summary.steady_seconds:.1f} s); {summary.answers_per_s:.0f} answers/s and "
          f"{summary.requests / summary.seconds:.0f} requests/s over the whole run of {summary.seconds:.1f} s")
    print(f"latency: answer (until the next page has arrived) while all participants were answering p50 "
          f"{summary.steady_answer_p50_ms:.1f} ms, p95 {summary.steady_answer_p95_ms:.1f} ms; whole run incl. enrolment p50 "
          f"{summary.answer_p50_ms:.1f} ms, p95 {summary.answer_p95_ms:.1f} ms; "
          f"single requests p50 {summary.p50_ms:.1f} ms, p95 {summary.p95_ms:.1f} ms")
    cpu, seconds = sampler.samples[-1][1] - sampler.samples[0][1], sampler.samples[-1][0] - sampler.samples[0][0]
    print(f"CPU, whole run incl. enrolment ({cpu.machine / seconds:.2f} of {os.cpu_count()} cores busy): {cpu_line(cpu, summary.requests, 'request')}; "
          f"load average {load_before:.1f} before, {load_after:.1f} after")
    window = steady_window(reports)
    if window is not None:
        cpu, seconds = sampler.between(*window)
        print(f"CPU, steady answering ({cpu.machine / seconds:.2f} of {os.cpu_count()} cores busy): "
              f"{cpu_line(cpu, round(summary.steady_answers_per_s * seconds), 'answer')}")
    met = {
        f">= {TARGET_ANSWERS_PER_S:.0f} answers/s sustained": summary.steady_answers_per_s >= TARGET_ANSWERS_PER_S,
        f"answer p95 <= {TARGET_P95_MS:.0f} ms while all participants answer": summary.steady_answer_p95_ms <= TARGET_P95_MS,
        "zero answers lost": not lost and not duplicates and summary.completed == summary.participants,
    }
    print("targets: " + ", ".join(f"{name} {'met' if ok else 'MISSED'}" for name, ok in met.items())
          + f" -> {'TARGET MET' if all(met.values()) else 'TARGET NOT MET'}")
    for error in errors[:5]:
        print("bot error:", error)
    return 1 if lost or duplicates or errors or summary.completed < summary.participants else 0


if __name__ == "__main__":
    sys.exit(main())
