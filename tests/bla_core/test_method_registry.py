"""The method registry (bla_core/methods.py): every entry trains and explains through the command
line as it declares, a method added in a test needs no other module, and unknown keys get one clear
error."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from bla_core.checkpoints import load_run
from bla_core.classifier import PoolingConfig
from bla_core.cli import main
from bla_core.errors import BLAError
from bla_core.explain import explanation_method
from bla_core.methods import (
    BASELINE,
    CONTROL,
    END_TO_END,
    METHODS,
    POSTHOC,
    TRAINED,
    Method,
    check_method,
    display_name,
    explanation_keys,
    lookup,
    module_masks,
    register,
    trained_keys,
)
from bla_core.pooling import PoolingOutput, check_feature_map, weighted_sum
from contracts.vocabulary import METHOD_NAMES, is_method_key
from generation.explanations import load_explanations

TINY = ["--dataset", "mnist38", "--epochs", "1", "--val-fraction", "0.01", "--seed", "0"]
VAL_IMAGES = 10  # 1 % of mnist38's 1,000 digits


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def runs(module_root):
    """One-epoch mnist38 runs: a baseline, and every trained explainer started from it."""
    baseline = str(module_root / BASELINE)
    assert main(["train", "--method", BASELINE, *TINY, "--out", baseline]) == 0
    for key in trained_keys()[1:]:
        out = str(module_root / key)
        assert main(["train", "--method", key, *TINY, "--baseline", baseline, "--out", out]) == 0
    return module_root


def run_for(runs, key: str):
    """The run folder a method explains: its own run, or the baseline for a post-hoc method."""
    return runs / (key if lookup(key).kind == TRAINED else BASELINE)


def test_the_registry_holds_the_papers_methods_the_controls_and_the_library_methods():
    assert trained_keys() == ["baseline", "l2x_f", "bla", "bla_t", "bla_ph"]
    assert {m.kind for m in METHODS.values()} == {"classifier", TRAINED, POSTHOC, CONTROL}
    assert lookup("random").kind == CONTROL and lookup("random").explain is None
    assert all(is_method_key(key) for key in METHODS)
    assert [key for key in METHODS if METHODS[key].library] == [
        "grad_cam_pp",
        "score_cam",
        "xgrad_cam",
        "eigen_cam",
        "layer_cam",
        "hires_cam",
        "integrated_gradients",
        "saliency",
        "occlusion",
        "lime",
    ]
    assert [key for key, m in METHODS.items() if m.trains_head] == ["bla_ph"]
    assert [key for key, m in METHODS.items() if m.frozen_head] == ["bla_ph"]
    assert [key for key, m in METHODS.items() if m.variable_size] == ["bla", "bla_t", "bla_ph"]


def test_display_names_are_the_papers_column_titles():
    assert [display_name(key) for key in trained_keys()] == [
        "BL",
        "L2X-F",
        "BLA",
        "BLA-T",
        "BLA-PH",
    ]
    assert all(display_name(key) == METHOD_NAMES[key] for key in METHODS if key != BASELINE)
    assert display_name("not_registered") == "not_registered"


@pytest.mark.slow
@pytest.mark.parametrize("key", trained_keys())
def test_every_trained_method_trains_its_declared_module_and_head(runs, key):
    entry = lookup(key)
    run = load_run(runs / key, torch.device("cpu"))
    metrics = json.loads((runs / key / "metrics.json").read_text())
    assert run.config.method == key and metrics["method"] == key and metrics["n_val"] == VAL_IMAGES
    built = entry.pooling(PoolingConfig(key, gamma=0.98 / 49), run.model.backbone.out_channels, 49)
    assert type(run.model.pooling) is type(built)
    baseline = load_run(runs / BASELINE, torch.device("cpu")).model
    same_head = torch.equal(run.model.classifier.weight, baseline.classifier.weight)
    assert same_head == (entry.frozen_head or key == BASELINE)
    # mnist_cnn has no pretrained weights: end-to-end methods train F too, a head-trained one not
    conv = next(p for name, p in run.model.backbone.named_parameters() if name.endswith("weight"))
    baseline_conv = next(
        p for name, p in baseline.backbone.named_parameters() if name.endswith("weight")
    )
    assert torch.equal(conv, baseline_conv) == (entry.trains_head or key == BASELINE)


@pytest.mark.slow
@pytest.mark.parametrize("key", explanation_keys())
def test_every_explaining_method_writes_its_explanations_file(runs, tmp_path, key):
    entry = lookup(key)
    out = tmp_path / f"{key}.npz"
    assert (
        main(["explain", "--run", str(run_for(runs, key)), "--method", key, "--out", str(out)]) == 0
    )
    loaded = load_explanations(out)
    assert loaded.method == key and loaded.maps.shape == (VAL_IMAGES, *loaded.maps.shape[1:])
    assert np.isfinite(loaded.maps).all()
    assert loaded.map_kind == ("hard" if entry.hard_masks else "continuous")
    assert ("selectivity" in np.load(out)) == entry.hard_masks
    assert ("explainer" in loaded.provenance) == (entry.library is not None)
    if entry.hard_masks:
        assert set(np.unique(loaded.maps)) <= {0.0, 1.0}


@pytest.mark.slow
def test_a_run_explains_with_its_declared_default(runs, tmp_path):
    for key in trained_keys():
        out = tmp_path / f"{key}.npz"
        assert main(["explain", "--run", str(runs / key), "--out", str(out)]) == 0
        assert load_explanations(out).method == (lookup(key).default_explanation or key)
    assert load_explanations(tmp_path / "baseline.npz").method == "cam"


class TopCellPooling(nn.Module):
    """A toy explanation module: a 1×1 convolution scores the cells; the hard explanation is the
    best cell alone, the soft one the softmax of the scores."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.score = nn.Conv2d(channels, 1, kernel_size=1)

    def forward(self, features: torch.Tensor, hard: bool | None = None) -> PoolingOutput:
        check_feature_map(features)
        hard = not self.training if hard is None else hard
        logits = self.score(features)[:, 0]
        soft = logits.flatten(1).softmax(1).view_as(logits)
        mask = (logits.flatten(1) == logits.flatten(1).amax(1, keepdim=True)).view_as(logits)
        weights = mask.to(features.dtype) / mask.flatten(1).sum(1).view(-1, 1, 1) if hard else soft
        return PoolingOutput(
            pooled=weighted_sum(features, weights), weights=weights, logits=logits, mask=mask
        )


@pytest.fixture
def top_cell():
    """The toy method registered for one test, and removed again."""
    entry = register(
        Method(
            "top_cell",
            TRAINED,
            name="Top cell",
            trains=END_TO_END,
            explain=module_masks,
            hard_masks=True,
            pooling=lambda config, channels, positions: TopCellPooling(channels),
        )
    )
    yield entry
    METHODS.pop(entry.key)


@pytest.mark.slow
def test_a_method_added_to_the_registry_trains_and_explains_without_other_changes(
    runs, top_cell, tmp_path
):
    out = tmp_path / "top_cell"
    baseline = str(runs / BASELINE)
    args = ["--method", "top_cell", *TINY, "--baseline", baseline, "--out", str(out)]
    assert main(["train", *args]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["method"] == "top_cell" and metrics["mean_explanation_size"] == 1.0
    assert main(["explain", "--run", str(out), "--out", str(tmp_path / "top_cell.npz")]) == 0
    loaded = load_explanations(tmp_path / "top_cell.npz")
    assert loaded.method == "top_cell" and loaded.map_kind == "hard"
    cells = loaded.maps.reshape(VAL_IMAGES, -1).sum(1)
    assert cells.tolist() == [1.0] * VAL_IMAGES  # one cell per image
    assert display_name("top_cell") == "Top cell" and "top_cell" in trained_keys()


def test_unknown_keys_give_one_error_naming_the_key_and_the_known_ones():
    with pytest.raises(
        BLAError, match=r"unknown method 'nope'; choose one of baseline, l2x_f, .*, lime$"
    ):
        lookup("nope")
    with pytest.raises(BLAError, match=r"unknown method 'nope'"):
        explanation_method("bla_t", "nope")
    with pytest.raises(
        BLAError,
        match=r"method 'cam' \(post-hoc\) is not trained; choose one of baseline, l2x_f, "
        r"bla, bla_t, bla_ph",
    ):
        check_method("cam")
    with pytest.raises(BLAError, match="'bla_t' run cannot give 'random' explanations"):
        explanation_method("bla_t", "random")


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["train", "--method", "nope", "--epochs", "1"],
            "unknown method 'nope'; choose one of baseline",
        ),
        (
            ["train", "--method", "random", "--epochs", "1"],
            "method 'random' (control) is not trained",
        ),
        (
            ["experiment", "--methods", "baseline,cam", "--epochs", "1"],
            "method 'cam' (post-hoc) is not trained",
        ),
    ],
)
def test_the_command_line_refuses_keys_it_cannot_train(tmp_path, capsys, args, message):
    assert main([*args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "entry, message",
    [
        (lambda: Method("Top-Cell", TRAINED), "is not a lowercase identifier"),
        (lambda: Method("top_cell", "magic"), "has kind 'magic'"),
        (
            lambda: Method("top_cell", TRAINED, explain=module_masks),
            "needs a pooling module and a training",
        ),
        (lambda: Method("top_cell", POSTHOC), "needs an explain function"),
        (
            lambda: register(Method("cam", POSTHOC, explain=module_masks)),
            "'cam' is already registered",
        ),
    ],
)
def test_an_inconsistent_entry_is_refused_by_name(entry, message):
    with pytest.raises(BLAError, match=message):
        entry()
