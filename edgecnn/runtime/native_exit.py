"""Exit without running native teardown once LiteRT's GPU accelerator has been loaded.

Seen (issue 13): on a machine with Mesa's Vulkan drivers, a process that had created interpreters
died at exit with ``free(): invalid pointer`` / exit 134, right after LiteRT logged
``DestroyAccelerator ... GPU WebGPU``: every result was already written, yet the exit code said
failure. Not reproduced here with lavapipe and Mesa's device-select layer extracted from the
Debian package (tried: 1 and 3 failed GPU loads plus CPU interpreters), so the cause is not pinned
down; the crash is in native static destructors, which ``os._exit`` does not run.

``finish(code)`` therefore runs Python's own exit work (atexit handlers, flushing stdout and
stderr) and then leaves with ``os._exit(code)`` when the accelerator was loaded in this process,
else exits normally. Stdlib only: the CLI imports it before any command runs.
"""

from __future__ import annotations

import atexit
import os
import sys

_accelerator_loaded = False


def mark_accelerator_loaded() -> None:
    """Called before LiteRT's GPU accelerator is first asked for (success or not)."""
    global _accelerator_loaded
    _accelerator_loaded = True


def accelerator_loaded() -> bool:
    return _accelerator_loaded


def exit_code(code) -> int:
    """SystemExit's code as a process exit status (None is 0; a message is printed and is 1)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def finish(code) -> None:
    """Exit with ``code``; skip native teardown if the GPU accelerator was loaded."""
    status = exit_code(code)
    if not _accelerator_loaded:
        sys.exit(status)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said on it
            pass
    os._exit(status)
