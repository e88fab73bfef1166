"""Library-backed post-hoc methods (pytorch-grad-cam, captum) against known answers and on a trained run."""
import json
from importlib.metadata import version

import numpy as np
import pytest
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from bla_core import cam, grad_cam
from bla_core.cli import main
from bla_core.errors import BLAError
from bla_core.explain import explanation_method
from bla_core.library_methods import LIBRARY_METHODS, LogitNetwork, library_maps, lime_segments
from generation.explanations import load_explanations

KEYS = ("grad_cam_pp", "score_cam", "xgrad_cam", "eigen_cam", "layer_cam", "hires_cam",
        "integrated_gradients", "saliency", "occlusion", "lime")


def min_max(maps: torch.Tensor) -> torch.Tensor:
    """pytorch-grad-cam's per-image scaling."""
    shifted = maps - maps.amin(dim=(1, 2), keepdim=True)
    return shifted / (1e-7 + shifted.amax(dim=(1, 2), keepdim=True))


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def linear_net():
    """A linear model on (3, 4, 4) images: logits = W·vec(x) + b."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 2)).eval()


def test_the_registry_holds_the_issue_methods_with_their_libraries():
    assert tuple(LIBRARY_METHODS) == KEYS
    assert {m.library for m in LIBRARY_METHODS.values()} == {"grad-cam", "captum"}


def test_integrated_gradients_of_a_linear_model_is_input_minus_baseline_times_weight(linear_net):
    x = torch.rand(2, 3, 4, 4)
    targets = torch.tensor([0, 1])
    maps = LIBRARY_METHODS["integrated_gradients"].explain(linear_net, None, x, targets)
    weights = linear_net[1].weight[targets].detach().view(2, 3, 4, 4)
    expected = ((x - 0.0) * weights).sum(dim=1)  # baseline: black; channels summed
    assert maps.shape == (2, 4, 4)
    assert torch.allclose(maps, expected, atol=1e-5)


def test_saliency_of_a_linear_model_is_the_absolute_weight(linear_net):
    x = torch.rand(2, 3, 4, 4)
    targets = torch.tensor([1, 0])
    maps = LIBRARY_METHODS["saliency"].explain(linear_net, None, x, targets)
    weights = linear_net[1].weight[targets].detach().view(2, 3, 4, 4)
    assert torch.allclose(maps, weights.abs().amax(dim=1))


def test_pytorch_grad_cam_equals_our_grad_cam_and_relu_cam_on_an_average_pooled_model(linear_baseline):
    torch.manual_seed(1)
    x = torch.randn(3, 2, 5, 5) * 2
    targets = torch.tensor([0, 1, 1])
    net = LogitNetwork(linear_baseline)
    with GradCAM(model=net, target_layers=[net.tap]) as method:
        library = torch.from_numpy(method(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in targets]))
    ours = grad_cam(linear_baseline, x, targets)
    assert torch.allclose(library, min_max(ours), atol=1e-5)
    # for an average-pooled linear head Grad-CAM is ReLU(CAM)/n: the same map after scaling
    assert torch.allclose(library, min_max(torch.relu(cam(linear_baseline, x, targets))), atol=1e-5)
    # HiResCAM (element-wise gradient × activation) coincides with Grad-CAM for this head
    hires = LIBRARY_METHODS["hires_cam"].explain(net, net.tap, x, targets)
    assert torch.allclose(hires, library, atol=1e-5)


def test_library_maps_explain_the_predicted_class_and_keep_the_mode(linear_baseline):
    x = torch.randn(4, 2, 3, 3)
    preds, maps = library_maps(linear_baseline, x, "integrated_gradients")
    assert torch.equal(preds, linear_baseline(x).logits.argmax(1))
    # completeness: the map sums to logit(x) - logit(black) of the predicted class
    logits, black = linear_baseline(x).logits, linear_baseline(torch.zeros_like(x)).logits
    assert torch.allclose(maps.sum(dim=(1, 2)), (logits - black).gather(1, preds[:, None]).squeeze(1), atol=1e-4)
    assert not linear_baseline.training


def test_any_run_may_use_a_library_method_but_cam_needs_a_baseline():
    assert explanation_method("bla_t", "score_cam") == "score_cam"
    assert explanation_method("baseline", "integrated_gradients") == "integrated_gradients"
    with pytest.raises(BLAError, match="cam from a baseline run, or one of grad_cam, grad_cam_pp, score_cam"):
        explanation_method("l2x_f", "cam")


def test_lime_segments_tile_the_image_in_a_grid():
    segments = lime_segments(14, 21, torch.device("cpu"))
    assert segments.shape == (14, 21) and segments.unique().numel() == 49
    assert segments[0, 0] == 0 and segments[-1, -1] == 48 and segments[1, 2] == 0 and segments[2, 0] == 7


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A one-epoch BLA-T run (and its baseline) on mnist38 with 10 validation digits."""
    root = tmp_path_factory.mktemp("library_runs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BLA_CORE_CACHE", str(root / "cache"))
        patch.setenv("HF_HUB_OFFLINE", "1")
        assert main(["train", "--method", "bla_t", "--dataset", "mnist38", "--epochs", "1", "--val-fraction", "0.01",
                     "--seed", "0", "--out", str(root / "bla_t")]) == 0
        assert main(["explain", "--run", str(root / "bla_t" / "baseline"), "--out", str(root / "cam.npz")]) == 0
    return root / "bla_t"


@pytest.mark.slow
@pytest.mark.parametrize("key", KEYS)
def test_every_library_method_writes_an_explanations_file_generation_reads(tiny_run, tmp_path, key):
    out = tmp_path / f"{key}.npz"
    assert main(["explain", "--run", str(tiny_run / "baseline"), "--method", key, "--out", str(out)]) == 0
    loaded = load_explanations(out)
    assert loaded.method == key and loaded.dataset == "mnist38" and loaded.map_kind == "continuous"
    assert loaded.maps.shape == (10, 28, 28) and np.isfinite(loaded.maps).all()
    assert loaded.maps.reshape(10, -1).std(axis=1).max() > 0  # a map, not a constant
    explainer = loaded.provenance["explainer"]
    entry = LIBRARY_METHODS[key]
    assert explainer["key"] == key and explainer["class"] == entry.name
    assert explainer["library_version"] == version(entry.library)
    assert explainer["map_resolution"] == [28, 28]
    assert np.array_equal(load_explanations(tiny_run.parent / "cam.npz").preds, loaded.preds)  # same model


@pytest.mark.slow
def test_a_library_method_explains_a_bla_t_run_too(tiny_run, tmp_path):
    out = tmp_path / "saliency.npz"
    assert main(["explain", "--run", str(tiny_run), "--method", "saliency", "--out", str(out)]) == 0
    loaded = load_explanations(out)
    assert loaded.method == "saliency" and loaded.provenance["config"]["method"] == "bla_t"
    assert json.loads(np.load(out)["provenance"].item())["explainer"]["library"] == "captum"
