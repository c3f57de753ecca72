"""edgecnn's own exceptions.

Every message is one line that says what is wrong and how to fix it. The CLI prints
``Error: <message>`` and exits with ``exit_code``; it never shows a traceback for these.
"""

import difflib
import errno


class EdgecnnError(Exception):
    """A problem the user can fix. The message must carry the fix."""

    exit_code = 2


class DataError(EdgecnnError):
    """Images, folders or splits that cannot be used as given."""


class ModelError(EdgecnnError):
    """A model file or model configuration that cannot be used as given."""


class RecipeError(EdgecnnError):
    """A recipe file or option that is unknown, mistyped or contradictory."""


class RunDirError(EdgecnnError):
    """A run directory that lacks an artifact a stage needs, or is already finished."""


class RuntimeUnavailable(EdgecnnError):
    """An interpreter, delegate, compiler, camera or display that is not present here."""


class SourceError(EdgecnnError):
    """A camera, stream, video file or image folder that cannot be opened or read."""


class WriteFailed(EdgecnnError):
    """The disk is full, read-only or not ours: an artifact could not be written. Nothing half-written is kept."""

    exit_code = 1


# errno -> what the user can do about it. Other OS errors are bugs or input errors, not the environment.
_WRITE_FIXES = {
    errno.ENOSPC: "free some space there or choose another --out",
    errno.EDQUOT: "free some of your disk quota or choose another --out",
    errno.EROFS: "the file system is read-only: choose a writable --out",
    errno.EACCES: "choose a folder you can write to (--out), or fix its permissions",
    errno.EPERM: "choose a folder you can write to (--out), or fix its permissions",
}


def environment_write_error(exc: OSError, target=None, verb: str = "write") -> "WriteFailed | None":
    """A one-line ``WriteFailed`` for a full, read-only or permission-denied path; None for other OS errors.

    ``verb`` is "use" where the failing call may have been a read (the CLI's last net)."""
    fix = _WRITE_FIXES.get(exc.errno)
    if fix is None:
        return None
    where = target or exc.filename or "a file"
    return WriteFailed(f"cannot {verb} {where}: {exc.strerror or errno.errorcode.get(exc.errno, exc.errno)}; {fix}")


class RequestRejected(EdgecnnError):
    """An HTTP request to ``edgecnn serve`` that cannot be served as sent; ``status`` is its 4xx/5xx code."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


class GateFailed(EdgecnnError):
    """A parity gate (disagreement, accuracy drop) was exceeded. Distinct exit code for CI."""

    exit_code = 3


class DegenerateModel(EdgecnnError):
    """The float model answers one class nearly everywhere or is no better than chance. A gate: exit code 3."""

    exit_code = 3


class TrainingDiverged(EdgecnnError):
    """Loss became NaN or infinite."""


class TrainingInterrupted(EdgecnnError):
    """Ctrl-C during training; the checkpoints of completed epochs are kept."""

    exit_code = 130


# Which extra brings which top-level module, for the "pip install" hint.
EXTRA_OF_MODULE = {
    "cv2": "device", "ai_edge_litert": "device", "psutil": "device",
    "tensorflow": "train", "tf_keras": "train", "tensorflow_model_optimization": "train",
    "sklearn": "train", "matplotlib": "train", "tqdm": "train",
    "starlette": "serve", "uvicorn": "serve", "prometheus_client": "serve", "python_multipart": "serve",
}


def missing_extra(what: str, module: str) -> str:
    """'<what> needs the Python module '<module>', which is not installed; run: pip install "edgecnn[<extra>]"'."""
    extra = EXTRA_OF_MODULE.get(module.split(".")[0], "train")
    return f"{what} needs the Python module {module!r}, which is not installed; run: pip install \"edgecnn[{extra}]\""


def closest(name: str, choices) -> str:
    """A ' (did you mean X?)' hint for an unknown name, or '' when nothing is close."""
    match = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""
