"""Client-side limits: a bulkhead (how many calls may run at once), a rate limiter (how many may start per second),
and a quota pacer (how many the partner's own rate-limit headers say are left in its window).

All are pure, thread-safe cores that answer at once and never wait: :meth:`Bulkhead.try_acquire` says yes or no,
:meth:`RateLimiter.try_acquire` and :meth:`QuotaPacer.try_acquire` say "go" (``0.0``) or how many seconds until a
token will be there. Whether to wait, and for how long (``Limits.max_wait``, the call's deadline), is the
driver's choice, made with its own clock.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from integration_kit.clock import Clock
from integration_kit.errors import StoreUnavailable
from integration_kit.events import Hook, QuotaSeen, emit
from integration_kit.policies.signals import Quota
from integration_kit.stores.base import Store
from integration_kit.stores.fallback import StoreFallback

__all__ = ["Bulkhead", "BulkheadStats", "PacerStats", "QuotaPacer", "RateLimiter", "RateLimiterStats"]

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


@dataclass(frozen=True, slots=True)
class PacerStats:
    """A consistent snapshot of a :class:`QuotaPacer`: the quota last seen and what it answered."""

    limit: int | None
    remaining: int | None
    reset_in: float | None
    acquired: int
    paced: int


#: Seconds a shared window's counter outlives the window's reset, so a late answer still finds it.
_WINDOW_GRACE = 60.0
#: Two resets this close (seconds) name the same window: an answer without a ``Date`` is measured from the
#: local clock, which moves the reset by a rounding.
_SAME_WINDOW = 1.5


class QuotaPacer:
    """A token bucket the partner fills: its rate-limit headers say how many calls are left until its reset.

    :meth:`observe` takes the :class:`~integration_kit.policies.signals.Quota` an answer reported (its
    ``remaining`` and ``reset``); :meth:`try_acquire` spends one call, or, once only ``reserve`` calls are left,
    answers the seconds until the reset. Until a first answer (and again once a reset has passed) the quota is
    unknown and calls go: the next answer tells. Between answers the pacer counts its own calls down, and an
    answer within the same window can only lower the count (calls in flight were not in it yet).

    *Shared*: given a :class:`~integration_kit.stores.Store` (Redis), every process's calls in one window are
    counted under ``quota:{name}:{reset}`` (the window named by its reset on the partner's clock, the same in every
    process), and a call goes only while that count stays within ``limit - reserve``. The calls a process made while
    the window was unknown (at most one in flight per thread at the start of a window) are added once it is known;
    ``reserve`` should cover them (one per worker). If the store fails, the pacer decides from its own count
    (``fail_open``, the default) or paces (``fail_open=False``). Each quota observed is handed to ``hooks`` as a
    :class:`~integration_kit.events.QuotaSeen` event (an engine binds its own, see :meth:`bind`).
    """

    __slots__ = (
        "_acquired",
        "_clock",
        "_fallback",
        "_hooks",
        "_limit",
        "_lock",
        "_name",
        "_paced",
        "_remaining",
        "_reset_at",
        "_store",
        "_unknown_calls",
        "_window",
        "reserve",
    )

    def __init__(
        self,
        *,
        reserve: int = 0,
        clock: Clock,
        store: Store | None = None,
        name: str = "default",
        fail_open: bool = True,
        hooks: Sequence[Hook] = (),
    ) -> None:
        if isinstance(reserve, bool) or not isinstance(reserve, int) or reserve < 0:
            raise ValueError(f"QuotaPacer.reserve must be an integer >= 0, got {reserve!r}")
        if store is not None and not isinstance(store, Store):
            raise TypeError(f"QuotaPacer.store must be a Store, got {type(store).__name__}")
        self.reserve = reserve
        self._clock = clock
        self._store = store
        self._name = name
        self._hooks = hooks
        self._fallback = StoreFallback(f"quota pacer {name}", clock, fail_open=fail_open)
        self._lock = threading.Lock()
        self._limit: int | None = None
        self._remaining: int | None = None
        self._reset_at: float | None = None  # on the pacer's clock
        self._window: float | None = None  # the reset on the partner's clock (POSIX seconds)
        self._unknown_calls = 0
        self._acquired = 0
        self._paced = 0

    def bind(self, hooks: Sequence[Hook]) -> QuotaPacer:
        """Send :class:`~integration_kit.events.QuotaSeen` events to ``hooks`` (an engine's live list) from now on;
        return this pacer."""
        self._hooks = hooks
        return self

    def observe(self, quota: Quota | None) -> None:
        """Learn what an answer reported; a quota without ``remaining`` (or ``None``) teaches nothing."""
        if quota is None or quota.remaining is None:
            return
        now = self._clock.now()
        carried = 0
        with self._lock:
            window = quota.resets_at
            same = window is not None and self._window is not None and abs(window - self._window) <= _SAME_WINDOW
            if quota.limit is not None:
                self._limit = quota.limit
            if same and self._remaining is not None:
                self._remaining = min(self._remaining, quota.remaining)
            else:
                self._remaining = quota.remaining
                self._window = window
                carried, self._unknown_calls = self._unknown_calls, 0
            self._reset_at = None if quota.reset is None else now + quota.reset
            window = self._window
            ttl = (quota.reset or 0.0) + _WINDOW_GRACE
        if carried and window is not None:
            self._count(window, carried, ttl)
        if self._hooks:
            event = QuotaSeen(now, self._name, 0, quota.policy, quota.limit, quota.remaining, quota.reset)
            emit(self._hooks, event)

    def try_acquire(self) -> float:
        """Spend one call and return ``0.0``, or spend nothing and return the seconds until the reset (> 0)."""
        now = self._clock.now()
        with self._lock:
            if self._reset_at is not None and now >= self._reset_at:
                self._remaining = self._reset_at = self._window = None  # a new window: the next answer tells
            remaining, reset_at, window, limit = self._remaining, self._reset_at, self._window, self._limit
            if remaining is None:
                self._unknown_calls += 1
                self._acquired += 1
                return 0.0
            wait = 0.0 if reset_at is None else reset_at - now
            if remaining <= self.reserve and wait > 0:
                self._paced += 1
                return wait
            self._remaining = remaining - 1
        if self._store is not None and window is not None and limit is not None and wait > 0:
            spent = self._count(window, 1, wait + _WINDOW_GRACE)
            if spent is None and not self._fallback.fail_open:
                spent = limit + 1
            if spent is not None and spent > limit - self.reserve:
                with self._lock:
                    self._paced += 1
                return wait
        with self._lock:
            self._acquired += 1
        return 0.0

    def stats(self) -> PacerStats:
        """The quota as last seen and counted down, and the counters."""
        now = self._clock.now()
        with self._lock:
            reset_in = None if self._reset_at is None else max(0.0, self._reset_at - now)
            return PacerStats(self._limit, self._remaining, reset_in, self._acquired, self._paced)

    def _count(self, window: float, calls: int, ttl: float) -> int | None:
        """Add ``calls`` to the shared count of ``window``; the new count, or ``None`` when the store failed."""
        if self._store is None:
            return None
        try:
            spent = self._store.increment(f"quota:{self._name}:{round(window)}", calls, ttl=max(ttl, 1.0))
        except StoreUnavailable as exc:
            self._fallback.failed(exc)
            return None
        self._fallback.recovered()
        return spent

    def __repr__(self) -> str:
        return f"QuotaPacer(name={self._name!r}, reserve={self.reserve!r}, shared={self._store is not None})"
