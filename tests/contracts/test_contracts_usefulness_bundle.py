"""The bundle check of usefulness bundles (docs/formats.md "Usefulness bundles"): one valid manifest per
task, then one broken field per check with the exact sentence it gets."""
from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from contracts.bundle import (
    bundle_entries,
    bundle_task,
    check_manifest,
    manifest_files,
    panel_files,
    referenced_files,
)
from contracts.render import render_record_id

RENDER = {"style": "overlay", "size": 224, "upscale": "bilinear", "image_resample": "bilinear",
          "colormap": "turbo", "alpha": 0.5}
RENDER_ID = render_record_id(RENDER)
CLASSES = ["3", "8", "5"]


def _file(n: int) -> str:
    return f"images/{n:032x}.png"


def _trial(n: int, method: str | None, panels: list[str], *, phase: str | None = None,
           true: str = "3", predicted: str = "3", image: str | None = None) -> dict[str, Any]:
    return {"trial_id": f"t{n:03d}", "dataset": "digits", "image_id": image or f"img{n}",
            "true_class": true, "predicted_class": predicted, "model_correct": true == predicted,
            "method": method, "phase": phase, "image_file": _file(1000 + n),
            "panels": [{"class": c, "file": _file(n * 10 + i)} for i, c in enumerate(panels)],
            "render_id": RENDER_ID}


def _manifest(task: str, trials: list[dict], arms: list[str] | None = None) -> dict[str, Any]:
    return {"schema_version": 1, "bundle_id": "b1", "created_at": "2026-12-07T10:00:00Z",
            "generator": {"version": "1", "seed": 0, "argv": []},
            "datasets": [{"key": "digits", "title": "Digits", "task": "to tell digits apart",
                          "class_names": CLASSES}],
            "render": RENDER, "task": task, "arms": arms, "trials": trials,
            "provenance": {"explanations": {"a.npz": "0" * 64}}}


def distinction() -> dict[str, Any]:
    return _manifest("distinction", [_trial(1, "cam", ["3", "8", "5"]),
                                     _trial(2, "bla_t", ["8", "3"], true="3", predicted="8")])


def agreement() -> dict[str, Any]:
    return _manifest("agreement", [_trial(1, "cam", ["3"]), _trial(2, "cam", ["5"], predicted="5")])


def forward() -> dict[str, Any]:
    return _manifest("forward_simulation", [
        _trial(1, None, [], phase="pre"),
        _trial(2, "cam", ["8"], phase="learn", predicted="8", image="L"),
        _trial(3, "none", [], phase="learn", predicted="8", image="L"),
        _trial(4, None, [], phase="post", true="5"),
    ], arms=["cam", "none"])


BUILDERS: dict[str, Callable[[], dict[str, Any]]] = {
    "distinction": distinction, "agreement": agreement, "forward_simulation": forward}


@pytest.mark.parametrize("task", BUILDERS)
def test_a_valid_bundle_of_each_task_passes(task: str) -> None:
    manifest = BUILDERS[task]()
    assert check_manifest(manifest) == []
    assert bundle_task(manifest) == task
    assert [t["trial_id"] for t in bundle_entries(manifest)] == [t["trial_id"] for t in manifest["trials"]]


def test_the_task_is_preference_when_absent_or_null_and_an_unknown_one_is_refused() -> None:
    assert bundle_task({}) == bundle_task({"task": None}) == bundle_task({"task": "preference"}) == "preference"
    manifest = distinction()
    manifest["task"] = "ranking"
    message = ("manifest.json: task 'ranking' is not one of preference, distinction, agreement, "
               "forward_simulation")
    with pytest.raises(ValueError, match=f"^{message}$"):
        bundle_task(manifest)
    assert check_manifest(manifest) == [message]


def test_a_usefulness_bundle_needs_trials_not_pairs() -> None:
    manifest = distinction()
    manifest["pairs"] = manifest.pop("trials")
    assert check_manifest(manifest) == [
        "manifest.json: field 'trials' must be a list",
        "manifest.json: a distinction bundle lists trials, not pairs (one bundle holds one task)"]
    manifest = distinction()
    manifest["trials"] = []
    assert check_manifest(manifest) == ["manifest.json: trials is empty"]


def test_a_preference_bundle_still_needs_pairs() -> None:
    manifest = distinction()
    del manifest["task"]
    assert check_manifest(manifest) == [
        "manifest.json: field 'pairs' must be a list",
        "manifest.json: a preference bundle lists pairs, not trials (one bundle holds one task)"]


def test_trial_files_are_referenced_panels_first_then_the_plain_image() -> None:
    manifest = forward()
    learn = manifest["trials"][1]
    assert panel_files(learn) == [_file(20)]
    assert referenced_files(learn) == [_file(20), _file(1002)]
    assert manifest_files(manifest) == [_file(1001), _file(20), _file(1002), _file(1003), _file(1004)]
    assert manifest_files({"task": "nonsense"}) == [] and panel_files({"panels": [{"class": "3"}]}) == []


def _broken(build: Callable[[], dict[str, Any]], index: int, **fields: Any) -> dict[str, Any]:
    manifest = copy.deepcopy(build())
    manifest["trials"][index].update(fields)
    return manifest


BROKEN_TRIALS = [
    (distinction, 1, {"trial_id": "t001"}, "manifest.json: trial 't001': trial_id appears twice"),
    (distinction, 0, {"trial_id": ""}, "manifest.json: trial '': trial_id must be a non-empty string"),
    (distinction, 0, {"dataset": "cifar"}, "manifest.json: trial 't001': dataset 'cifar' is not listed in datasets"),
    (distinction, 0, {"image_id": ""}, "manifest.json: trial 't001': image_id must be a non-empty string"),
    (distinction, 0, {"true_class": "9", "model_correct": False},
     "manifest.json: trial 't001': true_class '9' is not a class of dataset 'digits'"),
    (distinction, 0, {"model_correct": "yes"},
     "manifest.json: trial 't001': model_correct must be true or false, got 'yes'"),
    (distinction, 1, {"model_correct": True},
     "manifest.json: trial 't002': model_correct is true but predicted_class '8' and true_class '3' differ"),
    (agreement, 0, {"model_correct": False},
     "manifest.json: trial 't001': model_correct is false but predicted_class '3' and true_class '3' agree"),
    (distinction, 0, {"image_file": None}, "manifest.json: trial 't001': image_file must name the plain image"),
    (distinction, 0, {"method": None}, ("manifest.json: trial 't001': method None must be a method key in a "
                                       "distinction trial")),
    (agreement, 0, {"method": "none"}, ("manifest.json: trial 't001': method 'none' must be a method key in an "
                                       "agreement trial")),
    (distinction, 0, {"phase": "pre"}, ("manifest.json: trial 't001': phase must be null in a distinction trial, "
                                       "got 'pre'")),
    (distinction, 0, {"panels": [{"class": "3"}]},
     "manifest.json: trial 't001': panels must be a list of objects with a string 'class' and 'file'"),
    (distinction, 0, {"panels": [{"class": "3", "file": _file(5)}]},
     "manifest.json: trial 't001': a distinction trial shows 2 to 4 panels, got 1"),
    (distinction, 0, {"panels": [{"class": c, "file": _file(i)} for i, c in enumerate("38583")]},
     "manifest.json: trial 't001': a distinction trial shows 2 to 4 panels, got 5"),
    (distinction, 0, {"panels": [{"class": c, "file": _file(i)} for i, c in enumerate("39")]},
     "manifest.json: trial 't001': panel class '9' is not a class of dataset 'digits'"),
    (distinction, 0, {"panels": [{"class": c, "file": _file(i)} for i, c in enumerate("33")]},
     "manifest.json: trial 't001': panel classes ['3', '3'] repeat a class; each panel explains another class"),
    (distinction, 0, {"panels": [{"class": c, "file": _file(i)} for i, c in enumerate("83")]},
     "manifest.json: trial 't001': the first panel must explain the predicted class '3', got '8'"),
    (agreement, 0, {"panels": []}, "manifest.json: trial 't001': an agreement trial shows exactly one panel, got 0"),
    (agreement, 0, {"panels": [{"class": "8", "file": _file(5)}]},
     "manifest.json: trial 't001': the first panel must explain the predicted class '3', got '8'"),
    (forward, 0, {"method": "cam"}, "manifest.json: trial 't001': method must be null in a pre trial, got 'cam'"),
    (forward, 3, {"panels": [{"class": "3", "file": _file(5)}]},
     "manifest.json: trial 't004': a post trial shows no panels, got 1"),
    (forward, 1, {"panels": []}, "manifest.json: trial 't002': a learn trial shows exactly one panel, got 0"),
    (forward, 2, {"panels": [{"class": "8", "file": _file(5)}]},
     "manifest.json: trial 't003': a learn trial of the 'none' arm shows no panels, got 1"),
    (forward, 0, {"trial_id": "cam-1"}, "manifest.json: trial_id 'cam-1' reveals a method word"),
    (forward, 0, {"image_file": "images/pre.png"}, "images/pre.png: file name is not images/<32 hex characters>.png"),
    (forward, 0, {"render_id": "0" * 16},
     ("manifest.json: 1 of 4 trials were not drawn with the bundle's render settings (first: trial 't001'); "
     "every trial of a bundle must be rendered with one setting")),
]


@pytest.mark.parametrize("build, index, fields, message", BROKEN_TRIALS)
def test_each_broken_trial_field_gets_its_one_sentence(
        build: Callable[[], dict[str, Any]], index: int, fields: dict[str, Any], message: str) -> None:
    assert check_manifest(_broken(build, index, **fields)) == [message]


@pytest.mark.parametrize("arms, message", [
    (None, "manifest.json: arms must list method keys and optionally 'none', got None"),
    ([], "manifest.json: arms must list method keys and optionally 'none', got []"),
    (["cam", "Bad"], "manifest.json: arms must list method keys and optionally 'none', got ['cam', 'Bad']"),
    (["cam", "none", "cam"], "manifest.json: arm 'cam' is listed twice"),
])
def test_forward_simulation_arms_are_method_keys_and_none_each_once(arms: Any, message: str) -> None:
    manifest = forward()
    manifest["arms"] = arms
    assert check_manifest(manifest) == [message]


def test_a_forward_trial_has_a_phase_and_a_learn_trial_an_arm() -> None:
    assert check_manifest(_broken(forward, 0, phase=None)) == [
        "manifest.json: trial 't001': phase None must be one of pre, learn, post",
        "manifest.json: a forward_simulation bundle needs pre trials and has none"]
    assert check_manifest(_broken(forward, 1, method="bla_t")) == [
        "manifest.json: trial 't002': method 'bla_t' of a learn trial is not one of the arms ['cam', 'none']",
        ("manifest.json: arm 'cam' has no learn trial for 1 of the 1 learning images (first: 'L'); every arm "
        "learns from the same images")]


def test_only_forward_simulation_has_arms() -> None:
    manifest = agreement()
    manifest["arms"] = ["cam"]
    assert check_manifest(manifest) == [
        "manifest.json: arms must be null in an agreement bundle (only forward simulation has arms)"]


def test_every_arm_learns_from_every_learning_image() -> None:
    manifest = forward()
    manifest["arms"] = ["cam", "bla_t", "none"]
    manifest["trials"][2]["image_id"] = "M"
    assert check_manifest(manifest) == [
        ("manifest.json: arm 'cam' has no learn trial for 1 of the 2 learning images (first: 'M'); "
        "every arm learns from the same images"),
        ("manifest.json: arm 'bla_t' has no learn trial for 2 of the 2 learning images (first: 'L'); "
        "every arm learns from the same images"),
        ("manifest.json: arm 'none' has no learn trial for 1 of the 2 learning images (first: 'L'); "
        "every arm learns from the same images")]


def test_forward_simulation_needs_every_phase_and_no_image_in_two() -> None:
    manifest = forward()
    manifest["trials"][3]["image_id"] = "img1"
    assert check_manifest(manifest) == [
        ("manifest.json: 1 image(s) are in more than one phase (first: 'img1' of 'digits' in pre and post); "
        "no image may be in two phases")]
    manifest = forward()
    del manifest["trials"][3]
    assert check_manifest(manifest) == [
        "manifest.json: a forward_simulation bundle needs post trials and has none"]
