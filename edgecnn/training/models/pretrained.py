"""Transfer learning: a MobileNet backbone with published ImageNet weights, or the user's own, under edgecnn's head.

``--weights imagenet`` builds ``tf_keras.applications.MobileNet``/``MobileNetV2`` (include_top=False)
with the published weights and puts ``mobilenet.classifier_head`` on its last feature map, as one
flat functional model (tfmot prunes and quantizes flat models only; no model inside a model).
Only include_top=False is used: the ImageNet top has a Reshape and a 1x1 conv classifier, which
the new head replaces. The backbone's ZeroPadding2D layers fold into the convolutions' padding
in TFLite (int8 ops: CONV_2D, DEPTHWISE_CONV_2D, MEAN, FULLY_CONNECTED, SOFTMAX, all Edge TPU ops).

The weight files come through tf_keras's ``get_file`` into Keras's cache (``~/.keras/models/<file>``;
``/tmp/.keras/models`` where ~/.keras is not writable). A cached file is used without any network
access: tf_keras's applications pass no hash for these files, and ``get_file`` without a hash
returns an existing file as it is. Offline and uncached, the error names the file, its URL and
where to put it. The published file is loaded by the application itself, in layer order, exactly
as ``weights="imagenet"`` would.

``--weights FILE|RUN`` (``weight_source``) copies every backbone layer's weights by name; the
head is new, so the class count may differ. A source made by keras.applications gets the
applications backbone, anything else edgecnn's own ``build_model(architecture)``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from edgecnn.errors import ModelError
from edgecnn.runtime.preprocess import InputSpec
from edgecnn.training.keras_compat import keras
from edgecnn.training.models.mobilenet import HEAD_LAYERS, build_model, classifier_head
from edgecnn.training.models.registry import check_positive, get_spec
from edgecnn.training.models.weight_source import WeightCopy, copy_by_name, describe_bad_source, read_source

IMAGENET = "imagenet"
# ImageNet MobileNets were trained on RGB scaled to [-1, 1]: (pixel - 127.5) / 127.5.
IMAGENET_MEAN = 127.5
IMAGENET_STD = 127.5
IMAGENET_CHANNELS = 3
# keras.applications' smallest input (its obtain_input_shape min_size) for a backbone without ImageNet weights.
MIN_SIZE = 32


@dataclasses.dataclass(frozen=True)
class ImagenetWeights:
    """The published no-top weights of one keras.applications family (tf_keras/src/applications)."""

    application: str  # keras.applications attribute
    alphas: tuple[float, ...]
    sizes: tuple[int, ...]
    base_url: str

    def file_name(self, alpha: float, size: int) -> str:
        if self.application == "MobileNet":
            # tf_keras's mobilenet.py: alpha 1.0 -> "1_0", 0.75 -> "7_5", 0.5 -> "5_0", 0.25 -> "2_5".
            text = {1.0: "1_0", 0.75: "7_5", 0.5: "5_0", 0.25: "2_5"}[alpha]
            return f"mobilenet_{text}_{size}_tf_no_top.h5"
        return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{size}_no_top.h5"

    def url(self, alpha: float, size: int) -> str:
        return self.base_url + self.file_name(alpha, size)


_KERAS_APPLICATIONS = "https://storage.googleapis.com/tensorflow/keras-applications/"
IMAGENET_WEIGHTS = {
    "mobilenet_v1": ImagenetWeights("MobileNet", (0.25, 0.5, 0.75, 1.0), (128, 160, 192, 224),
                                    _KERAS_APPLICATIONS + "mobilenet/"),
    "mobilenet_v2": ImagenetWeights("MobileNetV2", (0.35, 0.5, 0.75, 1.0, 1.3, 1.4), (96, 128, 160, 192, 224),
                                    _KERAS_APPLICATIONS + "mobilenet_v2/"),
}


def pretrained_options() -> list[dict]:
    """For ``edgecnn models``: which architectures, alphas and sizes have ImageNet weights."""
    return [{"architecture": name, "weights": IMAGENET, "alphas": list(w.alphas), "sizes": list(w.sizes),
             "channels": IMAGENET_CHANNELS, "backbone": f"tf_keras.applications.{w.application}"}
            for name, w in IMAGENET_WEIGHTS.items()]


def pretrained_input(source, size: int, channels: int) -> InputSpec:
    """What the pretrained model takes: for ImageNet, RGB in [-1, 1]; grayscale data must be converted
    to 3 channels by the caller (repeat the gray channel). A user's weights keep the data's channels."""
    if source == IMAGENET:
        return InputSpec(size, size, IMAGENET_CHANNELS, "RGB", (IMAGENET_MEAN,), (IMAGENET_STD,))
    return InputSpec(size, size, channels, "GRAY" if channels == 1 else "RGB", (IMAGENET_MEAN,), (IMAGENET_STD,))


def imagenet_weights_file(architecture: str, alpha: float, size: int) -> Path:
    """The cached ImageNet weights file (downloaded on first use), or a ModelError saying where to put it."""
    weights = _imagenet_family(architecture)
    if alpha not in weights.alphas or size not in weights.sizes:
        raise ModelError(f"{architecture} has no ImageNet weights for alpha {alpha:g} at {size}px; published: alpha "
                         f"{'/'.join(f'{a:g}' for a in weights.alphas)} at {'/'.join(map(str, weights.sizes))}px")
    name, url = weights.file_name(alpha, size), weights.url(alpha, size)
    try:
        # A cached file is returned as it is: no hash is passed, so get_file never touches the network for it.
        return Path(keras.utils.get_file(name, url, cache_subdir="models"))
    except Exception as exc:  # noqa: BLE001 - get_file re-raises URL errors as a bare Exception
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise ModelError(f"cannot download the ImageNet weights {name} ({reason}); on a machine with internet "
                         f"download {url} and place it at {keras_cache_dir() / name}") from None


def keras_cache_dir() -> Path:
    """Where tf_keras's get_file looks for and keeps models: ~/.keras/models, or /tmp/.keras/models when
    ~/.keras exists but is not writable (get_file also falls back when ~/.keras is missing; placing the
    file under ~/.keras/models creates it, and then get_file looks there)."""
    home = Path(os.path.expanduser("~")) / ".keras"
    if home.exists() and not os.access(home, os.W_OK):
        return Path("/tmp") / ".keras" / "models"
    return home / "models"


def _imagenet_family(architecture: str) -> ImagenetWeights:
    if architecture not in IMAGENET_WEIGHTS:
        raise ModelError(f"--weights imagenet needs one of {', '.join(IMAGENET_WEIGHTS)} (full depth: ImageNet "
                         f"weights exist only for those), got {architecture!r}")
    return IMAGENET_WEIGHTS[architecture]


def build_pretrained(source, architecture: str, *, num_classes: int, size: int, channels: int = 3,
                     alpha: float | None = None, dropout: float | None = None):
    """(model, backbone layer names): ``architecture`` with the weights of ``source`` and a new head.

    ``source``: "imagenet", a run directory, a .keras model or a Keras weights file. With ImageNet
    the model always takes 3 channels (see ``pretrained_input``).
    """
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ModelError(f"a classifier needs at least 2 classes, got {num_classes!r}")
    spec = get_spec(architecture)
    alpha = check_positive("alpha", spec.alpha if alpha is None else alpha)
    dropout = spec.dropout if dropout is None else float(dropout)
    if source == IMAGENET:
        path = imagenet_weights_file(architecture, alpha, size)
        model = _applications_model(architecture, num_classes, size, IMAGENET_CHANNELS, alpha, dropout, path)
        return model, backbone_layers(model)
    if not isinstance(source, (str, os.PathLike)) or not Path(source).exists():
        raise ModelError(describe_bad_source(source))
    weights = read_source(source)
    family = weights.applications_family()
    if family is not None:
        if family != "unknown" and family != spec.family:
            raise ModelError(f"{source} holds a keras.applications {family} backbone; build it as {family}, "
                             f"not {architecture}")
        model = _applications_model(spec.family, num_classes, size, channels, alpha, dropout)
    else:
        model = build_model(architecture, num_classes=num_classes, size=size, channels=channels, alpha=alpha,
                            dropout=dropout)
    names = backbone_layers(model)
    copy_by_name(model, weights, names, alpha=alpha)
    return model, names


def load_backbone_weights(model, source, names=None, *, alpha: float | None = None) -> WeightCopy:
    """Copy ``source``'s weights into ``model``'s backbone layers (``names``, default: all but the head) by name."""
    names = backbone_layers(model) if names is None else list(names)
    if source == IMAGENET:
        raise ModelError("ImageNet weights are loaded by build_pretrained('imagenet', ...), which also builds the "
                         "matching keras.applications backbone")
    return copy_by_name(model, read_source(source), names, alpha=alpha)


def backbone_layers(model) -> list[str]:
    """Every layer but the input and edgecnn's classifier head."""
    return [layer.name for layer in model.layers
            if layer.name not in HEAD_LAYERS and not isinstance(layer, keras.layers.InputLayer)]


def _applications_model(family: str, num_classes: int, size: int, channels: int, alpha: float, dropout: float,
                        weights: Path | None = None):
    """keras.applications backbone (no top) + edgecnn's head, as one flat model.

    ``weights``: a published no-top file, loaded by the application itself exactly as for
    ``weights="imagenet"`` (in layer order); None leaves the backbone random for a by-name copy.
    """
    if family not in IMAGENET_WEIGHTS:
        raise ModelError(f"no keras.applications backbone for {family!r}; use one of {', '.join(IMAGENET_WEIGHTS)}")
    if not isinstance(size, int) or size < MIN_SIZE:
        raise ModelError(f"--size must be at least {MIN_SIZE} for a keras.applications backbone, got {size!r}")
    inputs = keras.Input((size, size, channels), name="image")
    build = getattr(keras.applications, IMAGENET_WEIGHTS[family].application)
    try:
        backbone = build(input_tensor=inputs, alpha=alpha, include_top=False,
                         weights=None if weights is None else str(weights))
    except (ValueError, OSError) as exc:
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        if weights is not None:
            raise ModelError(f"cannot load {weights} into the {family} backbone ({first}); the cached file may be "
                             "corrupt or truncated: delete it to download it again") from None
        raise ModelError(f"cannot build the {family} backbone: {first}") from None
    outputs = classifier_head(backbone.output, num_classes, dropout)
    return keras.Model(inputs, outputs, name=f"{family}_pretrained")

