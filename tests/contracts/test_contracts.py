"""The shared contracts: the key rule, question-type parsing, blinding words, task phrase, atomic writes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from contracts.blinding import METHOD_WORDS, revealing_fragment
from contracts.columns import ANSWER_COLUMNS, EXPECTED_CHOICE, REQUIRED_ANSWER_COLUMNS
from contracts.files import atomic_binary, atomic_directory, atomic_path
from contracts.task import task_phrase
from contracts.bundle import check_manifest
from contracts.vocabulary import (
    METHOD_KEYS, PAPER_COMPARISONS, QUESTION_TYPES, is_method_key, is_random_control, method_name,
    paper_question_types, parse_question_type, question_sides, question_type, random_control,
    random_control_label, validate_method_key,
)
from tests.synthetic_bundle import write_synthetic_bundle


@pytest.mark.parametrize("key, ok", [("bla_t", True), ("l2x_f", True), ("cam", True), ("Cam", False),
                                     ("2cam", False), ("a_vs_b", False), ("", False), ("grad-cam", False)])
def test_method_key_rule(key: str, ok: bool) -> None:
    assert is_method_key(key) is ok


def test_every_known_key_follows_the_rule() -> None:
    assert all(is_method_key(key) for key in METHOD_KEYS)


def test_question_types_parse_into_their_two_methods() -> None:
    assert parse_question_type("bla_t_vs_l2x_f") == ("bla_t", "l2x_f")
    assert parse_question_type("cam_vs_random") == ("cam", "random")
    assert {parse_question_type(q)[0] for q in QUESTION_TYPES} == {"bla_t"}
    for bad in ("bla_t", "a_vs_b_vs_c", "bla_t_vs_", "A_vs_b"):
        with pytest.raises(ValueError, match="is not of the form"):
            parse_question_type(bad)


@pytest.mark.parametrize("key, message", [
    ("Cam", "is not a lowercase identifier"), ("grad-cam", "is not a lowercase identifier"),
    ("", "is not a lowercase identifier"), (3, "is not a lowercase identifier"),
    ("mine_vs_yours", "contains '_vs_', which separates"),
])
def test_validate_method_key_names_the_problem_in_one_sentence(key: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_method_key(key)


def test_any_method_key_makes_a_question_type_and_parses_back() -> None:
    assert validate_method_key("my_method2") == "my_method2"
    assert question_type("grad_cam_pp", "integrated_gradients") == "grad_cam_pp_vs_integrated_gradients"
    assert parse_question_type("grad_cam_pp_vs_integrated_gradients") == ("grad_cam_pp", "integrated_gradients")
    assert random_control("score_cam") == "score_cam_vs_random"
    assert is_random_control("score_cam_vs_random") and not is_random_control("score_cam_vs_cam")
    assert random_control_label("cam") == "random(cam)"
    for a, b, message in (("cam", "cam", "two different methods"), ("random", "cam", "only be the second side"),
                          ("a_vs_b", "c", "contains '_vs_'")):
        with pytest.raises(ValueError, match=message):
            question_type(a, b)
    with pytest.raises(ValueError, match="two different methods"):
        parse_question_type("cam_vs_cam")


def test_the_papers_design_is_one_constant_and_keeps_its_cam_alias() -> None:
    assert paper_question_types() == tuple(QUESTION_TYPES) == ("bla_t_vs_cam", "bla_t_vs_l2x_f", "bla_t_vs_random")
    assert PAPER_COMPARISONS[2] == ("bla_t", "random")
    assert question_sides("bla_t_vs_cam") == (("bla_t",), ("cam", "grad_cam"))
    assert question_sides("cam_vs_grad_cam") == (("cam",), ("grad_cam",))  # the alias is the paper's only
    assert method_name("grad_cam") == "Grad-CAM" and method_name("my_method") == "my_method"


def _relabel(manifest: dict, mapping: dict[str, tuple[str, str]]) -> None:
    """Turn the synthetic bundle's paper question types into other comparisons (same sides order)."""
    for pair in manifest["pairs"]:
        a, b = mapping[pair["question_type"]]
        pair["question_type"] = question_type(a, b)
        for stimulus in pair["stimuli"]:
            stimulus["method"] = a if stimulus["method"] == "bla_t" else b


def test_a_bundle_of_any_comparisons_passes_the_manifest_check(tmp_path: Path) -> None:

    manifest = json.loads((write_synthetic_bundle(tmp_path, pairs_per_cell=2) / "manifest.json").read_text())
    assert check_manifest(manifest) == []  # schema-1 bundles of the paper's design stay valid
    _relabel(manifest, {"bla_t_vs_cam": ("mine", "grad_cam_pp"), "bla_t_vs_l2x_f": ("mine", "score_cam"),
                        "bla_t_vs_random": ("grad_cam_pp", "random")})
    assert check_manifest(manifest) == []
    manifest["pairs"][0]["stimuli"][0]["method"] = "cam"
    manifest["pairs"][1]["question_type"] = "mine_vs_mine"
    problems = check_manifest(manifest)
    assert len(problems) == 2
    assert "a mine_vs_grad_cam_pp pair must show mine and grad_cam_pp, got" in problems[0]
    assert "question_type 'mine_vs_mine' is not of the form <method>_vs_<method>" in problems[1]


def test_a_random_control_of_any_method_needs_its_source_image(tmp_path: Path) -> None:

    manifest = json.loads((write_synthetic_bundle(tmp_path, pairs_per_cell=1) / "manifest.json").read_text())
    _relabel(manifest, {"bla_t_vs_cam": ("cam", "grad_cam"), "bla_t_vs_l2x_f": ("cam", "l2x_f"),
                        "bla_t_vs_random": ("l2x_f", "random")})
    control = next(p for p in manifest["pairs"] if p["question_type"] == "l2x_f_vs_random")
    control["random_source_image_id"] = control["image_id"]
    assert check_manifest(manifest) == [f"manifest.json: pair {control['pair_id']!r}: random_source_image_id is "
                                        "the pair's own image"]


def test_expected_choice_then_the_comparison_model_are_the_last_answer_columns() -> None:
    # Issue 26 appends the comparison model's columns after expected_choice; issue 28 the design weight.
    assert ANSWER_COLUMNS == (*REQUIRED_ANSWER_COLUMNS, EXPECTED_CHOICE, "method_1", "method_2", "result",
                              "design_weight")
    assert len(ANSWER_COLUMNS) == 18


def test_method_words_cover_keys_names_and_spellings() -> None:
    assert {"bla_t", "bla-t", "grad-cam", "gradcam", "l2x", "bounded logit", "learning to explain"} <= set(METHOD_WORDS)
    assert revealing_fragment("images/bla_t_0.png") == "bla"
    assert revealing_fragment("GradCam overlay") == "cam"
    assert revealing_fragment("images/0123abcd.png") is None
    assert revealing_fragment("swapped") == "swap"


@pytest.mark.parametrize("task, phrase", [("to tell 3s from 8s.", "tell 3s from 8s"), ("  To sort birds ", "sort birds"),
                                          ("to to be", "to be"), ("tell cats from dogs", "tell cats from dogs"),
                                          ("tomatoes from apples", "tomatoes from apples")])
def test_task_phrase_drops_one_leading_to_and_the_full_stop(task: str, phrase: str) -> None:
    assert task_phrase(task) == phrase


def test_atomic_path_replaces_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]
    with atomic_binary(target) as handle:
        handle.write(b"new")
    assert target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o644


def test_atomic_directory_swaps_whole_folders(tmp_path: Path) -> None:
    target = tmp_path / "bundle"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_directory(target) as folder:
        (folder / "new.txt").write_text("new")
        raise RuntimeError("crash")
    assert [p.name for p in target.iterdir()] == ["old.txt"]
    with atomic_directory(target) as folder:
        (folder / "new.txt").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]
