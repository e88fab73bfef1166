"""The maps of the model's top-k classes (``class_ids`` / ``class_maps`` of the explanations file):
class-specific methods explain each class with its own map, class-agnostic ones repeat theirs."""
import json

import numpy as np
import pytest
import torch

from bla_core.attention import BoundedLogitAttention
from bla_core.classifier import ExplainedClassifier
from bla_core.cli import main
from bla_core.errors import BLAError
from bla_core.explain import class_maps, top_classes, top_k_for
from bla_core.methods import lookup
from bla_core.pooling import AveragePooling
from conftest import IdentityBackbone

pytestmark = pytest.mark.usefixtures("one_thread")

# Three channels, each alive in its own cell: class c of a head with identity weights reads channel c,
# so its CAM is channel c. Mean pooling gives logits (3, 2, 1)/4: the top classes are 0, 1, 2.
FEATURES = torch.zeros(1, 3, 2, 2)
FEATURES[0, 0, 0, 0], FEATURES[0, 1, 0, 1], FEATURES[0, 2, 1, 0] = 3.0, 2.0, 1.0


def _model(pooling: torch.nn.Module) -> ExplainedClassifier:
    model = ExplainedClassifier(IdentityBackbone(3), pooling, num_classes=3).eval()
    with torch.no_grad():
        model.classifier.weight.copy_(torch.eye(3))
        model.classifier.bias.zero_()
    return model


def _class_maps(key: str, model: ExplainedClassifier, k: int = 3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    entry = lookup(key)
    preds, maps = entry.explain(model, FEATURES)
    with torch.no_grad():
        ids = top_classes(model(FEATURES, hard=True).logits, preds, k)
    return ids, class_maps(entry, model, FEATURES, maps, ids), maps


def test_cam_explains_each_top_class_with_the_cells_that_class_reads() -> None:
    ids, maps, predicted = _class_maps("cam", _model(AveragePooling()))
    assert ids.tolist() == [[0, 1, 2]]
    assert torch.equal(maps[0], FEATURES[0])  # class j's map is channel j
    assert torch.equal(maps[:, 0], predicted)
    grad_ids, grad_maps, _ = _class_maps("grad_cam", _model(AveragePooling()), k=2)
    assert grad_ids.tolist() == [[0, 1]] and torch.allclose(grad_maps[0], FEATURES[0, :2] / 4)


def test_a_library_method_explains_each_class_too() -> None:
    _, maps, _ = _class_maps("integrated_gradients", _model(AveragePooling()))
    # IG of a linear model from a black baseline: input × weight / n, summed over channels
    assert torch.allclose(maps[0], FEATURES[0] / 4, atol=1e-6)


def test_bla_t_gives_one_map_for_every_class() -> None:
    pooling = BoundedLogitAttention(3, gamma=0.98 / 4)
    with torch.no_grad():  # every logit at the bound: all cells selected, the hard logits are the mean's
        pooling.score.weight.zero_()
        pooling.score.bias.zero_()
    ids, maps, predicted = _class_maps("bla_t", _model(pooling))
    assert ids.tolist() == [[0, 1, 2]]
    assert all(torch.equal(maps[:, j], predicted) for j in range(3))
    assert [lookup(k).explain_class is None for k in ("bla", "bla_t", "bla_ph", "l2x_f", "eigen_cam", "cam")] == [
        True, True, True, True, True, False]


def test_the_prediction_is_the_first_class_even_where_scores_tie() -> None:
    logits = torch.tensor([[1.0, 1.0, 0.0], [0.0, 2.0, 5.0]])
    assert top_classes(logits, torch.tensor([1, 2]), 2).tolist() == [[1, 0], [2, 1]]


def test_k_is_at_most_four_by_default_and_a_k_beyond_the_classes_is_refused() -> None:
    assert (top_k_for(None, 2), top_k_for(None, 10), top_k_for(0, 10), top_k_for(7, 10)) == (2, 4, 0, 7)
    for bad in (-1, 3):
        with pytest.raises(BLAError, match=rf"^--top-k {bad} must lie between 0 \(no class maps\) and the 2 "
                                           "classes of the run's dataset$"):
            top_k_for(bad, 2)


@pytest.mark.slow
def test_explain_writes_class_maps_a_run_and_its_baseline(tmp_path) -> None:
    run = tmp_path / "bla_t"
    assert main(["train", "--method", "bla_t", "--dataset", "mnist38", "--epochs", "1", "--val-fraction", "0.01",
                 "--seed", "0", "--out", str(run)]) == 0
    written = {}
    for key, folder, extra in (("bla_t", run, []), ("cam", run / "baseline", []), ("none", run, ["--top-k", "0"])):
        out = tmp_path / f"{key}.npz"
        assert main(["explain", "--run", str(folder), "--out", str(out), *extra]) == 0
        with np.load(out) as data:
            written[key] = {name: data[name] for name in data.files}
    for key, agnostic in (("bla_t", True), ("cam", False)):
        data = written[key]
        assert data["class_ids"].shape == (10, 2) and data["class_maps"].shape == (10, 2, 7, 7)
        assert data["class_maps"].dtype == np.float32 and data["class_ids"].dtype == np.int64
        assert np.array_equal(data["class_ids"][:, 0], data["preds"])
        assert np.array_equal(data["class_ids"][:, 1], 1 - data["preds"])  # the other digit
        assert np.array_equal(data["class_maps"][:, 0], data["maps"])
        assert np.array_equal(data["class_maps"][:, 1], data["maps"]) == agnostic
        assert json.loads(data["provenance"].item())["class_agnostic"] is agnostic
    assert "class_ids" not in written["none"] and "class_maps" not in written["none"]
    assert "class_agnostic" not in json.loads(written["none"]["provenance"].item())
