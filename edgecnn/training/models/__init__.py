"""Model families and their registry (timm style): importing this package registers every family.

``registry`` is the leaf the families register into; ``mobilenet`` holds MobileNetV1/V2;
``model_io`` saves and loads them (and their quantization-aware versions) safely.
"""

from edgecnn.training.models import mobilenet  # noqa: F401  (registers MobileNetV1 and V2)
from edgecnn.training.models.mobilenet import DEFAULT_MODEL, build_model, model_stats
from edgecnn.training.models.registry import MODELS, get_spec

__all__ = ["DEFAULT_MODEL", "MODELS", "build_model", "get_spec", "model_stats"]
