"""What this machine offers the device half: runtime, OpenCV, delegates, cameras, display.

Looks without loading anything heavy: libraries are probed with the dynamic loader, Python
packages with ``importlib.util.find_spec`` or their installed metadata (TensorFlow is reported,
never imported or even looked up).
"""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
from importlib import metadata

from edgecnn import __version__
from edgecnn.runtime.interpreter import library_loadable, runtime_info
from edgecnn.runtime.live.overlay import opencv_has_gui
from edgecnn.runtime.live.sources import list_v4l2_devices

GPU_LIBRARIES = ("libOpenCL.so.1", "libvulkan.so.1")


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
        "delegates": {
            "cpu": {"available": runtime["runtime"] is not None, "detail": "XNNPACK, built into the runtime"},
            "edgetpu": _edgetpu(runtime),
            "gpu": _gpu(runtime),
        },
        "cameras": {
            "v4l2_devices": list_v4l2_devices(),
            "picamera2": importlib.util.find_spec("picamera2") is not None,
            "opencv_backends": _opencv_backends(cv2),
        },
        "tensorflow_installed": _distribution_installed("tensorflow"),
    }


def _edgetpu(runtime: dict) -> dict:
    if runtime["edgetpu_library_found"]:
        return {"available": True, "detail": f"{runtime['edgetpu_library']} found (a Coral must be plugged in)"}
    return {"available": False, "detail": f"{runtime['edgetpu_library']} not found; install libedgetpu1-std "
                                          "from Coral's apt repository"}


def _gpu(runtime: dict) -> dict:
    found = [name for name in GPU_LIBRARIES if library_loadable(name)]
    if runtime["runtime"] != "ai_edge_litert":
        return {"available": False, "detail": "needs ai-edge-litert, or a delegate library via --delegate-path"}
    if found:
        return {"available": True, "detail": f"LiteRT GPU accelerator can use {', '.join(found)} (not tested here)"}
    return {"available": False, "detail": f"no GPU driver library ({', '.join(GPU_LIBRARIES)}) found; "
                                          "--delegate-path can still load a delegate library"}


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
