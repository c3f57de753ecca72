"""Ctrl-C, remembered: a KeyboardInterrupt that a library swallowed or turned into another error still ends
the command with exit 130 and one line.

Python raises KeyboardInterrupt wherever the main thread happens to be when SIGINT arrives, and
the code it lands in does not always let it through (all seen on ``export --quantize int8``):
- TensorFlow's autograph wraps a converted call in ``with StackTraceMapper(), CurrentModuleFilter():``;
  an interrupt inside a nested ``__enter__`` leaves an entry on its stack, and the outer
  ``__exit__`` then fails ``assert top is self, 'Concurrent access?'``: an AssertionError (with a
  traceback) replaces the KeyboardInterrupt;
- modules that guard an import with a bare ``except:`` (TFLite's generated schema files, among
  others) swallow it, and the command finished with exit 0 as if no key had been pressed;
- an interrupt that passed through C code evaluating Python (PyRun_String) sets CPython's
  "unhandled KeyboardInterrupt" flag even when edgecnn then handles it, and the process killed
  itself with SIGINT at exit (returncode -2) after printing "Error: interrupted".

``install()`` (the CLI calls it first) puts a SIGINT handler in place that records the interrupt
and raises KeyboardInterrupt as Python's own does. The CLI then treats any exception, and any
success, after a recorded interrupt as "interrupted" (130); ``atomic`` refuses to rename a finished
temporary file onto its target once an interrupt is recorded, so a swallowed Ctrl-C publishes
nothing; and an interrupted command leaves with ``leave(130)``, which flushes and ``os._exit``s so
neither CPython's flag nor native teardown in half-stopped threads changes the exit code.
Stdlib only.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

EXIT_CODE = 130
_received = False


def _handler(signum, frame):
    global _received
    _received = True
    raise KeyboardInterrupt


def _quiet_recorded_interrupt(unraisable) -> None:
    """``sys.unraisablehook``: a recorded Ctrl-C raised inside a ``__del__`` or a finalizer is not printed.

    TensorFlow frees functions in ``AtomicFunction.__del__``; a SIGINT landing there made Python print
    "Exception ignored in ... Traceback ... KeyboardInterrupt" (seen in CI on ``pipeline``), although the
    interrupt is recorded and the command ends with exit 130 and its one line all the same. Every other
    unraisable exception goes to the hook that was there before.
    """
    if _received and isinstance(unraisable.exc_value, KeyboardInterrupt):
        return
    _previous_unraisablehook(unraisable)


_previous_unraisablehook = sys.unraisablehook


def install() -> None:
    """Record SIGINT from now on. Leaves an ignored SIGINT (nohup, a background job) and custom handlers alone."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _handler)
        if sys.unraisablehook is not _quiet_recorded_interrupt:
            global _previous_unraisablehook
            _previous_unraisablehook = sys.unraisablehook
            sys.unraisablehook = _quiet_recorded_interrupt


def start_command() -> None:
    """A command begins: nothing is interrupted yet (one process may run several, as click's CliRunner does)."""
    global _received
    _received = False
    install()


def received() -> bool:
    """Whether Ctrl-C (SIGINT) arrived since ``install()``."""
    return _received


def caused_by_interrupt(exc: BaseException) -> bool:
    """``exc`` is a KeyboardInterrupt, was raised while one was handled, or came after a recorded SIGINT."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return _received


def ignore() -> None:
    """Ignore SIGINT from now on: the command's result is decided. CPython restores SIG_DFL for handlers it
    set when it finalizes (not for SIG_IGN), and a Ctrl-C in those last moments killed the process (-2)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def check() -> None:
    """Raise KeyboardInterrupt if one was recorded (it may have been swallowed since)."""
    if _received:
        raise KeyboardInterrupt


def leave(code: int = EXIT_CODE) -> None:
    """Flush stdout/stderr and exit now with ``code``, skipping atexit and native teardown.

    After an interrupt, worker threads of TensorFlow or LiteRT may be mid-call; their teardown and
    CPython's own flag must not turn exit 130 into a crash or a signal death. edgecnn registers no
    atexit work, and every artifact is already renamed into place or removed by then."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
