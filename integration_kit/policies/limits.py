"""Client-side limits: a bulkhead (how many calls may run at once) and a rate limiter (how many may start per second).

Both are pure, thread-safe cores that answer at once and never wait: :meth:`Bulkhead.try_acquire` says yes or no,
:meth:`RateLimiter.try_acquire` says "go" (``0.0``) or how many seconds until a token will be there. Whether to
wait, and for how long (``Limits.max_wait``), is the driver's choice, made with its own clock.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from integration_kit.clock import Clock

__all__ = ["Bulkhead", "BulkheadStats", "RateLimiter", "RateLimiterStats"]

#: Slack, in tokens, for float rounding: a caller that waits exactly the advised time gets its token.
_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class BulkheadStats:
    """A consistent snapshot of a :class:`Bulkhead`."""

    in_use: int
    max_concurrent: int
    acquired: int
    rejected: int


@dataclass(frozen=True, slots=True)
class RateLimiterStats:
    """A consistent snapshot of a :class:`RateLimiter`'s counters."""

    acquired: int
    throttled: int


class Bulkhead:
    """At most ``max_concurrent`` calls in flight; the next one is rejected rather than queued.

    Pair every successful :meth:`try_acquire` with one :meth:`release` (in a ``finally``).
    """

    __slots__ = ("_acquired", "_in_use", "_lock", "_max", "_rejected")

    def __init__(self, max_concurrent: int) -> None:
        if isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int) or max_concurrent < 1:
            raise ValueError(f"Bulkhead.max_concurrent must be an integer >= 1, got {max_concurrent!r}")
        self._max = max_concurrent
        self._lock = threading.Lock()
        self._in_use = 0
        self._acquired = 0
        self._rejected = 0

    @property
    def max_concurrent(self) -> int:
        """How many slots there are."""
        return self._max

    @property
    def in_use(self) -> int:
        """How many slots are held now."""
        return self._in_use

    def try_acquire(self) -> bool:
        """Take a slot if one is free and return True; otherwise count a rejection and return False."""
        # Hot path: acquire/release by hand costs half of ``with lock`` on CPython 3.11.
        lock = self._lock
        lock.acquire()
        try:
            if self._in_use < self._max:
                self._in_use += 1
                self._acquired += 1
                return True
            self._rejected += 1
            return False
        finally:
            lock.release()

    def release(self) -> None:
        """Give back a slot taken by :meth:`try_acquire`; raises :class:`RuntimeError` if none is held."""
        lock = self._lock
        lock.acquire()
        try:
            if self._in_use <= 0:
                raise RuntimeError("Bulkhead.release() called with no slot held")
            self._in_use -= 1
        finally:
            lock.release()

    def stats(self) -> BulkheadStats:
        """Return a consistent snapshot of the slots and counters."""
        with self._lock:
            return BulkheadStats(
                in_use=self._in_use, max_concurrent=self._max, acquired=self._acquired, rejected=self._rejected
            )

    def __repr__(self) -> str:
        return f"Bulkhead(in_use={self._in_use!r}, max_concurrent={self._max!r})"


class RateLimiter:
    """A token bucket: ``rate`` tokens per second, at most ``burst`` saved up; one token per call.

    The bucket starts full. ``burst`` defaults to ``max(1, ceil(rate))``, one second's worth. Over any interval of
    ``t`` seconds at most ``burst + rate * t`` calls are let through. Time is read only from ``clock``.
    """

    __slots__ = ("_acquired", "_burst", "_clock", "_last", "_lock", "_rate", "_throttled", "_tokens")

    def __init__(self, rate: float, burst: int | None = None, *, clock: Clock) -> None:
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate) or rate <= 0:
            raise ValueError(f"RateLimiter.rate must be a finite number > 0, got {rate!r}")
        if burst is None:
            burst = max(1, math.ceil(rate))
        elif isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ValueError(f"RateLimiter.burst must be an integer >= 1, got {burst!r}")
        if not isinstance(clock, Clock):
            raise TypeError(f"RateLimiter.clock must be a Clock, got {type(clock).__name__}")
        self._rate = float(rate)
        self._burst = burst
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._last = clock.now()
        self._acquired = 0
        self._throttled = 0

    @property
    def rate(self) -> float:
        """Tokens added per second."""
        return self._rate

    @property
    def burst(self) -> int:
        """The bucket's capacity."""
        return self._burst

    def try_acquire(self) -> float:
        """Take a token and return ``0.0``, or take nothing and return the seconds until a token is due (> 0)."""
        lock = self._lock
        lock.acquire()
        try:
            now = self._clock.now()
            if now > self._last:
                tokens = self._tokens + (now - self._last) * self._rate
                self._tokens = tokens if tokens < self._burst else float(self._burst)
                self._last = now
            tokens = self._tokens
            if tokens >= 1.0 - _EPSILON:
                self._tokens = tokens - 1.0 if tokens > 1.0 else 0.0
                self._acquired += 1
                return 0.0
            self._throttled += 1
            return (1.0 - tokens) / self._rate
        finally:
            lock.release()

    def stats(self) -> RateLimiterStats:
        """Return a consistent snapshot of the counters."""
        with self._lock:
            return RateLimiterStats(acquired=self._acquired, throttled=self._throttled)

    def __repr__(self) -> str:
        return f"RateLimiter(rate={self._rate!r}, burst={self._burst!r}, clock={self._clock!r})"
