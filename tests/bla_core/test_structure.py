"""The package's structure: every module imports on its own, and no module imports itself in a circle."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "bla_core"
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__"))


def local_imports(path: Path) -> set[str]:
    """The bla_core modules ``path`` imports (relative ``from .x import`` and ``bla_core.x``), anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module} if node.module else {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bla_core."):
            found.add(node.module.split(".")[1])
    return found & set(MODULES)


def test_no_bla_core_module_is_part_of_an_import_circle():
    graph = {name: local_imports(PACKAGE / f"{name}.py") for name in MODULES}

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for name in graph[start] - seen:
            seen.add(name)
            if name == target or reaches(name, target, seen):
                return True
        return False

    assert [name for name in MODULES if reaches(name, name, set())] == []


@pytest.mark.parametrize("module", ["datasets", "image_datasets", "feature_cache", "image_sets", "training",
                                    "checkpoints", "explain", "faithfulness"])
def test_each_module_imports_alone_in_a_fresh_interpreter(module):
    result = subprocess.run([sys.executable, "-c", f"import bla_core.{module}"], capture_output=True, text=True,
                            cwd=PACKAGE.parent, timeout=120)
    assert result.returncode == 0, result.stderr
