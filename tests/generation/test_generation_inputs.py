"""Loading explanation files and choosing pairs (selection, spreading, random swap)."""

from pathlib import Path

import numpy as np
import pytest

from generation.design import Design
from generation.errors import GenerationError
from generation.explanations import load_explanations
from generation.selection import (
    QUESTION_TYPES,
    eligible_rows,
    group_by_dataset,
    random_source_row,
    resolve_comparisons,
    select_pairs,
    spread,
)


def _datasets(fixture):
    return group_by_dataset([load_explanations(p) for p in fixture.files.values()])


def test_load_reads_fields_resolves_paths_and_infers_map_kind(fixture_files) -> None:
    bla = load_explanations(fixture_files.files["bla_t"])
    cam = load_explanations(fixture_files.files["cam"])
    assert bla.dataset == "mnist38" and bla.method == "bla_t" and bla.class_names == ("3", "8")
    assert bla.image_paths[0] == fixture_files.folder / "images/mnist38/mnist38-00000.png"
    assert bla.image_paths[0].is_file()
    assert bla.is_hard and not cam.is_hard
    assert bla.title == "Handwritten digits 3 and 8" and bla.provenance == {"seed": 0, "method": "bla_t"}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"maps": np.zeros((12, 7), np.float32)}, "field 'maps' must be numbers of shape \\(12, h, w\\)"),
        ({"labels": np.arange(12)}, "field 'labels' holds class index 2, outside 0..1"),
        ({"preds": np.zeros(5, np.int64)}, "field 'preds' must be 12 integers"),
        ({"method": np.array(["bla_t", "x"])}, "field 'method' must be a string scalar"),
        ({"map_kind": np.array("hard"), "maps": np.full((12, 7, 7), 0.5, np.float32)}, "says 'hard'"),
        ({"maps": np.full((12, 7, 7), np.nan, np.float32)}, "NaN"),
        ({"image_ids": np.array(["a"] * 12)}, "repeats 'a'"),
    ],
)
def test_bad_fields_raise_one_sentence_naming_file_and_field(fixture_factory, override, message) -> None:
    fixture = fixture_factory(extra={"bla_t": override})
    with pytest.raises(GenerationError, match=message) as caught:
        load_explanations(fixture.files["bla_t"])
    assert str(fixture.files["bla_t"]) in str(caught.value)


def test_missing_field_and_unreadable_file(fixture_files, tmp_path: Path) -> None:
    data = dict(np.load(fixture_files.files["cam"]))
    del data["preds"], data["dataset"]
    np.savez(tmp_path / "partial.npz", **data)
    with pytest.raises(GenerationError, match="missing field\\(s\\) preds, dataset"):
        load_explanations(tmp_path / "partial.npz")
    (tmp_path / "junk.npz").write_text("not numpy")
    with pytest.raises(GenerationError, match="junk.npz: not a readable .npz"):
        load_explanations(tmp_path / "junk.npz")
    with pytest.raises(GenerationError, match="does not exist"):
        load_explanations(tmp_path / "absent.npz")


def test_spread_is_even_and_respects_capacity() -> None:
    assert spread(7, [10, 10, 10]) == [3, 2, 2]
    assert spread(10, [1, 10, 3]) == [1, 6, 3]
    assert spread(20, [2, 3]) == [2, 3]
    assert spread(0, [4]) == [0]


def test_eligible_rows_need_agreement_and_correctness(fixture_files) -> None:
    datasets = _datasets(fixture_files)["mnist38"]
    bla, cam, l2x = datasets.by_method["bla_t"], datasets.by_method["cam"], datasets.by_method["l2x_f"]
    assert list(eligible_rows(bla, cam, False)) == [0, *range(2, 11)]  # 1: CAM disagrees, 11: wrong
    assert list(eligible_rows(bla, l2x, False)) == list(range(1, 11))  # 0: L2X-F disagrees
    assert list(eligible_rows(bla, cam, True)) == [0, *range(2, 12)]  # 11: both wrong but agree
    assert list(eligible_rows(bla, None, False)) == list(range(0, 11))


def test_pairs_spread_over_classes_without_reuse(fixture_files) -> None:
    datasets = _datasets(fixture_files)
    questions = [QUESTION_TYPES["bla_t_vs_cam"]]
    plans, notes = select_pairs(datasets, questions, 6, seed=3, include_misclassified=False)
    rows = [p.row for p in plans]
    assert len(rows) == 6 and len(set(rows)) == 6 and notes == []
    assert sorted(fixture_files.labels[rows]) == [0, 0, 0, 1, 1, 1]
    assert all(p.sides[0].method == "bla_t" and p.sides[1].method == "cam" for p in plans)


def test_shortfall_is_reported_with_the_possible_count(fixture_files) -> None:
    plans, notes = select_pairs(_datasets(fixture_files), [QUESTION_TYPES["bla_t_vs_l2x_f"]], 50, 0, False)
    assert len(plans) == 10 and len({p.row for p in plans}) == 10
    assert notes == ["bla_t_vs_l2x_f, dataset 'mnist38': only 10 of 50 pairs possible (each eligible image is used "
                     "once; both systems must agree on the correct class)"]


def test_random_side_never_uses_the_same_image_or_an_identical_mask(fixture_factory) -> None:
    maps = np.zeros((12, 7, 7), np.float32)
    maps[:, 0, 0] = 1
    maps[6:, 3, 3] = 1  # images 0-5 share one mask and 6-11 another
    fixture = fixture_factory(extra={"bla_t": {"maps": maps}})
    anchor = _datasets(fixture)["mnist38"].by_method["bla_t"]
    for row in range(12):
        for seed in range(20):
            source = random_source_row(anchor, row, np.random.default_rng(seed))
            assert source != row and not np.array_equal(anchor.maps[source], anchor.maps[row])
            assert (source < 6) != (row < 6)


def test_random_swap_impossible_when_every_mask_is_identical(fixture_factory) -> None:
    fixture = fixture_factory(extra={"bla_t": {"maps": np.ones((12, 7, 7), np.float32)}})
    with pytest.raises(GenerationError, match="random-swap control is impossible"):
        select_pairs(_datasets(fixture), [QUESTION_TYPES["bla_t_vs_random"]], 4, 0, False)


def test_files_covering_different_images_are_refused(fixture_factory) -> None:
    first, second = fixture_factory("a"), fixture_factory("b", count=10)
    files = [load_explanations(first.files["bla_t"]), load_explanations(second.files["cam"])]
    with pytest.raises(GenerationError, match="cover different images of dataset 'mnist38'") as caught:
        group_by_dataset(files)
    assert str(first.files["bla_t"]) in str(caught.value) and str(second.files["cam"]) in str(caught.value)


def test_rows_are_aligned_by_image_id_when_files_order_differ(fixture_factory) -> None:
    fixture = fixture_factory()
    order = np.arange(12)[::-1]
    cam = dict(np.load(fixture.files["cam"]))
    np.savez(fixture.files["cam"], **{k: (v[order] if v.ndim and len(v) == 12 else v) for k, v in cam.items()})
    datasets = _datasets(fixture)["mnist38"]
    assert datasets.by_method["cam"].image_ids == datasets.reference.image_ids
    assert np.array_equal(datasets.by_method["cam"].maps, fixture.maps["cam"])


def test_missing_method_for_requested_type_and_default_skip(fixture_files) -> None:
    files = [load_explanations(fixture_files.files[m]) for m in ("bla_t", "l2x_f")]
    datasets = group_by_dataset(files)
    for design in (Design(question_types=("bla_t_vs_cam",)), Design(compare=("bla_t:cam",))):
        with pytest.raises(GenerationError, match="the design compares bla_t_vs_cam, but no explanations file has "
                                                  "method cam or grad_cam \\(the files give bla_t, l2x_f\\)"):
            resolve_comparisons(datasets, design)
    chosen, notes = resolve_comparisons(datasets, Design())
    assert [q.key for q in chosen] == ["bla_t_vs_l2x_f", "bla_t_vs_random"]
    assert notes == ["skipping bla_t_vs_cam: no cam or grad_cam file for dataset 'mnist38'"]


def test_a_named_comparison_needs_its_files_in_every_dataset(fixture_factory) -> None:
    digits = fixture_factory("digits")
    other = fixture_factory("other", extra={m: {"dataset": np.array("other")} for m in ("bla_t", "l2x_f", "cam")})
    files = [*(load_explanations(p) for p in digits.files.values()),
             load_explanations(other.files["bla_t"]), load_explanations(other.files["l2x_f"])]
    datasets = group_by_dataset(files)
    with pytest.raises(GenerationError, match="question type bla_t_vs_cam needs a cam or grad_cam explanations file "
                                              "for dataset 'other', but none of the given files has one"):
        resolve_comparisons(datasets, Design(compare=("bla_t:cam",)))
    chosen, notes = resolve_comparisons(datasets, Design(design="all-pairs"))
    assert [c.key for c in chosen] == ["bla_t_vs_l2x_f", "bla_t_vs_cam", "l2x_f_vs_cam"]
    assert notes == ["building bla_t_vs_cam without dataset 'other': it has no cam or grad_cam file",
                     "building l2x_f_vs_cam without dataset 'other': it has no cam file"]
    plans, _ = select_pairs(datasets, chosen, 2, 0, False)
    assert {(p.question_type, p.dataset.key) for p in plans} == {
        ("bla_t_vs_l2x_f", "mnist38"), ("bla_t_vs_l2x_f", "other"), ("bla_t_vs_cam", "mnist38"),
        ("l2x_f_vs_cam", "mnist38")}


def test_per_type_applies_to_every_dataset(fixture_factory) -> None:
    digits = fixture_factory("digits")
    other = fixture_factory("other", extra={m: {"dataset": np.array("other")} for m in ("bla_t", "l2x_f", "cam")})
    datasets = group_by_dataset([load_explanations(p) for f in (digits, other) for p in f.files.values()])
    plans, _ = select_pairs(datasets, [QUESTION_TYPES["bla_t_vs_random"]], 3, seed=1, include_misclassified=False)
    assert sorted(p.dataset.key for p in plans) == ["mnist38"] * 3 + ["other"] * 3  # --per-type per dataset
    for plan in plans:  # the random map always comes from the pair's own dataset
        assert plan.sides[1].source is plan.dataset.by_method["bla_t"]
