"""A provider's documented rate limits, played by the live upstream with the provider's own headers.

A scenario's ``provider`` table names a header ``style`` and the limits to enforce::

    [provider]
    style = "github"       # github | shopify | slack | stripe | ietf | ietf-legacy | x-ratelimit | openai
    quota = 5000           # requests per window (shopify: the bucket's size)
    window = 3600          # seconds (fixed windows from the scenario's start)
    write_burst = 80       # github: more writes than this per write_window get a secondary-limit 403
    write_window = 60

What each style sends, after the provider's documentation (the same pages as
:mod:`integration_kit.policies.profiles`):

- ``github``: ``x-ratelimit-limit``, ``-remaining``, ``-used``, ``-reset`` (epoch seconds) on every answer; past
  the quota a 403 with ``x-ratelimit-remaining: 0``; past ``write_burst`` writes per ``write_window`` a 403 with
  ``retry-after`` (the secondary limit).
- ``shopify``: a leaky bucket of ``quota`` draining ``leak_rate`` per second, ``X-Shopify-Shop-Api-Call-Limit:
  used/size`` on every answer, a 429 with ``Retry-After: 2.0`` when full.
- ``slack``: ``quota`` per window (a method's tier), a 429 with ``Retry-After`` (seconds to the window's end) past it.
- ``stripe``: ``quota`` per window (100 per second), a 429 past it; with probability ``lock_timeouts`` a 429 lock
  timeout with ``Stripe-Should-Retry: true``.
- ``ietf``: ``RateLimit-Policy: "default";q=<quota>;w=<window>`` and ``RateLimit: "default";r=<left>;t=<reset>``
  (draft-ietf-httpapi-ratelimit-headers) on every answer, a 429 past the quota.
- ``ietf-legacy``: the draft's older ``RateLimit-Limit``, ``-Remaining`` and ``-Reset`` (seconds from now), and
  ``x-ratelimit``: ``X-RateLimit-Limit``, ``-Remaining`` and ``-Reset`` in seconds from now (as many APIs send it);
  both with a 429 past the quota.
- ``openai``: ``x-ratelimit-limit-requests``, ``-remaining-requests`` and ``-reset-requests`` (a duration, ``6m0s``)
  on every answer; past the quota a 429 with ``retry-after-ms`` and ``x-should-retry: true``.

Delta resets are in scenario seconds. GitHub's epoch reset is the window's end on the wall clock (the scenario's
start plus the window's end in real seconds), one constant per window, which a client reads against the
response's ``Date`` (real time): exact at ``time_scale = 1``, a wait in real seconds otherwise. :class:`ProviderState`
counts what it received per window, to prove that paced clients stay within the quota.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Literal

from integration_kit.clock import Clock
from integration_kit.errors import RateLimited
from integration_kit.policies.limits import QuotaPacer
from integration_kit.policies.outcome import Outcome, OutcomeKind
from integration_kit.policies.profiles import PROFILES
from integration_kit.policies.signals import DEFAULT_SIGNAL_PROFILE, read_signals

__all__ = ["STYLES", "Admission", "ProviderLimits", "ProviderState", "paced", "simulated_outcome"]

#: The header styles a provider table may name.
STYLES = ("github", "shopify", "slack", "stripe", "ietf", "ietf-legacy", "x-ratelimit", "openai")

_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class ProviderLimits:
    """A provider's limits as a scenario states them (see the module docstring for each field)."""

    style: Literal["github", "shopify", "slack", "stripe", "ietf", "ietf-legacy", "x-ratelimit", "openai"]
    quota: int
    window: float = 60.0
    leak_rate: float = 2.0
    write_burst: int | None = None
    write_window: float = 60.0
    lock_timeouts: float = 0.0

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ValueError(f"style: must be one of {', '.join(STYLES)}, got {self.style!r}")
        if isinstance(self.quota, bool) or not isinstance(self.quota, int) or self.quota < 1:
            raise ValueError(f"quota: must be an integer >= 1, got {self.quota!r}")
        for name in ("window", "leak_rate", "write_window"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not (math.isfinite(value) and value > 0)
            ):
                raise ValueError(f"{name}: must be a number of seconds > 0, got {value!r}")
        burst = self.write_burst
        if burst is not None and (isinstance(burst, bool) or not isinstance(burst, int) or burst < 1):
            raise ValueError(f"write_burst: must be an integer >= 1, got {burst!r}")
        if not (isinstance(self.lock_timeouts, (int, float)) and 0.0 <= self.lock_timeouts <= 1.0):
            raise ValueError(f"lock_timeouts: must be a probability in [0, 1], got {self.lock_timeouts!r}")


@dataclass(frozen=True, slots=True)
class Admission:
    """The provider's word on one request: ``status`` refuses it (``None``: served as the scenario decides), and
    ``headers`` go on the answer either way."""

    status: int | None
    headers: tuple[tuple[str, str], ...]


class ProviderState:
    """The live counts of one provider's limits; :meth:`admit` is thread-safe. ``wall`` tells POSIX time (for
    GitHub's epoch resets) at the scenario's start, ``time_scale`` the scenario seconds per real one; ``seed``
    seeds the lock-timeout draws."""

    def __init__(
        self, limits: ProviderLimits, *, seed: int = 0, wall: float | None = None, time_scale: float = 1.0
    ) -> None:
        self.limits = limits
        self.time_scale = time_scale
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self.wall = time.time() if wall is None else wall
        self._used: Counter[int] = Counter()  # served per window
        self.received: Counter[int] = Counter()  # every request per window, refused ones included
        self.refused = 0
        self._writes: deque[float] = deque()
        self._level = 0.0
        self._drained_at = 0.0

    def admit(self, t: float, method: str = "GET") -> Admission:
        """Count a request (``method``) arriving at scenario time ``t`` (seconds) and answer it."""
        limits = self.limits
        with self._lock:
            window = int(t // limits.window)
            self.received[window] += 1
            reset = (window + 1) * limits.window - t
            if limits.style == "shopify":
                return self._bucket(t)
            status: int | None = None
            secondary = False
            if limits.write_burst is not None and method.upper() in _WRITES:
                while self._writes and self._writes[0] <= t - limits.write_window:
                    self._writes.popleft()
                if len(self._writes) >= limits.write_burst:
                    status, secondary = 403, True
                else:
                    self._writes.append(t)
            if status is None and self._used[window] >= limits.quota:
                status = 403 if limits.style == "github" else 429
            if status is None and limits.style == "stripe" and self._rng.random() < limits.lock_timeouts:
                status = 429
                self.refused += 1
                return Admission(status, (("stripe-should-retry", "true"),))
            if status is None:
                self._used[window] += 1
            else:
                self.refused += 1
            left = limits.quota - self._used[window]
            epoch = self.wall + (window + 1) * limits.window / self.time_scale
            return Admission(status, self._headers(status, left, reset, secondary, epoch))

    def stats(self) -> dict[str, object]:
        """What the provider saw: requests received and served per window index (as strings, for JSON), refusals."""
        with self._lock:
            return {
                "style": self.limits.style,
                "quota": self.limits.quota,
                "received_per_window": {str(w): n for w, n in sorted(self.received.items())},
                "served_per_window": {str(w): n for w, n in sorted(self._used.items())},
                "refused": self.refused,
            }

    def _bucket(self, t: float) -> Admission:
        limits = self.limits
        if t > self._drained_at:  # answers may be counted out of arrival order (the live upstream's latencies)
            self._level = max(0.0, self._level - (t - self._drained_at) * limits.leak_rate)
            self._drained_at = t
        if self._level + 1 > limits.quota:
            self.refused += 1
            used = f"{math.ceil(self._level)}/{limits.quota}"
            return Admission(429, (("x-shopify-shop-api-call-limit", used), ("retry-after", "2.0")))
        self._level += 1
        self._used[0] += 1
        return Admission(None, (("x-shopify-shop-api-call-limit", f"{math.ceil(self._level)}/{limits.quota}"),))

    def _headers(
        self, status: int | None, left: int, reset: float, secondary: bool, epoch: float
    ) -> tuple[tuple[str, str], ...]:
        limits = self.limits
        seconds = str(max(1, math.ceil(reset)))
        style = limits.style
        if style == "github":
            headers = [
                ("x-ratelimit-limit", str(limits.quota)),
                ("x-ratelimit-remaining", str(left)),
                ("x-ratelimit-used", str(limits.quota - left)),
                ("x-ratelimit-reset", str(math.ceil(epoch))),
                ("x-ratelimit-resource", "core"),
            ]
            if secondary:
                headers.append(("retry-after", str(math.ceil(limits.write_window))))
            return tuple(headers)
        if style == "ietf":
            return (
                ("ratelimit-policy", f'"default";q={limits.quota};w={math.ceil(limits.window)}'),
                ("ratelimit", f'"default";r={left};t={seconds}'),
            )
        if style in ("ietf-legacy", "x-ratelimit"):
            family = "ratelimit" if style == "ietf-legacy" else "x-ratelimit"
            return (
                (f"{family}-limit", str(limits.quota)),
                (f"{family}-remaining", str(left)),
                (f"{family}-reset", seconds),
            )
        if style == "openai":
            headers = [
                ("x-ratelimit-limit-requests", str(limits.quota)),
                ("x-ratelimit-remaining-requests", str(left)),
                ("x-ratelimit-reset-requests", f"{int(reset // 60)}m{reset % 60:.3f}s"),
            ]
            if status is not None:
                headers += [("retry-after-ms", str(math.ceil(reset * 1000))), ("x-should-retry", "true")]
            return tuple(headers)
        if status is None:
            return ()
        return (("retry-after", seconds),)  # slack and stripe: only on the refusal


def paced(reserve: int | None, clock: Clock, name: str) -> QuotaPacer | None:
    """A simulated client's pacer: ``None`` without a ``reserve`` (see ``ClientConfig.quota_reserve``)."""
    return None if reserve is None else QuotaPacer(reserve=reserve, clock=clock, name=name)


def simulated_outcome(
    state: ProviderState, t: float, method: str, outcome: Outcome, pacer: QuotaPacer | None
) -> Outcome:
    """The simulator's side of :meth:`ProviderState.admit`: the provider's answer to a request the scenario
    answered ``outcome`` at scenario time ``t``, its headers read as the HTTP client reads them (the style's profile,
    :func:`~integration_kit.policies.signals.read_signals`) and the quota fed to ``pacer``. Only answers count."""
    if outcome.kind is not OutcomeKind.STATUS:
        return outcome
    admission = state.admit(t, method)
    status = (outcome.status or 200) if admission.status is None else admission.status
    profile = PROFILES.get(state.limits.style)
    reading = DEFAULT_SIGNAL_PROFILE if profile is None else profile.reading
    wall = state.wall + t / state.time_scale
    signals = read_signals(dict(admission.headers), wall, status=status, profile=reading) if admission.headers else None
    if pacer is not None and signals is not None:
        pacer.observe(signals.quota)
    if admission.status is None or signals is None:
        return outcome if admission.status is None else Outcome(OutcomeKind.STATUS, status=status)
    hint = signals.should_retry if signals.should_retry is not None else (True if signals.rate_limited else None)
    error = (
        RateLimited(f"HTTP {status}", status=status, retry_after=signals.retry_after) if signals.rate_limited else None
    )
    return Outcome(OutcomeKind.STATUS, status=status, retry_after=signals.retry_after, error=error, should_retry=hint)
