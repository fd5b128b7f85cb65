"""The breaker's sliding windows: the last N calls (count) or the last N seconds (time), O(1) per record."""

from __future__ import annotations

import math
from collections import deque

__all__ = ["CountWindow", "TimeWindow"]

_floor = math.floor


class CountWindow:
    """The last ``size`` outcomes, in a ring buffer with running sums (O(1) per record).

    Each slot holds bit 1 for a failure and bit 2 for a slow call.
    """

    __slots__ = ("_pos", "_ring", "_size", "calls", "failures", "slow")

    def __init__(self, size: int) -> None:
        self._size = size
        self._ring = [0] * size
        self._pos = 0
        self.calls = 0
        self.failures = 0
        self.slow = 0

    def record(self, now: float, failed: bool, slow: bool) -> None:
        """Add one outcome, evicting the oldest once full (``now`` is unused)."""
        pos = self._pos
        ring = self._ring
        if self.calls == self._size:
            old = ring[pos]
            if old & 1:
                self.failures -= 1
            if old & 2:
                self.slow -= 1
        else:
            self.calls += 1
        code = 0
        if failed:
            self.failures += 1
            code = 1
        if slow:
            self.slow += 1
            code |= 2
        ring[pos] = code
        pos += 1
        self._pos = 0 if pos == self._size else pos

    def expire(self, now: float) -> None:
        """Nothing expires with time in a count window."""

    def clear(self) -> None:
        """Forget every outcome (slots past ``calls`` are never read, so the ring is not wiped)."""
        self._pos = 0
        self.calls = 0
        self.failures = 0
        self.slow = 0


class TimeWindow:
    """The outcomes of the last ``size`` whole seconds, one bucket per second (O(1) amortised per record).

    Bucket ``second % size`` holds ``(second, calls, failures, slow)``. ``_active`` lists the seconds of non-empty
    buckets, oldest first; a bucket is subtracted from the running sums once its second is ``size`` or more seconds
    older than the newest, lazily, when the window is next used.
    """

    __slots__ = (
        "_active",
        "_calls",
        "_failures",
        "_newest",
        "_newest_index",
        "_seconds",
        "_size",
        "_slow",
        "calls",
        "failures",
        "slow",
    )

    def __init__(self, size: int) -> None:
        self._size = size
        self._seconds: list[int | None] = [None] * size
        self._calls = [0] * size
        self._failures = [0] * size
        self._slow = [0] * size
        self._active: deque[int] = deque()
        self._newest: int | None = None  # the second of the bucket that records go to, once one is open
        self._newest_index = 0
        self.calls = 0
        self.failures = 0
        self.slow = 0

    def expire(self, now: float) -> int:
        """Drop buckets that fell out of the window at ``now``; return ``now``'s whole second."""
        second = _floor(now)
        cutoff = second - self._size
        active = self._active
        while active and active[0] <= cutoff:
            self._drop(active.popleft() % self._size)
        if not active:
            self._newest = None
        return second

    def record(self, now: float, failed: bool, slow: bool) -> None:
        """Add one outcome to the bucket of ``now``'s second."""
        index = self._newest_index
        if _floor(now) != self._newest:
            index = self._open_bucket(now)
        self._calls[index] += 1
        self.calls += 1
        if failed:
            self._failures[index] += 1
            self.failures += 1
        if slow:
            self._slow[index] += 1
            self.slow += 1

    def _open_bucket(self, now: float) -> int:
        """Expire old buckets and make ``now``'s second the newest bucket; return its index."""
        second = self.expire(now)
        active = self._active
        if active and second < active[-1]:
            second = active[-1]  # the clock went backwards: count it in the newest bucket
        index = second % self._size
        if self._seconds[index] != second:
            self._seconds[index] = second
            active.append(second)
        self._newest = second
        self._newest_index = index
        return index

    def clear(self) -> None:
        """Forget every outcome."""
        while self._active:
            self._drop(self._active.popleft() % self._size)
        self._newest = None

    def _drop(self, index: int) -> None:
        self.calls -= self._calls[index]
        self.failures -= self._failures[index]
        self.slow -= self._slow[index]
        self._seconds[index] = None
        self._calls[index] = 0
        self._failures[index] = 0
        self._slow[index] = 0
