"""`validate` catches broken and leaky bundles; `preview` draws a contact sheet."""

import json
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from generation.cli import main
from generation.preview import contact_sheet
from generation.render import describe_render
from generation.validate import PNG_SIGNATURE, validate_bundle


@pytest.fixture
def bundle(fixture_files, tmp_path: Path) -> Path:
    """A freshly built, valid bundle of 6 pairs (2 per question type)."""
    out = tmp_path / "bundle"
    assert main(["build", "--explanations", *fixture_files.paths, "--out", str(out),
                 "--per-type", "2", "--size", "32", "--workers", "1"]) == 0
    return out


def _manifest(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text())


def _save_manifest(bundle: Path, manifest: dict) -> None:
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def _insert_chunk(path: Path, kind: bytes, payload: bytes) -> None:
    """Insert a chunk right after IHDR, as a careless tool would."""
    data = path.read_bytes()
    ihdr_end = len(PNG_SIGNATURE) + 8 + 13 + 4
    chunk = len(payload).to_bytes(4, "big") + kind + payload + zlib.crc32(kind + payload).to_bytes(4, "big")
    path.write_bytes(data[:ihdr_end] + chunk + data[ihdr_end:])


def test_fresh_bundle_is_valid(bundle: Path, capsys) -> None:
    assert validate_bundle(bundle) == []
    assert main(["validate", str(bundle)]) == 0
    assert "bundle is valid" in capsys.readouterr().out


def test_method_name_in_a_file_name_is_reported(bundle: Path, capsys) -> None:
    manifest = _manifest(bundle)
    stimulus = manifest["pairs"][0]["stimuli"][0]
    leaky = "images/bla_t_0.png"
    (bundle / stimulus["file"]).rename(bundle / leaky)
    stimulus["file"] = leaky
    _save_manifest(bundle, manifest)
    assert main(["validate", str(bundle)]) == 1
    assert "images/bla_t_0.png: file name reveals the method word 'bla'" in capsys.readouterr().out


def test_png_text_chunk_is_reported(bundle: Path) -> None:
    name = _manifest(bundle)["pairs"][1]["stimuli"][1]["file"]
    _insert_chunk(bundle / name, b"tEXt", b"Comment\x00made by grad_cam")
    with Image.open(bundle / name) as image:  # still a readable PNG
        assert image.text == {"Comment": "made by grad_cam"}
    assert validate_bundle(bundle) == [f"{name}: PNG carries a tEXt metadata chunk and names the method word 'cam'"]


def test_exif_chunk_is_reported_even_without_method_words(bundle: Path) -> None:
    name = _manifest(bundle)["pairs"][0]["image_file"]
    _insert_chunk(bundle / name, b"eXIf", b"MM\x00\x2a\x00\x00\x00\x08\x00\x00")
    assert validate_bundle(bundle) == [f"{name}: PNG carries a eXIf metadata chunk"]


def test_missing_resized_and_stray_files_and_schema_errors(bundle: Path) -> None:
    manifest = _manifest(bundle)
    first, second = manifest["pairs"][0], manifest["pairs"][1]
    (bundle / first["stimuli"][0]["file"]).unlink()
    Image.new("RGB", (40, 40)).save(bundle / second["stimuli"][1]["file"])
    (bundle / "images" / "0123456789abcdef0123456789abcdef.png").write_bytes(b"")
    manifest["pairs"][2]["true_class"] = "5"
    del manifest["pairs"][3]["random_source_image_id"]
    _save_manifest(bundle, manifest)
    problems = validate_bundle(bundle)
    assert f"{first['stimuli'][0]['file']}: file does not exist" in problems
    assert f"pair {second['pair_id']!r}: its images differ in size [(32, 32), (40, 40)]" in problems
    assert "images/0123456789abcdef0123456789abcdef.png: file is not referenced by the manifest" in problems
    assert any("true_class '5' is not a class of dataset 'mnist38'" in p for p in problems)
    assert any("field 'random_source_image_id' is missing" in p for p in problems)


def test_random_pair_pointing_at_its_own_image_is_reported(bundle: Path) -> None:
    manifest = _manifest(bundle)
    pair = next(p for p in manifest["pairs"] if p["question_type"] == "bla_t_vs_random")
    pair["random_source_image_id"] = pair["image_id"]
    _save_manifest(bundle, manifest)
    assert validate_bundle(bundle) == [f"manifest.json: pair {pair['pair_id']!r}: random_source_image_id is the pair's own image"]


def test_not_a_bundle(tmp_path: Path, capsys) -> None:
    assert main(["validate", str(tmp_path)]) == 1
    assert "manifest.json: manifest file is missing" in capsys.readouterr().out


def test_preview_draws_one_row_per_pair(bundle: Path, tmp_path: Path, capsys) -> None:
    sheet = tmp_path / "sheet.png"
    assert main(["preview", str(bundle), "--out", str(sheet), "--thumb", "64", "--max-pairs", "4"]) == 0
    assert f"wrote a contact sheet of 4 pairs from {bundle} to {sheet}" in capsys.readouterr().out
    with Image.open(sheet) as image:
        heading = 3 * 14 + 8  # the style line, wrapped to the 208 px between the margins: 3 lines
        assert image.size == (8 + 3 * (64 + 8), 8 + heading + 4 * (64 + 3 * 14 + 16))
        pixels = image.convert("RGB")
        first_stimulus = Image.open(bundle / _manifest(bundle)["pairs"][0]["stimuli"][0]["file"])
        expected = first_stimulus.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR)
        top = 8 + heading + 16
        assert pixels.crop((8 + 72, top, 8 + 72 + 64, top + 64)).tobytes() == expected.tobytes()


def test_preview_refuses_a_broken_bundle(tmp_path: Path, capsys) -> None:
    (tmp_path / "manifest.json").write_text("{}")
    assert main(["preview", str(tmp_path), "--out", str(tmp_path / "s.png")]) == 2
    err = capsys.readouterr().err
    assert "schema_version is None" in err and "run `python -m generation validate`" in err
    assert not (tmp_path / "s.png").exists()


def _build_into(fixture_files, out: Path, *extra: str) -> Path:
    assert main(["build", "--explanations", *fixture_files.paths, "--out", str(out),
                 "--per-type", "2", "--size", "32", "--workers", "1", *extra]) == 0
    return out


def test_pairs_drawn_with_another_setting_are_rejected(bundle: Path, fixture_files, tmp_path: Path, capsys) -> None:
    other = _build_into(fixture_files, tmp_path / "cells", "--style", "cells", "--seed", "1")
    manifest, foreign = _manifest(bundle), _manifest(other)["pairs"][0]
    for name in [foreign["image_file"], *(s["file"] for s in foreign["stimuli"])]:
        (bundle / name).write_bytes((other / name).read_bytes())
    manifest["pairs"].append(foreign)  # a pair merged in from a bundle drawn in the cells style
    _save_manifest(bundle, manifest)
    expected = (f"manifest.json: 1 of 7 pairs were not drawn with the bundle's render settings (first: pair "
                f"{foreign['pair_id']!r}); every pair of a bundle must be rendered with one setting")
    assert validate_bundle(bundle) == [expected]
    assert main(["validate", str(bundle)]) == 1
    assert expected in capsys.readouterr().out
    assert main(["preview", str(bundle), "--out", str(tmp_path / "s.png")]) == 2
    assert not (tmp_path / "s.png").exists()


def test_render_record_that_lies_about_the_pairs_is_rejected(bundle: Path) -> None:
    manifest = _manifest(bundle)
    manifest["render"]["alpha"] = 0.8  # the record no longer says how the pairs were drawn
    _save_manifest(bundle, manifest)
    assert validate_bundle(bundle) == [
        "manifest.json: 6 of 6 pairs were not drawn with the bundle's render settings (first: pair "
        f"{manifest['pairs'][0]['pair_id']!r}); every pair of a bundle must be rendered with one setting"]


def test_malformed_render_record_is_one_sentence(bundle: Path) -> None:
    manifest = _manifest(bundle)
    manifest["render"]["style"] = "sparkle"
    _save_manifest(bundle, manifest)
    assert validate_bundle(bundle) == [
        "manifest.json: render.style 'sparkle' is not a render style (choose overlay or cells)"]


def test_bundles_from_before_render_styles_still_validate(bundle: Path) -> None:
    manifest = _manifest(bundle)
    for pair in manifest["pairs"]:
        del pair["render_id"]
    manifest["render"] = {"size": 32, "upscale": "nearest", "image_resample": "bilinear", "colormap": "turbo",
                          "alpha": 0.5}  # as written before styles existed
    _save_manifest(bundle, manifest)
    assert validate_bundle(bundle) == []
    del manifest["render"]
    _save_manifest(bundle, manifest)
    assert validate_bundle(bundle) == []
    manifest["pairs"][0]["render_id"] = "0123456789abcdef"
    _save_manifest(bundle, manifest)
    assert validate_bundle(bundle) == [
        "manifest.json: pairs carry a render_id but the manifest has no render record saying how they were drawn"]


def test_contact_sheet_names_the_style(bundle: Path, tmp_path: Path) -> None:
    manifest = _manifest(bundle)
    heading = "style overlay (bilinear, turbo, alpha 0.5): colour blended over the whole image, as the paper's authors drew"
    assert describe_render(manifest["render"]) == heading
    sheet, rows = contact_sheet(bundle, thumb=160, max_pairs=1)
    font = ImageFont.load_default()
    expected = Image.new("RGB", (sheet.width, 14), "white")
    ImageDraw.Draw(expected).text((8, 0), heading, fill=(20, 20, 20), font=font)
    assert rows == 1 and sheet.crop((0, 8, sheet.width, 22)).tobytes() == expected.tobytes()
