"""Hand-offs between the threads of the camera loop.

Two policies, because live and recorded sources want opposite things:
- ``LatestSlot``: holds one item; a new one replaces an unread one (counted as dropped). A
  camera is always faster than it is read, so the consumer always gets the newest frame and
  never a stale one from a queue.
- ``Fifo``: a short bounded queue; a full queue blocks the producer (back-pressure), so a video
  file or image folder is processed frame by frame, in order, none dropped.

Both end with ``close()``: the consumer gets ``END`` once everything put before is taken.
Blocking calls wake up regularly to check a shared stop event, so a stop never hangs.
"""

from __future__ import annotations

import collections
import threading

END = object()  # what get() returns once a closed channel is empty
_POLL_S = 0.05


class LatestSlot:
    def __init__(self, stop: threading.Event):
        self._stop = stop
        self._cond = threading.Condition()
        self._item = None
        self._has_item = False
        self._closed = False
        self.dropped = 0

    def put(self, item) -> bool:
        with self._cond:
            if self._has_item:
                self.dropped += 1
            self._item, self._has_item = item, True
            self._cond.notify()
        return True

    def get(self, cancel: threading.Event | None = None):
        """The newest item; END once closed, stopped, or ``cancel`` is set (a worker leaving)."""
        with self._cond:
            while not self._has_item:
                if self._closed or self._stop.is_set() or (cancel is not None and cancel.is_set()):
                    return END
                self._cond.wait(_POLL_S)
            item, self._item, self._has_item = self._item, None, False
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class Fifo:
    def __init__(self, stop: threading.Event, maxsize: int = 2):
        self._stop = stop
        self._cond = threading.Condition()
        self._items: collections.deque = collections.deque()
        self._maxsize = maxsize
        self._closed = False
        self.dropped = 0  # always 0: kept so both channels report the same fields

    def put(self, item) -> bool:
        """Block while full; False if the run was stopped before there was room."""
        with self._cond:
            while len(self._items) >= self._maxsize:
                if self._stop.is_set():
                    return False
                self._cond.wait(_POLL_S)
            self._items.append(item)
            self._cond.notify_all()
        return True

    def get(self, cancel: threading.Event | None = None):
        """The oldest item; END once closed and empty (``cancel`` is ignored: every item is delivered)."""
        with self._cond:
            while not self._items:
                if self._closed or self._stop.is_set():
                    return END
                self._cond.wait(_POLL_S)
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
