"""Bad bundles: each problem gives one clear sentence naming it, a non-zero exit, and nothing imported."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from django.core.management import CommandError, call_command

from studyapp.models import Bundle, Pair, Stimulus, Study

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def _manifest(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text())


def _stimulus(bundle: Path, pair: int = 0, side: int = 0) -> Path:
    return bundle / _manifest(bundle)["pairs"][pair]["stimuli"][side]["file"]


def _edit(bundle: Path, change: Callable[[dict], None]) -> None:
    manifest = _manifest(bundle)
    change(manifest)
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def corrupt_image(bundle: Path) -> str:
    victim = _stimulus(bundle, 9, 1)
    data = bytearray(victim.read_bytes())
    data[60:80] = bytes(20)  # damage inside the image data: the PNG checksum no longer fits
    victim.write_bytes(bytes(data))
    return f"{victim}: not a readable image"


def truncated_manifest(bundle: Path) -> str:
    path = bundle / "manifest.json"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return f"{path}: not valid UTF-8 JSON"


def missing_file(bundle: Path) -> str:
    victim = _stimulus(bundle, 4, 0)
    victim.unlink()
    return f"pairs[4].stimuli[0].file: image file {victim} does not exist"


def duplicate_pair_id(bundle: Path) -> str:
    _edit(bundle, lambda m: m["pairs"][7].update(pair_id=m["pairs"][2]["pair_id"]))
    return f"pairs[7].pair_id '{_manifest(bundle)['pairs'][2]['pair_id']}' appears twice"


def image_of_another_size(bundle: Path) -> str:
    victim = _stimulus(bundle, 3, 1)
    with Image.open(victim) as image:
        image.resize((image.width * 2, image.height * 2)).save(victim)
    return "pairs[3]: its images differ in size"


def stray_image(bundle: Path) -> str:
    extra = bundle / "images" / "0000000000000000.png"
    shutil.copy(_stimulus(bundle, 0, 0), extra)
    return f"{extra}: image is in the bundle but not in its manifest"


def manifest_of_another_bundle(bundle: Path) -> str:
    """The images of one bundle with the manifest of another: files missing and files unreferenced."""
    from tests.synthetic_bundle import write_synthetic_bundle

    other = write_synthetic_bundle(bundle.parent / "other", pairs_per_cell=6, seed=99)
    shutil.copy(other / "manifest.json", bundle / "manifest.json")
    return "does not exist"


def jpeg_named_png(bundle: Path) -> str:
    victim = _stimulus(bundle, 5, 0)
    with Image.open(victim) as image:
        image.convert("RGB").save(victim, "JPEG")
    return f"{victim}: the file is a JPEG image, not PNG"


CASES = [corrupt_image, truncated_manifest, missing_file, duplicate_pair_id, image_of_another_size, stray_image,
         manifest_of_another_bundle, jpeg_named_png]  # fmt: skip


def _media_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.mark.parametrize("damage", CASES, ids=[c.__name__ for c in CASES])
def test_bad_bundle_is_refused_with_one_sentence_and_nothing_imported(damage, bundle_dir, media_root):
    expected = damage(bundle_dir)
    with pytest.raises(CommandError) as refused:
        call_command("import_stimuli", str(bundle_dir), "--study", "bad", verbosity=0)
    message = str(refused.value)
    assert expected in message and "\n" not in message and message.endswith(".")
    assert (Study.objects.count(), Bundle.objects.count(), Pair.objects.count(), Stimulus.objects.count()) == (0, 0, 0, 0)
    assert _media_files(media_root) == []


def test_the_command_line_shows_one_line_and_exits_non_zero(bundle_dir, tmp_path):
    expected = corrupt_image(bundle_dir)
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3", "MEDIA_ROOT": str(tmp_path / "media")}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=120)
    result = subprocess.run([sys.executable, "manage.py", "import_stimuli", str(bundle_dir), "--study", "bad"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"CommandError: {result.stderr.strip().split(': ', 1)[1]}"]
    assert expected in result.stderr and not _media_files(tmp_path / "media")
