"""The shared contracts: the key rule, question-type parsing, blinding words, task phrase, atomic writes."""
from __future__ import annotations

from pathlib import Path

import pytest

from contracts.blinding import METHOD_WORDS, revealing_fragment
from contracts.columns import ANSWER_COLUMNS, EXPECTED_CHOICE, REQUIRED_ANSWER_COLUMNS
from contracts.files import atomic_binary, atomic_directory, atomic_path
from contracts.task import task_phrase
from contracts.vocabulary import METHOD_KEYS, QUESTION_TYPES, is_method_key, parse_question_type


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


def test_expected_choice_is_the_last_answer_column() -> None:
    assert ANSWER_COLUMNS == (*REQUIRED_ANSWER_COLUMNS, EXPECTED_CHOICE)
    assert len(ANSWER_COLUMNS) == 14


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
