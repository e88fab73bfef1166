"""The README is the user's door: every command it shows must parse with the real command-line
parsers, every make target and bench script it names must exist."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

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
