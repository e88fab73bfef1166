"""Tiny hand-built models and photo folders for the bla_core tests."""
import pytest
from bla_photos import PHOTO_MODES, write_broken_files, write_photo
import torch
from torch import nn

from bla_core.classifier import ExplainedClassifier
from bla_core.pooling import AveragePooling


class IdentityBackbone(nn.Module):
    """A backbone whose 'images' already are feature maps, so tests control F(x) exactly."""

    trainable = False

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@pytest.fixture
def linear_baseline() -> ExplainedClassifier:
    """Average pooling and a hand-set linear head over 2 channels and 2 classes."""
    model = ExplainedClassifier(IdentityBackbone(2), AveragePooling(), num_classes=2).eval()
    with torch.no_grad():
        model.classifier.weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 3.0]]))
        model.classifier.bias.copy_(torch.tensor([0.25, -0.75]))
    return model


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run fastest on one thread (and on a shared machine, far faster); a test module
    asks for it with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def module_root(tmp_path_factory):
    """A folder for a test module's shared runs, with their own feature cache and an offline hub
    while the module's tests run."""
    root = tmp_path_factory.mktemp("module")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BLA_CORE_CACHE", str(root / "cache"))
        patch.setenv("HF_HUB_OFFLINE", "1")
        yield root


@pytest.fixture
def photo_folder(tmp_path):
    """imagefolder layout: cat/ and dog/ with 6 photos each in six modes, plus two broken files in cat/."""
    root = tmp_path / "photos"
    for label, colour in (("cat", (220, 30, 30)), ("dog", (30, 30, 220))):
        for i, mode in enumerate(PHOTO_MODES):
            write_photo(root / label / f"{label}{i}", mode, colour)
    broken = write_broken_files(root / "cat")
    return root, broken


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own feature cache and an offline model hub."""
    monkeypatch.setenv("BLA_CORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "cache"
