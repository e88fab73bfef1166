"""`python -m generation usefulness` (issue 27): distinction, agreement and forward-simulation bundles from
small hand-made explanations files — trial counts, panel order (prediction first), the correct/incorrect
mix, disjoint forward-simulation phases and arms, the bundle check, the study app's import, and one
clear error (nothing written) for bad input."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import Fixture, write_explanations

from contracts.bundle import check_manifest, read_manifest
from contracts.usefulness import LEARN, NO_EXPLANATION, POST, PRE
from generation.cli import main
from generation.validate import validate_bundle

WRONG = (3, 7, 11, 15)  # images every model misclassifies
CAM_WRONG = 0  # the baseline (CAM's model) also errs on image 0


def _rewrite(path: Path, **changes: Any) -> None:
    fields = {**np.load(path), **changes}
    write_explanations(path, **fields)


def _usefulness_fixture(factory: Callable[..., Fixture], *, class_maps: bool = True, classes: int = 2,
                        name: str = "explanations") -> Fixture:
    """16 images; bla_t, l2x_f and cam files whose models misclassify WRONG (cam also image 0), with the
    class maps ``bla_core explain`` writes (class-agnostic methods repeat their map)."""
    fixture = factory(name, count=16)
    for method, path in fixture.files.items():
        fields = dict(np.load(path))
        preds = fields["labels"].copy()
        wrong = [*WRONG, CAM_WRONG] if method == "cam" else list(WRONG)
        preds[wrong] = 1 - preds[wrong]
        changes: dict[str, Any] = {"preds": preds}
        if classes == 3:
            changes["class_names"] = np.array(["3", "8", "5"])
        if class_maps:
            ranked = [preds, 1 - preds] + ([np.full_like(preds, 2)] if classes == 3 else [])
            maps = fields["maps"]
            per_class = [maps] * classes if method != "cam" else [maps, -maps, maps ** 2][:classes]
            changes.update(class_ids=np.stack(ranked, 1), class_maps=np.stack(per_class, 1).astype(np.float32))
        _rewrite(path, **changes)
        fixture.preds[method] = preds
    return fixture


def _run(fixture: Fixture, out: Path, task: str, *extra: str, files: Sequence[str] | None = None) -> int:
    return main(["usefulness", "--task", task, "--explanations", *(files or fixture.paths), "--out", str(out),
                 "--seed", "3", "--size", "32", "--workers", "1", *extra])


def _manifest(out: Path) -> dict[str, Any]:
    manifest, _ = read_manifest(out)
    assert check_manifest(manifest) == []
    assert validate_bundle(out) == []
    return manifest


def _one_error(capsys: pytest.CaptureFixture[str], out: Path) -> str:
    """The one stderr line of a refused build, after checking that nothing was written beside ``out``."""
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    assert not out.exists()
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}") or p.name.startswith(out.name)] == []
    return err


@pytest.fixture
def fixture(fixture_factory: Callable[..., Fixture]) -> Fixture:
    return _usefulness_fixture(fixture_factory)


def test_distinction_shows_one_panel_per_top_class_prediction_first_on_the_same_images(fixture, tmp_path) -> None:
    out = tmp_path / "distinction"
    assert _run(fixture, out, "distinction", "--per-method", "16") == 0
    manifest = _manifest(out)
    trials = manifest["trials"]
    assert manifest["task"] == "distinction" and manifest["arms"] is None and "pairs" not in manifest
    assert Counter(t["method"] for t in trials) == {"bla_t": 16, "l2x_f": 16, "cam": 16}
    for trial in trials:
        classes = [p["class"] for p in trial["panels"]]
        assert classes[0] == trial["predicted_class"] and sorted(classes) == ["3", "8"]
        assert trial["phase"] is None and trial["model_correct"] == (trial["predicted_class"] == trial["true_class"])
        row = fixture.image_ids.index(trial["image_id"])
        assert trial["predicted_class"] == ["3", "8"][fixture.preds[trial["method"]][row]]
    images = {m: sorted(t["image_id"] for t in trials if t["method"] == m) for m in ("bla_t", "l2x_f", "cam")}
    assert images["bla_t"] == images["l2x_f"] == images["cam"] == sorted(fixture.image_ids)  # misclassified kept
    assert sum(not t["model_correct"] for t in trials) == 4 + 4 + 5
    assert len({t["render_id"] for t in trials}) == 1 and manifest["generator"]["options"]["k"] == {"mnist38": 2}


def test_distinction_panels_of_a_class_specific_method_differ_and_per_method_spreads_the_classes(fixture,
                                                                                                 tmp_path) -> None:
    out = tmp_path / "distinction"
    assert _run(fixture, out, "distinction", "--per-method", "6") == 0
    trials = _manifest(out)["trials"]
    assert Counter(t["method"] for t in trials) == {"bla_t": 6, "l2x_f": 6, "cam": 6}
    cam = [t for t in trials if t["method"] == "cam"]
    assert Counter(t["true_class"] for t in cam) == {"3": 3, "8": 3}
    first, second = ((out / p["file"]).read_bytes() for p in cam[0]["panels"])
    assert first != second  # CAM explains each class with its own map
    assert {t["image_id"] for t in cam} == {t["image_id"] for t in trials if t["method"] == "bla_t"}


def test_distinction_with_three_classes_keeps_the_top_k_order_and_k_limits_the_panels(fixture_factory,
                                                                                      tmp_path) -> None:
    three = _usefulness_fixture(fixture_factory, classes=3, name="three")
    assert _run(three, tmp_path / "k3", "distinction", "--per-method", "4") == 0
    for trial in _manifest(tmp_path / "k3")["trials"]:
        other = "8" if trial["predicted_class"] == "3" else "3"
        assert [p["class"] for p in trial["panels"]] == [trial["predicted_class"], other, "5"]
    assert _run(three, tmp_path / "k2", "distinction", "--per-method", "4", "--k", "2") == 0
    assert {len(t["panels"]) for t in _manifest(tmp_path / "k2")["trials"]} == {2}


def test_agreement_mixes_correct_and_misclassified_at_the_share_with_shared_images(fixture, tmp_path) -> None:
    out = tmp_path / "agreement"
    assert _run(fixture, out, "agreement", "--per-method", "8", "--correct-share", "0.75") == 0
    manifest = _manifest(out)
    trials = manifest["trials"]
    assert manifest["generator"]["options"]["correct_share"] == 0.75
    for method in ("bla_t", "l2x_f", "cam"):
        own = [t for t in trials if t["method"] == method]
        assert Counter(t["model_correct"] for t in own) == {True: 6, False: 2}
        assert all(len(t["panels"]) == 1 and t["panels"][0]["class"] == t["predicted_class"] for t in own)
    wrong = {m: {t["image_id"] for t in trials if t["method"] == m and not t["model_correct"]} for m in ("bla_t", "cam")}
    assert wrong["bla_t"] == wrong["cam"] <= {fixture.image_ids[i] for i in WRONG}  # misclassified by every model first


def test_agreement_defaults_to_half_correct_and_needs_no_class_maps(fixture_factory, tmp_path) -> None:
    plain = _usefulness_fixture(fixture_factory, class_maps=False)
    out = tmp_path / "agreement"
    assert _run(plain, out, "agreement", "--per-method", "8") == 0
    trials = _manifest(out)["trials"]
    assert Counter(t["model_correct"] for t in trials) == {True: 12, False: 12}


def test_forward_simulation_has_disjoint_phases_shared_tests_and_one_learn_trial_per_arm(fixture, tmp_path,
                                                                                          capsys) -> None:
    out = tmp_path / "forward"
    assert _run(fixture, out, "forward_simulation", "--pre", "3", "--learn", "4", "--post", "5") == 0
    assert "left out of forward simulation" in capsys.readouterr().err  # image 0: CAM's model disagrees
    manifest = _manifest(out)
    trials = manifest["trials"]
    assert manifest["arms"] == ["bla_t", "l2x_f", "cam", NO_EXPLANATION]
    phases = {phase: {t["image_id"] for t in trials if t["phase"] == phase} for phase in (PRE, LEARN, POST)}
    assert [len(phases[p]) for p in (PRE, LEARN, POST)] == [3, 4, 5]
    assert not (phases[PRE] & phases[LEARN] or phases[PRE] & phases[POST] or phases[LEARN] & phases[POST])
    assert fixture.image_ids[CAM_WRONG] not in set().union(*phases.values())
    assert sum(t["phase"] == PRE for t in trials) == 3 and sum(t["phase"] == POST for t in trials) == 5
    assert all(t["method"] is None and t["panels"] == [] for t in trials if t["phase"] != LEARN)
    learn = [t for t in trials if t["phase"] == LEARN]
    assert Counter(t["method"] for t in learn) == {arm: 4 for arm in manifest["arms"]}
    assert all((t["panels"] == []) == (t["method"] == NO_EXPLANATION) for t in learn)
    assert all(t["panels"][0]["class"] == t["predicted_class"] for t in learn if t["panels"])


def test_forward_simulation_share_applies_per_phase(fixture, tmp_path) -> None:
    out = tmp_path / "forward"
    assert _run(fixture, out, "forward_simulation", "--pre", "2", "--learn", "2", "--post", "2",
                "--correct-share", "0.5") == 0
    trials = _manifest(out)["trials"]
    for phase in (PRE, LEARN, POST):
        shown = {t["image_id"]: t["model_correct"] for t in trials if t["phase"] == phase}
        assert sorted(shown.values()) == [False, True]


def test_same_seed_same_trials_and_files(fixture, tmp_path) -> None:
    for name in ("one", "two"):
        assert _run(fixture, tmp_path / name, "agreement", "--per-method", "4") == 0
    one, two = _manifest(tmp_path / "one"), _manifest(tmp_path / "two")
    assert one["trials"] == two["trials"]  # the bundle id digests argv too (another --out)
    assert sorted(p.name for p in (tmp_path / "one" / "images").iterdir()) == sorted(
        p.name for p in (tmp_path / "two" / "images").iterdir())


def test_usefulness_file_names_differ_from_a_preference_bundle_of_the_same_files(fixture, tmp_path) -> None:
    assert main(["build", "--explanations", *fixture.paths, "--out", str(tmp_path / "pref"), "--seed", "3",
                 "--per-type", "2", "--size", "32", "--workers", "1", "--include-misclassified"]) == 0
    assert _run(fixture, tmp_path / "use", "agreement", "--per-method", "2") == 0
    names = [{p.name for p in (tmp_path / b / "images").iterdir()} for b in ("pref", "use")]
    assert not names[0] & names[1]


def test_without_class_maps_distinction_is_refused_naming_the_file(fixture_factory, tmp_path, capsys) -> None:
    plain = _usefulness_fixture(fixture_factory, class_maps=False)
    out = tmp_path / "bundle"
    assert _run(plain, out, "distinction") == 2
    err = _one_error(capsys, out)
    assert "has no class_maps" in err and "mnist38_bla_t.npz" in err


def test_too_few_misclassified_images_are_refused_naming_how_many_exist(fixture, tmp_path, capsys) -> None:
    out = tmp_path / "bundle"
    assert _run(fixture, out, "agreement", "--per-method", "12", "--correct-share", "0.25") == 2
    err = _one_error(capsys, out)
    assert "needs 9 misclassified images" in err and "has only 4 misclassified of its 16 images" in err
    assert "--correct-share" in err


@pytest.mark.parametrize("args, words", [
    (("--task", "preference"), "--task 'preference' is not a usefulness task"),
    (("--task", "distinction", "--k", "3"), "--k 3 asks for 3 panels, but dataset 'mnist38' has only 2 classes"),
    (("--task", "distinction", "--k", "5"), "--k 5 must be between 2 and 4"),
    (("--task", "forward_simulation", "--pre", "6", "--learn", "6", "--post", "6"), "forward simulation needs"),
    (("--task", "agreement", "--dataset-task", "cifar=tell cats"), "--dataset-task names dataset 'cifar'"),
])
def test_bad_requests_print_one_error_and_write_nothing(fixture, tmp_path, capsys, args, words) -> None:
    out = tmp_path / "bundle"
    code = main(["usefulness", *args, "--explanations", *fixture.paths, "--out", str(out), "--size", "32",
                 "--workers", "1"])
    assert code == 2
    assert words in _one_error(capsys, out)


def test_an_unselective_run_is_refused_unless_allowed(fixture, tmp_path, capsys) -> None:
    verdict = {"selective": False, "reasons": ["dead"], "reason_texts": ["the module is dead"], "run": "r", "seed": 1}
    _rewrite(fixture.files["bla_t"], selectivity=np.array(json.dumps(verdict)))
    out = tmp_path / "bundle"
    assert _run(fixture, out, "agreement", "--per-method", "2") == 2
    assert "--allow-unselective" in _one_error(capsys, out)
    assert _run(fixture, out, "agreement", "--per-method", "2", "--allow-unselective") == 0


@pytest.mark.django_db
@pytest.mark.parametrize("task", ["distinction", "agreement", "forward_simulation"])
def test_the_study_app_imports_each_kind(fixture, tmp_path, settings, task) -> None:
    from studyapp.operations.bundle import import_bundle
    from studyapp.operations.bundle import validate_bundle as app_validate

    settings.MEDIA_ROOT = tmp_path / "media"
    out = tmp_path / task
    assert _run(fixture, out, task, "--per-method", "4", "--pre", "2", "--learn", "2", "--post", "2") == 0
    result = import_bundle(app_validate(out), task.replace("_", "-"), title=task)
    assert result.created and result.pairs == len(_manifest(out)["trials"])


def test_preview_draws_a_row_per_trial_with_its_panels(fixture, tmp_path, capsys) -> None:
    out = tmp_path / "distinction"
    assert _run(fixture, out, "distinction", "--per-method", "2") == 0
    sheet = tmp_path / "sheet.png"
    assert main(["preview", str(out), "--out", str(sheet), "--thumb", "32"]) == 0
    assert f"wrote a contact sheet of 6 trials from {out}" in capsys.readouterr().out
    assert sheet.is_file()
