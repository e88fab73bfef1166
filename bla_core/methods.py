"""The method registry: one :class:`Method` entry per method bla_core knows, in :data:`METHODS`.

An entry says what a method is (classifier, trained explainer, post-hoc, control), which pooling
module it builds, how it trains (end to end, or only its module on a trained baseline) and how it
explains (a function of a model and images). Model building, training, ``explain``, the experiment
tables and the command line read these entries, so a new method is one :func:`register` call plus
its tests. Keys follow the method-key rule of :mod:`contracts.vocabulary`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from contracts.vocabulary import RANDOM_METHOD, method_name, validate_method_key

from .attention import BoundedLogitAttention
from .classifier import ExplainedClassifier, PoolingConfig
from .errors import BLAError
from .l2x import L2XSelector
from .library_methods import LIBRARY_METHODS, LibraryMethod, library_class_maps, library_maps
from .pooling import AveragePooling
from .posthoc import cam, grad_cam

CLASSIFIER = "classifier"  # the baseline h = F ∘ L with average pooling, explained post hoc
TRAINED = "trained explainer"  # a pooling module that explains by its hard mask δ
POSTHOC = "post-hoc"  # maps computed from a trained run's model
CONTROL = "control"  # drawn where pairs are built (generation), never computed here
KINDS = (CLASSIFIER, TRAINED, POSTHOC, CONTROL)

# How a trained method trains. END_TO_END: with F from scratch when F has no pretrained weights
# (§4.1), else on F's frozen features starting from the baseline's head (§4.2). HEAD: only its
# module, on the trained baseline's frozen F (and L when the head is frozen).
END_TO_END, HEAD = "end-to-end", "head"
TRAININGS = (END_TO_END, HEAD)

BASELINE = "baseline"

PoolingFactory = Callable[
    [PoolingConfig, int, int], nn.Module
]  # (config, channels C, positions h·w)
PoolingCheck = Callable[[PoolingConfig, int], None]  # (config, positions h·w); raises BLAError
Explainer = Callable[[ExplainedClassifier, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
ClassExplainer = Callable[[ExplainedClassifier, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Method:
    """One method: its key, display name, kind, pooling module, training and explanation.

    ``explain(model, images)`` gives the predicted classes (B,) and maps (B, h, w). ``hard_masks``:
    the maps are the module's hard explanations δ, so explanation sizes, the selectivity verdict and
    the dead check apply; ``variable_size``: the mask size varies per image (BLA), so the dead check
    also looks at the sizes. ``default_explanation``: what a run of this method explains with when
    no method is asked (None: its own module). ``baseline_runs_only``: a post-hoc method that needs
    an average-pooled baseline run (CAM reads its linear head). ``explain_class(model, images,
    targets)`` gives the maps (B, h, w) explaining the classes ``targets`` (B,); None: the method is
    class-agnostic (one map per image, whatever the class: the BLA family, L2X-F).
    """

    key: str
    kind: str
    name: str = ""  # "" → contracts.vocabulary.method_name(key)
    pooling: PoolingFactory | None = None
    check: PoolingCheck | None = None
    trains: str | None = None
    frozen_head: bool = False
    explain: Explainer | None = None
    hard_masks: bool = False
    variable_size: bool = False
    default_explanation: str | None = None
    baseline_runs_only: bool = False
    library: LibraryMethod | None = None
    explain_class: ClassExplainer | None = None

    def __post_init__(self) -> None:
        try:
            validate_method_key(self.key)
        except ValueError as error:
            raise BLAError(str(error)) from None
        object.__setattr__(self, "name", self.name or method_name(self.key))
        problem = self._problem()
        if problem:
            raise BLAError(f"method {self.key!r} {problem}")

    def _problem(self) -> str | None:
        """What makes this entry inconsistent, or None."""
        if self.kind not in KINDS:
            return f"has kind {self.kind!r}; use one of {', '.join(KINDS)}"
        trained = self.kind in (CLASSIFIER, TRAINED)
        if trained != (self.pooling is not None) or trained != (self.trains in TRAININGS):
            return "needs a pooling module and a training (end-to-end or head) exactly when trained"
        if (self.kind in (TRAINED, POSTHOC)) != (self.explain is not None):
            return "needs an explain function exactly when it is a trained explainer or post-hoc"
        if self.frozen_head and self.trains != HEAD:
            return "can freeze the head only when it trains on a trained baseline (trains='head')"
        return None

    @property
    def trainable(self) -> bool:
        """Trained by ``train``/``experiment`` (the baseline and the trained explainers)."""
        return self.pooling is not None

    @property
    def needs_baseline(self) -> bool:
        """Trained after, and from, a trained baseline of the same seed."""
        return self.kind == TRAINED

    @property
    def trains_head(self) -> bool:
        """Trains only its module on the trained baseline's frozen F, whatever the backbone."""
        return self.trains == HEAD

    @property
    def any_run(self) -> bool:
        """A post-hoc method that explains a run of any trained method."""
        return self.kind == POSTHOC and not self.baseline_runs_only


METHODS: dict[str, Method] = {}


def register(entry: Method) -> Method:
    """Add ``entry`` to :data:`METHODS`; a key already there is refused."""
    if entry.key in METHODS:
        raise BLAError(f"method {entry.key!r} is already registered")
    METHODS[entry.key] = entry
    return entry


def lookup(key: str) -> Method:
    """The entry of ``key``; an unknown key is refused, naming the known ones."""
    if key not in METHODS:
        raise BLAError(f"unknown method {key!r}; choose one of {', '.join(METHODS)}")
    return METHODS[key]


def keys(test: Callable[[Method], bool]) -> list[str]:
    """The registered keys whose entry passes ``test``, in registry order."""
    return [key for key, entry in METHODS.items() if test(entry)]


def trained_keys() -> list[str]:
    """Methods ``train`` and ``experiment`` train (the paper's Table 1 columns first)."""
    return keys(lambda m: m.trainable)


def explanation_keys() -> list[str]:
    """Methods ``explain`` can write an explanations file with."""
    return keys(lambda m: m.explain is not None)


def check_method(key: str) -> Method:
    """The entry of a method that can be trained; anything else gets one clear error."""
    entry = lookup(key)
    if not entry.trainable:
        raise BLAError(
            f"method {key!r} ({entry.kind}) is not trained; choose one of "
            f"{', '.join(trained_keys())} (bla_core explain --method gives post-hoc maps)"
        )
    return entry


def display_name(key: str) -> str:
    """The column title of ``key`` in tables and figures (its key when it is not registered)."""
    return METHODS[key].name if key in METHODS else key


def check_pooling(config: PoolingConfig, positions: int) -> None:
    """Raise a clear error when ``config`` cannot pool a map of ``positions`` = h·w cells."""
    entry = check_method(config.method)
    if entry.check is not None:
        entry.check(config, positions)


def build_pooling(config: PoolingConfig, channels: int, positions: int) -> nn.Module:
    """The pooling layer of ``config.method`` for a feature map with ``positions`` = h·w cells."""
    check_pooling(config, positions)
    return METHODS[config.method].pooling(config, channels, positions)


def _needs_gamma(config: PoolingConfig, _positions: int) -> None:
    if config.gamma is None:
        raise BLAError(f"method {config.method!r} needs a threshold gamma")


def _k_fits(config: PoolingConfig, positions: int) -> None:
    if config.k > positions:
        raise BLAError(
            f"L2X-F k={config.k} is larger than the {positions} positions of the feature map"
        )


def _bla(config: PoolingConfig, channels: int, _positions: int, thresholded: bool) -> nn.Module:
    return BoundedLogitAttention(
        channels, theta=config.theta, gamma=config.gamma if thresholded else None
    )


def _l2x(config: PoolingConfig, channels: int, _positions: int) -> nn.Module:
    return L2XSelector(channels, k=config.k, tau=config.tau, pooling=config.l2x_pooling)


@torch.no_grad()
def module_masks(
    model: ExplainedClassifier, images: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictions and hard masks δ of the model's own explanation module."""
    output = model(images, hard=True)
    return output.logits.argmax(1), output.explanation.mask.float()


def predicted_class_maps(
    maps: Callable[..., torch.Tensor], model: ExplainedClassifier, images: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictions and ``maps(model, images, preds)`` for the predicted classes (CAM, Grad-CAM)."""
    with torch.no_grad():
        preds = model(images, hard=True).logits.argmax(1)
    return preds, maps(model, images, preds)


# Shared settings: a module explaining by its hard mask; BLA's (variable size); BLA-T's threshold.
_EXPLAINER = {"hard_masks": True, "explain": module_masks}
_BLA = {**_EXPLAINER, "variable_size": True}
_BLA_T = {**_BLA, "pooling": partial(_bla, thresholded=True), "check": _needs_gamma}
for _entry in (
    Method(
        BASELINE,
        CLASSIFIER,
        name="BL",
        pooling=lambda config, channels, positions: AveragePooling(),
        trains=END_TO_END,
        default_explanation="cam",
    ),
    Method("l2x_f", TRAINED, pooling=_l2x, check=_k_fits, trains=END_TO_END, **_EXPLAINER),
    Method("bla", TRAINED, pooling=partial(_bla, thresholded=False), trains=END_TO_END, **_BLA),
    Method("bla_t", TRAINED, trains=END_TO_END, **_BLA_T),
    Method("bla_ph", TRAINED, trains=HEAD, frozen_head=True, **_BLA_T),
    Method("cam", POSTHOC, explain=partial(predicted_class_maps, cam), baseline_runs_only=True,
           explain_class=cam),
    Method("grad_cam", POSTHOC, explain=partial(predicted_class_maps, grad_cam), explain_class=grad_cam),
    Method(RANDOM_METHOD, CONTROL),
    *(
        Method(key, POSTHOC, explain=partial(library_maps, method=key), library=entry,
               explain_class=None if entry.class_agnostic else partial(library_class_maps, method=key))
        for key, entry in LIBRARY_METHODS.items()
    ),
):
    register(_entry)
