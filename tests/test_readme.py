"""The README is the user's door: every command it shows must parse with the real command-line
parsers, every make target and bench script it names must exist, its CPU blocks must run in
order on a fresh checkout (at a tiny size), and the formats it links in docs/ must match the code."""
from __future__ import annotations

import csv
import json
import os
import re
import shlex
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from contracts.columns import EXPORT_COLUMNS, REPORT_COLUMNS, USEFULNESS_EXPORT_COLUMNS
from contracts.explanations import FIELDS as EXPLANATIONS_FIELDS
from contracts.render import RENDER_FIELDS

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ".venv/bin/python "


def readme_commands() -> list[str]:
    """Command lines of the README's fenced code blocks, continuation lines joined."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = []
    for block in re.findall(r"```(?:bash)?\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def python_commands() -> list[str]:
    return [line for line in readme_commands() if line.startswith(PYTHON)]


def parse(line: str) -> None:
    """Parse one README command with the parser the real command uses (nothing runs)."""
    argv = shlex.split(line[len(PYTHON):], comments=True)
    if argv[0] == "-m":
        module, args = argv[1], argv[2:]
        parsers = {"bla_core": "bla_core.cli", "generation": "generation.cli", "analysis": "analysis.cli"}
        build_parser = __import__(parsers[module], fromlist=["build_parser"]).build_parser
        build_parser().parse_args(args)
    elif argv[0] == "manage.py":
        from django.core.management import get_commands, load_command_class

        name, args = argv[1], argv[2:]
        load_command_class(get_commands()[name], name).create_parser("manage.py", name).parse_args(args)
    else:
        assert (ROOT / argv[0]).is_file(), f"{argv[0]} does not exist"


def test_readme_shows_commands_of_every_stage():
    joined = "\n".join(python_commands())
    for needle in ("-m bla_core train", "-m bla_core experiment", "-m bla_core explain", "-m generation build",
                   "manage.py import_stimuli", "manage.py export_responses", "-m analysis report"):
        assert needle in joined


@pytest.mark.parametrize("line", python_commands())
def test_readme_command_parses(line):
    try:
        parse(line)
    except SystemExit as exit_:
        pytest.fail(f"README command does not parse (exit {exit_.code}): {line}")


def test_readme_make_targets_exist():
    targets = set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), re.M))
    used = {word for line in readme_commands() if line.startswith("make ") for word in line.split()[1:2]}
    assert used and used <= targets, used - targets


# --- The README runs: its chained CPU blocks, in order, in a scratch folder, at a tiny size. ---

# Flags appended to a README command (argparse keeps the last value), so the chain takes a couple
# of minutes on 2 cores whatever the defaults become.
TINY_FLAGS: dict[str, list[str]] = {
    "-m bla_core train": ["--epochs", "8"],  # fewer leave BLA-T maps alike: no random control
    "-m bla_core experiment": ["--runs", "1", "--epochs", "1"],
    "-m generation build": ["--per-type", "2", "--workers", "1"],
    "manage.py simulate_participants": ["--n", "3"],
    "-m analysis report": ["--bootstrap", "50"],
}
# A block showing one of these needs what a fresh clone lacks (a GPU, a dataset, a server host),
# is an install or a benchmark: the README marks those; the test leaves them out.
NOT_CHAINED = ("/data/", "example.org", "bench/", "make ")
BACKUP_BLOCK = "backup_study_data"  # its block (backup, restore) runs in its own test below, on the chain's data
PROJECT_ENTRIES = ("bla_core", "generation", "studyapp", "analysis", "contracts", "config",
                   "manage.py", "pyproject.toml", ".venv")


def readme_blocks() -> list[list[str]]:
    """Each fenced block of the README as its command lines (continuations joined, comments kept)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = []
    for block in re.findall(r"```(?:bash)?\n(.*?)```", text, re.S):
        lines = [line.strip() for line in block.replace("\\\n", " ").splitlines()]
        blocks.append([line for line in lines if line and not line.startswith("#")])
    return blocks


def chained_blocks() -> list[list[str]]:
    """The README's blocks that a fresh clone runs on a CPU, in README order.

    `pip install` lines are left out: the venv has it all, and tests/analysis installs it apart.
    """
    blocks = [[line for line in block if not line.startswith("pip install")]
              for block in readme_blocks()]
    return [block for block in blocks
            if block and all(line.startswith(PYTHON) for line in block)
            and not any(marker in line for line in block for marker in NOT_CHAINED)]


def tiny_argv(line: str, url: str) -> list[str]:
    """The README line as argv, with the tiny flags appended and bots sent to the test's server."""
    argv = shlex.split(line, comments=True)
    for needle, flags in TINY_FLAGS.items():
        if needle in line:
            argv += flags
    if "simulate_participants" in line:
        argv += ["--url", url]
    return argv


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Chain:
    folder: Path
    env: dict[str, str]
    seconds: dict[str, float]


def run_line(argv: list[str], chain: Chain, timeout: float = 900,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    started = time.monotonic()
    done = subprocess.run(argv, cwd=chain.folder, env={**chain.env, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)
    chain.seconds[" ".join(argv[2:5])] = time.monotonic() - started
    return done


def start_server(argv: list[str], chain: Chain, port: int) -> subprocess.Popen:
    """`runserver` blocks, so the chain starts it aside (as a second terminal would) and waits."""
    server = subprocess.Popen([*argv, f"127.0.0.1:{port}", "--noreload"], cwd=chain.folder,
                              env=chain.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return server
        assert server.poll() is None, "runserver exited"
        time.sleep(0.3)
    server.kill()
    pytest.fail("runserver did not listen within 60 s")


@pytest.fixture(scope="module")
def readme_chain(tmp_path_factory) -> Iterator[Chain]:
    """Run every chained README line in a scratch folder that links the project, as a fresh clone."""
    folder = tmp_path_factory.mktemp("readme-clone")
    for entry in PROJECT_ENTRIES:
        (folder / entry).symlink_to(ROOT / entry)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT),
           "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}", "MEDIA_ROOT": str(folder / "media"),
           "BLA_CORE_CACHE": str(folder / "cache"), "DJANGO_SETTINGS_MODULE": "config.settings"}
    chain = Chain(folder, env, {})
    port = free_port()
    servers = []
    try:
        for block in chained_blocks():
            if any(BACKUP_BLOCK in line for line in block):
                continue
            for line in block:
                argv = tiny_argv(line, f"http://127.0.0.1:{port}")
                if "manage.py runserver" in line:
                    servers.append(start_server(argv, chain, port))
                    continue
                done = run_line(argv, chain)
                assert done.returncode == 0, f"{line}\n exit {done.returncode}: {done.stderr[-2000:]}"
        yield chain
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)
        print("README chain, seconds:", {k: round(v, 1) for k, v in chain.seconds.items()})


@pytest.mark.slow
def test_readme_chain_runs_and_makes_every_file_it_names(readme_chain):
    folder = readme_chain.folder
    for name in ("mnist38_bla_t.npz", "mnist38_l2x_f.npz", "mnist38_cam.npz"):
        assert (folder / "runs" / "explanations" / name).is_file(), name
    assert (folder / "runs" / "exp" / "results.csv").is_file()
    manifest = json.loads((folder / "stimuli_out" / "mnist38" / "manifest.json").read_text())
    assert {pair["question_type"] for pair in manifest["pairs"]} == {
        "bla_t_vs_cam", "bla_t_vs_l2x_f", "bla_t_vs_random"}
    assert (folder / "stimuli_out" / "mnist38-sheet.png").is_file()
    with (folder / "exports" / "pilot" / "participants.csv").open() as handle:
        people = list(csv.DictReader(handle))
    assert len(people) == 3 and all(p["simulated"] == "true" for p in people)
    page = (folder / "reports" / "pilot" / "report.html").read_text()
    assert "every counted participant is simulated (all 3 are bots)" in page
    # "Compare your own methods": four methods, all pairs plus BLA-T's random control, ranked.
    mine = json.loads((folder / "stimuli_out" / "mine" / "manifest.json").read_text())
    assert len({pair["question_type"] for pair in mine["pairs"]}) == 7
    with (folder / "reports" / "mine" / "ranking.csv").open() as handle:
        ranked = {row["method"] for row in csv.DictReader(handle)}
    assert ranked == {"bla_t", "grad_cam", "grad_cam_pp", "integrated_gradients", "random(bla_t)"}


@pytest.mark.slow
def test_readme_backup_block_runs(readme_chain):
    (block,) = [block for block in readme_blocks() if any(BACKUP_BLOCK in line for line in block)]
    assert any("restore_study_data" in line for line in block)
    for line in block:
        argv = tiny_argv(line, "")
        assignments = [word for word in argv if re.match(r"^[A-Z_][A-Z0-9_]*=", word)]
        env = dict(word.split("=", 1) for word in assignments)  # a line's VAR=value prefix, as a shell reads it
        done = run_line(argv[len(assignments):], readme_chain, timeout=300, env=env)
        assert done.returncode == 0, f"{line}\n exit {done.returncode}: {done.stderr[-2000:]}"
    with sqlite3.connect(readme_chain.folder / "restored.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM studyapp_answer").fetchone()[0] > 0


# --- docs/ holds the formats; nothing points at files outside the repository. ---

def documented_keys(heading: str) -> tuple[str, ...]:
    """The keys of the first table under a docs/formats.md heading line (e.g. "### answers.csv"), in order."""
    text = (ROOT / "docs" / "formats.md").read_text(encoding="utf-8")
    section = text.split(f"\n{heading}", 1)[1].split("\n#", 1)[0]
    return tuple(re.findall(r"^\| `([a-z0-9_]+)` \|", section, re.M))


def documented_columns(csv_name: str) -> tuple[str, ...]:
    """Column names of a docs/formats.md data-dictionary table (### csv_name), in order."""
    return documented_keys(f"### {csv_name}\n")


def test_formats_document_every_explanations_field_of_the_code():
    assert documented_keys("## Explanations file") == EXPLANATIONS_FIELDS


@pytest.mark.parametrize("csv_name", sorted({**EXPORT_COLUMNS, **USEFULNESS_EXPORT_COLUMNS, **REPORT_COLUMNS}))
def test_formats_document_every_export_column_of_the_code(csv_name):
    assert documented_columns(csv_name) == {**EXPORT_COLUMNS, **USEFULNESS_EXPORT_COLUMNS, **REPORT_COLUMNS}[csv_name]


def test_formats_document_the_render_record_and_attention_checks():
    text = (ROOT / "docs" / "formats.md").read_text(encoding="utf-8")
    for field in RENDER_FIELDS:
        assert f'"{field}"' in text, field
    assert "`render_id`" in text and "`attention_check`" in text


@pytest.mark.parametrize("path", ["README.md", "generation/cli.py", "analysis/cli.py",
                                  "bench/gpu_check.sh", "scripts/serve_demo.sh"])
def test_no_pointer_outside_the_repository(path):
    text = (ROOT / path).read_text(encoding="utf-8")
    assert "shared folder" not in text and "closing notes" not in text
    assert not re.search(r"(?<!docs/)DESIGN\.md", text)


def test_no_code_outside_bla_core_points_outside_the_repository():
    """Docstrings and --help texts of the stages, contracts and benches point at docs/, not at notes a clone lacks."""
    files = [p for folder in ("studyapp", "generation", "analysis", "contracts", "config", "bench", "scripts")
             for p in sorted((ROOT / folder).rglob("*")) if p.suffix in (".py", ".sh")]
    offenders = [str(p.relative_to(ROOT)) for p in files
                 if re.search(r"(?<!docs/)DESIGN\.md|closing note|shared folder", p.read_text(encoding="utf-8"))]
    assert files and offenders == []


def test_docs_the_readme_links_exist():
    links = re.findall(r"\]\((docs/[^)#]+)\)", (ROOT / "README.md").read_text(encoding="utf-8"))
    assert "docs/formats.md" in links and "docs/benchmarks.md" in links
    assert all((ROOT / link).is_file() for link in links)
