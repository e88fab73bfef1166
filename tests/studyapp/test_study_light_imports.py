"""A web worker loads Django and the app only: no analysis stack (pandas, scipy, matplotlib) and no torch."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("pandas", "scipy", "matplotlib", "torch")
PROBE = (
    "import json, os, sys; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings'); "
    "import django; django.setup(); import config.urls; "
    f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
)


def test_urlconf_imports_none_of_the_heavy_libraries() -> None:
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=root, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == []
