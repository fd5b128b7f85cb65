"""Time, injected.

Every policy asks a :class:`Clock` for the time instead of reading the wall clock, so tests and the simulator can
run on a :class:`ManualClock` with no real sleeping. Times are monotonic seconds: only differences mean anything.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol, runtime_checkable

__all__ = ["AsyncClock", "Clock", "ManualClock", "SystemClock", "WallClock", "real_seconds", "time_scale_of"]


@runtime_checkable
class Clock(Protocol):
    """A source of monotonic time that can also wait."""

    def now(self) -> float:
        """Monotonic seconds; only differences between two readings mean anything."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block the caller for ``seconds``."""
        ...


@runtime_checkable
class AsyncClock(Clock, Protocol):
    """A clock that can also wait without blocking an event loop (used by the async driver)."""

    async def asleep(self, seconds: float) -> None:
        """Wait ``seconds`` cooperatively."""
        ...


class SystemClock:
    """The real monotonic clock (:func:`time.monotonic`), with real sleeping."""

    __slots__ = ()

    def now(self) -> float:
        """Return :func:`time.monotonic`."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Sleep for real; negative values are treated as zero."""
        if seconds > 0:
            time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        """Sleep on the running event loop (asyncio or trio, through anyio)."""
        import anyio

        await anyio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "SystemClock()"


class WallClock(SystemClock):
    """Seconds since the epoch (:func:`time.time`), with real sleeping: the clock of records that outlive a process.

    A persisted expiry (SQLite, idempotency records) must mean the same to every process of the host and after a
    reboot, which the monotonic clock does not promise.
    """

    __slots__ = ()

    def now(self) -> float:
        """Return :func:`time.time`."""
        return time.time()

    def __repr__(self) -> str:
        return "WallClock()"


class ManualClock:
    """A clock that moves only when told to: :meth:`advance`, or :meth:`sleep`, which advances instantly.

    Thread-safe. Use it in tests to step a breaker through its states, and wherever virtual time is wanted.
    """

    __slots__ = ("_lock", "_now")

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        """The current virtual time."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` (must not be negative) and return the new time."""
        if seconds < 0:
            raise ValueError(f"ManualClock.advance: seconds must be >= 0, got {seconds!r}")
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, when: float) -> None:
        """Jump to the absolute time ``when`` (must not go backwards)."""
        with self._lock:
            if when < self._now:
                raise ValueError(f"ManualClock.set: time may not go backwards ({when!r} < {self._now!r})")
            self._now = float(when)

    def sleep(self, seconds: float) -> None:
        """Advance by ``seconds`` at once, without blocking."""
        if seconds > 0:
            self.advance(seconds)

    async def asleep(self, seconds: float) -> None:
        """Advance by ``seconds`` at once; still yields to the event loop once, like a real sleep."""
        import anyio

        self.sleep(seconds)
        await anyio.lowlevel.checkpoint()

    def __repr__(self) -> str:
        return f"ManualClock(now={self._now!r})"


def real_seconds(clock: object, seconds: float) -> float:
    """``seconds`` of ``clock``'s time in real seconds, for the socket timeouts a driver hands its library.

    A clock that plays scenario time faster than real time says so with a ``time_scale`` attribute (the live
    playbook's ``ScaledClock``): its seconds are divided by it. Any other clock's seconds are real ones.
    """
    return seconds / time_scale_of(clock)


def time_scale_of(clock: object) -> float:
    """How many of ``clock``'s seconds pass in one real second: its ``time_scale`` attribute when it has a positive
    one (the live playbook's ``ScaledClock``), else 1."""
    scale = getattr(clock, "time_scale", 1.0)
    return float(scale) if isinstance(scale, int | float) and not isinstance(scale, bool) and scale > 0 else 1.0
