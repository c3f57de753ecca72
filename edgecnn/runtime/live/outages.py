"""What an outage of a live source cost: the time without frames and the frames lost meanwhile.

A gap runs from the last frame before an outage to the first frame after the reconnect (what a
viewer sees frozen), not only the time spent reconnecting: a stall detected by ``--source-timeout``
began when the last frame came.

Frames lost are counted from the source's own clock. Its period ``P`` is the median interval
between the frames it delivered (a stream's announced FPS is often a default; FFmpeg says 25 for
every MJPEG stream). A frame is handed over at its due time plus some lateness that is never
negative (decoding, a busy core, FFmpeg reading ahead and handing the first frames after a reopen
over in a burst), so the clock's phase on each side of the outage is the earliest ``t_i - i * P``
over ``SETTLE`` frames there, and the frames lost are ``round((phase_after - phase_before) / P)``.
Timing only the first frame after the reopen overcounted by 1-2 frames (measured, issue 14).
"""

from __future__ import annotations

import collections
import statistics

WINDOW = 32  # intervals kept for the median
SETTLE = 5  # frames on each side of an outage that fix the clock's phase


class Outages:
    def __init__(self):
        self.gap_s = 0.0
        self.frames_lost = 0
        self.reconnects = 0  # outages that ended with frames again
        self._intervals: collections.deque = collections.deque(maxlen=WINDOW)
        self._recent: collections.deque = collections.deque(maxlen=SETTLE)  # arrival times, newest last
        self._in_outage = False
        self._before: list[float] | None = None  # the frames before the outage being settled
        self._after: list[float] = []

    def frame(self, now: float) -> None:
        """A frame arrived at ``now`` (time.perf_counter())."""
        if self._recent:
            if self._in_outage:
                self.gap_s += now - self._recent[-1]
                self.reconnects += 1
                self._settle()  # a previous outage not yet settled keeps its estimate so far
                self._before, self._after = list(self._recent), []
            elif self._before is None:
                self._intervals.append(now - self._recent[-1])
        if self._before is not None:
            self._after.append(now)
            if len(self._after) >= SETTLE:
                self._settle()
        self._in_outage = False
        self._recent.append(now)

    def outage(self) -> None:
        """The source stopped delivering (and is being reopened)."""
        self._in_outage = bool(self._recent) or self._in_outage

    def end(self, now: float) -> None:
        """The run ended; an outage still going counts up to ``now``, with no reconnect."""
        self._settle()
        if self._in_outage and self._recent:
            self.gap_s += now - self._recent[-1]
            interval = self.interval_s()
            self.frames_lost += max(0, round((now - self._recent[-1]) / interval)) if interval else 0
            self._in_outage = False

    def interval_s(self) -> float | None:
        return statistics.median(self._intervals) if self._intervals else None

    def _pending(self) -> int:
        interval = self.interval_s()
        if self._before is None or not self._after or not interval:
            return 0
        # Index 0 is the last frame before the outage; the first after it is index 1 if none was lost.
        before = min(t + (len(self._before) - 1 - i) * interval for i, t in enumerate(self._before))
        after = min(t - (k + 1) * interval for k, t in enumerate(self._after))
        return max(0, round((after - before) / interval))

    def _settle(self) -> None:
        self.frames_lost += self._pending()
        self._before, self._after = None, []

    def summary(self) -> dict:
        interval = self.interval_s()
        return {"gap_s": round(self.gap_s, 3), "frames_lost": self.frames_lost + self._pending(),
                "reconnects": self.reconnects, "source_fps_measured": round(1.0 / interval, 3) if interval else None}
