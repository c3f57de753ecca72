"""What this machine offers the device half: runtime, OpenCV, delegates, cameras, display.

Delegates are tried, not just looked for: each loads and runs a one-op model
(runtime/delegate_probe.py). Python packages are looked up with ``importlib.util.find_spec`` or
their installed metadata (TensorFlow is reported, never imported or even looked up).
"""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
from importlib import metadata

from edgecnn import __version__
from edgecnn.runtime.delegate_probe import probe_delegate
from edgecnn.runtime.interpreter import DELEGATES, runtime_info
from edgecnn.runtime.live.overlay import opencv_has_gui
from edgecnn.runtime.live.sources import list_v4l2_devices

def device_report() -> dict:
    import cv2

    runtime = runtime_info()
    return {
        "edgecnn": __version__,
        "python": f"{platform.python_version()} ({platform.python_implementation()})",
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "runtime": runtime["runtime"],
        "runtime_version": runtime["runtime_version"],
        "runtime_warning": runtime["runtime_warning"],
        "default_threads": runtime["default_threads"],
        "opencv": cv2.__version__,
        "opencv_window_support": opencv_has_gui(),
        "display": bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or not sys.platform.startswith("linux"),
        "delegates": {name: _tried(name) for name in DELEGATES},
        "cameras": {
            "v4l2_devices": list_v4l2_devices(),
            "picamera2": importlib.util.find_spec("picamera2") is not None,
            "opencv_backends": _opencv_backends(cv2),
        },
        "tensorflow_installed": _distribution_installed("tensorflow"),
    }


def _tried(delegate: str) -> dict:
    """Whether ``delegate`` ran a one-op model here, and why not if it did not."""
    result = probe_delegate(delegate)
    return {"available": result.works, "detail": result.detail}


def _distribution_installed(name: str) -> bool:
    # Package metadata, not find_spec: the device half does not even look for TensorFlow's modules.
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def _opencv_backends(cv2) -> list[str]:
    registry = getattr(cv2, "videoio_registry", None)
    if registry is None:
        return []
    return [registry.getBackendName(b) for b in registry.getCameraBackends()]
