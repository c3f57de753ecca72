"""Keep native libraries' messages off stdout: stdout belongs to edgecnn (``--json`` must parse).

LiteRT prints lines such as ``INFO: Failed to load OpenCL library with dlopen ...`` with C's
``printf`` while its accelerators load. ``native_stdout_to_stderr()`` points file descriptor 1 at
stderr for the duration of a runtime call, flushing Python's and C's buffers on both sides so
nothing written before or inside the block lands on the wrong stream. Nested use is cheap (only
the outermost block redirects), and it is safe from several threads (a lock and a depth count).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading

_lock = threading.RLock()
_depth = 0
_saved_fd: int | None = None
_libc = ctypes.CDLL(None)


def _flush_all() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    _libc.fflush(None)  # C's stdio buffers: a printf without a newline would otherwise leak out later


@contextlib.contextmanager
def native_stdout_to_stderr():
    """Within the block, whatever native code writes to fd 1 goes to fd 2 instead."""
    global _depth, _saved_fd
    with _lock:
        if _depth == 0:
            _flush_all()
            _saved_fd = os.dup(1)
            os.dup2(2, 1)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _flush_all()
                os.dup2(_saved_fd, 1)
                os.close(_saved_fd)
                _saved_fd = None
