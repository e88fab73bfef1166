"""bla_core: Bounded Logit Attention and the explanation methods it is compared with, in PyTorch."""
__version__ = "0.1.0"

from .attention import BoundedLogitAttention  # noqa: E402
from .classifier import ExplainedClassifier  # noqa: E402
from .methods import METHODS  # noqa: E402
from .l2x import L2XSelector  # noqa: E402
from .posthoc import cam, grad_cam  # noqa: E402

__all__ = ["BoundedLogitAttention", "ExplainedClassifier", "L2XSelector", "METHODS", "cam", "grad_cam"]
