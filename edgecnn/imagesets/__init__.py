"""Image sets without TensorFlow: find a folder's images, decode them once, hold them as uint8.

The one path from a folder (or a run's split) to model-ready pixels, shared by training, the
pruning/QAT fine-tunes, int8 calibration and parity. numpy and OpenCV only (through
``edgecnn.runtime.preprocess``, the device's own decoding), so the device install can use it.

- ``folders``: ``scan_folder`` (one sub-folder per class; ``lenient`` for parity's data, which
  may be unlabelled); ``image_files`` lives in ``runtime.preprocess``, which the camera loop also uses.
- ``decoded``: ``decode_items``, ``warn_skipped``, ``ImageSet``, ``load_images``, ``load_split``.
"""

from edgecnn.imagesets.decoded import ImageSet, decode_items, load_images, load_split, warn_skipped
from edgecnn.imagesets.folders import LAYOUT_HINT, ImageFolder, scan_folder
from edgecnn.runtime.preprocess import image_files

__all__ = ["LAYOUT_HINT", "ImageFolder", "ImageSet", "decode_items", "image_files", "load_images", "load_split",
           "scan_folder", "warn_skipped"]
