"""Real trainings on mnist38 through the command line, their files and their errors."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from bla_core.attention import BoundedLogitAttention
from bla_core.cli import main
from bla_core.datasets import load_dataset

# The defaults are the paper's §4.1 settings (θ = 0.1, γ = 0.98/49, Adam 1e-3, batch 32, its
# 1,125 optimisation steps), trained end to end from scratch.
PAPER_DEFAULTS = ["--dataset", "mnist38", "--seed", "0"]


@pytest.fixture(scope="module")
def bla_t_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "bla_t"
    assert main(["train", "--method", "bla_t", *PAPER_DEFAULTS, "--out", str(out)]) == 0
    return out


def test_mnist38_is_a_stratified_seeded_split_of_500_threes_and_500_eights():
    splits = load_dataset("mnist38", seed=3)
    assert (len(splits.train), len(splits.val)) == (800, 200)
    assert splits.class_names == ["3", "8"]
    assert torch.bincount(splits.val.labels).tolist() == [100, 100]
    assert 0.0 <= splits.train.images.min() and splits.train.images.max() <= 1.0
    assert not set(splits.train.image_ids) & set(splits.val.image_ids)
    assert load_dataset("mnist38", seed=3).val.image_ids == splits.val.image_ids
    assert load_dataset("mnist38", seed=4).val.image_ids != splits.val.image_ids


def test_paper_defaults_train_cnn_and_bla_t_end_to_end_to_the_baselines_accuracy(bla_t_run):
    baseline = json.loads((bla_t_run / "baseline" / "metrics.json").read_text())
    bla_t = json.loads((bla_t_run / "metrics.json").read_text())
    assert baseline["accuracy"] >= 0.95
    assert bla_t["accuracy"] >= 0.95 and abs(bla_t["soft_accuracy"] - bla_t["accuracy"]) <= 0.02  # hard ≈ soft
    assert not bla_t["dead_explainer"] and bla_t["module_gradient"] > 0
    assert 1 <= bla_t["min_explanation_size"] <= bla_t["mean_explanation_size"] <= bla_t["max_explanation_size"] <= 49
    assert bla_t["mean_explanation_size"] < 49
    checkpoint = torch.load(bla_t_run / "checkpoint.pt", weights_only=False)
    config = checkpoint["config"]
    assert config["method"] == "bla_t" and checkpoint["class_names"] == ["3", "8"]
    assert (config["theta"], config["epochs"], config["batch_size"], config["lr"]) == (0.1, 45, 32, 1e-3)  # 45 × 25 steps
    assert checkpoint["versions"]["torch"] == torch.__version__
    # End to end: the BLA-T model's CNN was trained with its module, not copied from the baseline.
    baseline_state = torch.load(bla_t_run / "baseline" / "checkpoint.pt", weights_only=False)["state_dict"]
    weight = "backbone.layers.0.weight"
    assert not torch.equal(checkpoint["state_dict"][weight], baseline_state[weight])


def plant_dead_module(pooling, features):
    """Instead of centring, lift every BLA logit far above the bound: β then passes no gradient."""
    if isinstance(pooling, BoundedLogitAttention):
        with torch.no_grad():
            pooling.score.bias.fill_(1e6)


def test_a_dead_explanation_module_is_flagged_at_the_end_of_train(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("bla_core.liveness.centre_bounded_logits", plant_dead_module)
    out = tmp_path / "dead"
    assert main(["train", "--method", "bla_t", "--epochs", "2", "--out", str(out)]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and warnings[0].startswith("warning: the bla_t explanation of seed 0")
    assert "its explanation module is dead" in warnings[0]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dead_explainer"] and metrics["module_gradient"] == 0.0
    assert metrics["min_explanation_size"] == metrics["max_explanation_size"] == 49
    assert not json.loads((out / "baseline" / "metrics.json").read_text())["dead_explainer"]


def test_same_seed_gives_the_same_numbers(tmp_path):
    args = ["train", "--method", "l2x_f", "--epochs", "1", "--seed", "5"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    a = json.loads((tmp_path / "a" / "metrics.json").read_text())
    b = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert a == b
    state_a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)["state_dict"]
    state_b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)["state_dict"]
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)


def test_explain_writes_the_design_explanations_file(bla_t_run, tmp_path):
    out = tmp_path / "expl" / "mnist38_bla_t.npz"
    assert main(["explain", "--run", str(bla_t_run), "--split", "val", "--out", str(out)]) == 0
    data = np.load(out)
    n = len(data["image_ids"])
    assert n == 200 and data["maps"].shape == (n, 7, 7) and data["maps"].dtype == np.float32
    assert str(data["method"]) == "bla_t" and str(data["dataset"]) == "mnist38"
    assert set(np.unique(data["maps"])) <= {0.0, 1.0} and data["maps"].reshape(n, -1).sum(1).min() >= 1
    assert data["class_names"].tolist() == ["3", "8"]
    assert (data["preds"] == data["labels"]).mean() >= 0.95
    provenance = json.loads(str(data["provenance"]))
    assert len(provenance["checkpoint_sha256"]) == 64 and provenance["config"]["method"] == "bla_t"
    image = Image.open(out.parent / str(data["image_paths"][0]))
    assert image.size == (28, 28)
    assert "soft_maps" not in data.files  # the soft weights q are read by no stage (faithfulness computes them)


def test_explain_cam_from_the_baseline_run(bla_t_run, tmp_path):
    out = tmp_path / "cam.npz"
    assert main(["explain", "--run", str(bla_t_run / "baseline"), "--out", str(out)]) == 0
    data = np.load(out)
    assert str(data["method"]) == "cam" and str(data["map_kind"]) == "continuous"
    assert len(np.unique(data["maps"])) > 2
    assert main(["explain", "--run", str(bla_t_run), "--method", "cam", "--out", str(tmp_path / "x.npz")]) == 2
    assert not (tmp_path / "x.npz").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--method", "blah"], "unknown method 'blah'"),
        (["train", "--method", "bla_t", "--dataset", "mnist99"], "unknown dataset 'mnist99'"),
        (["train", "--method", "l2x_f", "--k", "50"], "k=50 is larger than the 49 positions"),
        (["experiment", "--methods", "baseline,nope"], "unknown method 'nope'"),
    ],
)
def test_bad_input_gives_one_clear_error_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    assert main([*args, "--epochs", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_unwritable_output_folder_gives_one_clear_error(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(["train", "--method", "baseline", "--epochs", "1", "--out", str(blocker / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot create output folder") and len(err.splitlines()) == 1
    assert blocker.read_text() == "not a folder"
