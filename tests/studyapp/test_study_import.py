"""import_stimuli: validation with one clear sentence, all-or-nothing import, idempotent re-import, opaque clean images."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from PIL import Image, PngImagePlugin

from studyapp.models import Bundle, Pair, Stimulus, Study

pytestmark = pytest.mark.django_db

METHOD_WORDS = ("bla", "cam", "l2x", "lime", "random")


def _import(bundle: Path, slug: str = "s1", *extra: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command("import_stimuli", str(bundle), "--study", slug, *extra, stdout=out, verbosity=0)
    return out.getvalue()


def _rewrite(bundle: Path, change) -> None:
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def _media_files(media_root: Path) -> list[Path]:
    return sorted(p for p in media_root.rglob("*") if p.is_file()) if media_root.exists() else []


def test_import_creates_study_pairs_and_opaque_images(bundle_dir, media_root):
    summary = _import(bundle_dir, "s1", "--title", "My study", "--open")
    assert "imported bundle 'synthetic-1': 36 pairs, 88 images" in summary and "/s/s1/" in summary
    study = Study.objects.get(slug="s1")
    assert (study.title, study.status) == ("My study", "open")
    assert Pair.objects.filter(bundle__study=study).count() == 36
    assert Stimulus.objects.count() == 72
    files = _media_files(media_root)
    assert len(files) == 88  # 72 explanations + 16 plain images
    source_names = {p.name for p in (bundle_dir / "images").iterdir()}
    for stimulus in Stimulus.objects.all():
        name = Path(stimulus.image.name).name
        assert re.fullmatch(r"[0-9a-f]{32}\.(png|jpg)", name)  # hex: no letter beyond f, so no method word by chance
        assert name not in source_names and not any(w in name.lower() for w in METHOD_WORDS)
        assert stimulus.method not in stimulus.url


def test_reimport_changes_nothing(bundle_dir, media_root):
    _import(bundle_dir)
    before = (list(Stimulus.objects.values_list("pk", "image")), _media_files(media_root))
    summary = _import(bundle_dir)
    assert "already imported; nothing changed" in summary
    assert (list(Stimulus.objects.values_list("pk", "image")), _media_files(media_root)) == before
    assert Bundle.objects.count() == 1


def test_changed_bundle_with_same_id_is_refused(bundle_dir, media_root):
    _import(bundle_dir)
    _rewrite(bundle_dir, lambda m: m["pairs"][0].update(true_class="3"))
    with pytest.raises(CommandError, match="already holds bundle 'synthetic-1' with different content"):
        _import(bundle_dir)


def test_metadata_is_stripped_from_images(bundle_dir, media_root):
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    first = bundle_dir / manifest["pairs"][0]["stimuli"][0]["file"]
    info = PngImagePlugin.PngInfo()
    info.add_text("method", "bla_t")
    with Image.open(first) as image:
        image.save(first, "PNG", pnginfo=info)
    _import(bundle_dir)
    stimulus = Stimulus.objects.get(pair__pair_id=manifest["pairs"][0]["pair_id"], order=0)
    stored = Path(media_root) / stimulus.image.name
    assert b"bla_t" not in stored.read_bytes()
    with Image.open(stored) as image, Image.open(first) as original:
        assert image.tobytes() == original.convert(image.mode).tobytes()


def _bad_manifest_cases():
    return [
        ("schema", lambda m: m.update(schema_version=2), "schema_version is 2"),
        ("dataset ref", lambda m: m["pairs"][3].update(dataset="nope"), "pairs[3].dataset 'nope' is not one of"),
        ("dup pair", lambda m: m["pairs"][5].update(pair_id=m["pairs"][4]["pair_id"]), "pairs[5].pair_id"),
        ("class", lambda m: m["pairs"][2].update(predicted_class="9"), "pairs[2].predicted_class '9' is not a class"),
        ("one stimulus", lambda m: m["pairs"][1]["stimuli"].pop(), "pairs[1].stimuli must hold exactly 2"),
        ("same method", lambda m: m["pairs"][1]["stimuli"][1].update(method=m["pairs"][1]["stimuli"][0]["method"]),
         "pairs[1].stimuli both use method"),
        ("escape", lambda m: m["pairs"][0]["stimuli"][0].update(file="../outside.png"), "must be a path inside the bundle"),
        ("missing file", lambda m: m["pairs"][7]["stimuli"][1].update(file="images/none.png"), "does not exist"),
        ("no pairs", lambda m: m.update(pairs=[]), "pairs must be a non-empty list"),
        ("size", lambda m: m["pairs"][0]["stimuli"][0].update(explanation_size=-1), "explanation_size must be"),
    ]


@pytest.mark.parametrize(("case", "change", "message"), _bad_manifest_cases(), ids=[c[0] for c in _bad_manifest_cases()])
def test_invalid_manifest_is_refused_and_nothing_is_written(bundle_dir, media_root, case, change, message):
    _rewrite(bundle_dir, change)
    with pytest.raises(CommandError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        _import(bundle_dir)
    assert not Study.objects.exists() and not Pair.objects.exists()
    assert _media_files(media_root) == []


def test_corrupt_image_and_broken_json_are_refused(bundle_dir, media_root):
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    victim = bundle_dir / manifest["pairs"][-1]["stimuli"][0]["file"]
    victim.write_bytes(victim.read_bytes()[:30])
    with pytest.raises(CommandError, match=f"{victim}: not a readable image"):
        _import(bundle_dir)
    (bundle_dir / "manifest.json").write_text('{"schema_version": 1,')
    with pytest.raises(CommandError, match="not valid UTF-8 JSON"):
        _import(bundle_dir)
    with pytest.raises(CommandError, match="bundle folder does not exist"):
        _import(bundle_dir / "nope")
    assert not Study.objects.exists() and _media_files(media_root) == []


def test_failure_during_import_rolls_back_rows_and_files(bundle_dir, media_root, monkeypatch):
    import studyapp.operations.bundle as bundle_module

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(bundle_module.Stimulus.objects, "bulk_create", broken)
    with pytest.raises(RuntimeError):
        _import(bundle_dir)
    assert not Study.objects.exists() and not Bundle.objects.exists()
    assert _media_files(media_root) == []


def test_second_bundle_into_same_study_is_refused(bundle_dir, media_root, tmp_path):
    from tests.synthetic_bundle import write_synthetic_bundle

    _import(bundle_dir)
    other = write_synthetic_bundle(tmp_path / "other", pairs_per_cell=2, seed=5, bundle_id="another")
    with pytest.raises(CommandError, match="already holds bundle 'synthetic-1'; import 'another' into a new study"):
        _import(other)
    assert Bundle.objects.count() == 1 and len(_media_files(media_root)) == 88

