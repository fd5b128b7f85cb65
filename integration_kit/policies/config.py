"""Frozen, validated configuration for every resilience policy (the client's own settings are in ``http.config``).

Each dataclass checks itself in ``__post_init__``: a bad value raises :class:`ValueError` naming the field and the
value, so a typo in a spec fails at load time rather than during an outage. Each default says where its figure
comes from.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, fields
from enum import Enum
from typing import Any, Literal, Protocol, TypeVar, get_args

from integration_kit.errors import ConfigurationError
from integration_kit.policies.tables import check_table

__all__ = [
    "IDEMPOTENT_METHODS",
    "BreakerPolicy",
    "BudgetPolicy",
    "Jitter",
    "Limits",
    "PolicySet",
    "RetryPolicy",
    "Timeouts",
    "WindowType",
]

#: RFC 9110 section 9.2.2: methods whose repeated effect equals a single one.
IDEMPOTENT_METHODS: frozenset[str] = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})

Jitter = Literal["none", "full", "equal", "decorrelated"]
WindowType = Literal["count", "time"]

_T = TypeVar("_T")


def _fail(owner: str, name: str, value: object, reason: str) -> ConfigurationError:
    """The error for a bad field: a :class:`ConfigurationError` (a ``ValueError``) naming owner, field and value."""
    return ConfigurationError(f"{owner}.{name} {reason}, got {value!r}", field=name)


def _positive(owner: str, name: str, value: float | None, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise _fail(owner, name, value, "must be a finite number > 0")


def _non_negative(owner: str, name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise _fail(owner, name, value, "must be a finite number >= 0")


def _int_at_least(owner: str, name: str, value: int | None, low: int, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise _fail(owner, name, value, f"must be an integer >= {low}")


def _fraction(owner: str, name: str, value: float | None, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise _fail(owner, name, value, "must be a fraction in (0, 1]")


def _statuses(owner: str, name: str, value: object, low: int = 100) -> frozenset[int]:
    """``value`` as a frozenset of HTTP statuses (``low``-599), else the error naming the field."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Collection):
        raise _fail(owner, name, value, "must be a collection of HTTP statuses")
    for index, status in enumerate(value):
        if isinstance(status, bool) or not isinstance(status, int) or not low <= status <= 599:
            where = f"{name}[{index}]" if isinstance(value, Sequence) else name  # a set has no order to point into
            raise ConfigurationError(f"{owner}.{name} must hold HTTP statuses ({low}-599), got {status!r}", field=where)
    return frozenset(value)


def _choice(owner: str, name: str, value: object, allowed: tuple[object, ...]) -> None:
    if value not in allowed:
        raise _fail(owner, name, value, f"must be one of {', '.join(map(repr, allowed))}")


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Per-attempt timeouts in seconds, one per phase of an HTTP exchange (as in httpx).

    Defaults: ``connect=3.05`` is just over a multiple of 3 s, the TCP SYN retransmission window (the figure the
    requests documentation recommends); ``read=10`` and ``write=10`` bound a stalled peer well under a typical 30 s
    deadline; ``pool=5`` fails fast when every pooled connection is busy. ``None`` disables one phase's timeout,
    which only makes sense when a deadline bounds the whole call.
    """

    connect: float | None = 3.05
    read: float | None = 10.0
    write: float | None = 10.0
    pool: float | None = 5.0

    def __post_init__(self) -> None:
        for f in fields(self):
            _positive("Timeouts", f.name, getattr(self, f.name), allow_none=True)

    @classmethod
    def coerce(cls, value: Timeouts | float | Mapping[str, float | None] | None) -> Timeouts:
        """Build from a Timeouts, one float for all four phases, or a mapping of phase names to seconds."""
        if isinstance(value, Timeouts):
            return value
        if value is None:
            return cls()
        if isinstance(value, Mapping):
            values = _known_keys(cls, value)
            check_table(cls, values)
            return cls(**values)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            v = float(value)
            return cls(connect=v, read=v, write=v, pool=v)
        raise ConfigurationError(f"Timeouts: expected a number, a mapping or Timeouts, got {type(value).__name__}")

    @property
    def longest(self) -> float | None:
        """The largest phase timeout, or ``None`` when any phase is unbounded."""
        values = (self.connect, self.read, self.write, self.pool)
        if any(v is None for v in values):
            return None
        return max(v for v in values if v is not None)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to retry a failed attempt, and how long to wait first.

    Defaults: ``max_attempts=3`` (the AWS SDKs' "standard" retry mode); exponential backoff from ``base_delay=0.2``
    doubling (``multiplier=2``) up to ``max_delay=20`` s (the AWS SDKs' cap) with ``jitter="full"``, which the AWS
    Architecture Blog ("Exponential Backoff and Jitter") shows sends the least total work under contention;
    ``retry_on_status`` holds the statuses that are transient by definition (408, 429, 500, 502, 503, 504);
    ``Retry-After`` is honoured up to ``max_retry_after=60`` s: a request is never sent before the partner's
    hint, so a longer hint (or one past the deadline) ends the call at once with
    :class:`~integration_kit.errors.RateLimited` carrying ``retry_after``, for the caller to schedule.
    """

    max_attempts: int = 3
    base_delay: float = 0.2
    multiplier: float = 2.0
    max_delay: float = 20.0
    jitter: Jitter = "full"
    retry_on_status: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504})
    respect_retry_after: bool = True
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        _int_at_least("RetryPolicy", "max_attempts", self.max_attempts, 1)
        _non_negative("RetryPolicy", "base_delay", self.base_delay)
        if (
            isinstance(self.multiplier, bool)
            or not isinstance(self.multiplier, (int, float))
            or not (math.isfinite(self.multiplier) and self.multiplier >= 1)
        ):
            raise _fail("RetryPolicy", "multiplier", self.multiplier, "must be a finite number >= 1")
        _non_negative("RetryPolicy", "max_delay", self.max_delay)
        if self.max_delay < self.base_delay:
            raise _fail("RetryPolicy", "max_delay", self.max_delay, f"must be >= base_delay ({self.base_delay!r})")
        _choice("RetryPolicy", "jitter", self.jitter, get_args(Jitter))
        object.__setattr__(self, "retry_on_status", _statuses("RetryPolicy", "retry_on_status", self.retry_on_status))
        if not isinstance(self.respect_retry_after, bool):
            raise _fail("RetryPolicy", "respect_retry_after", self.respect_retry_after, "must be a bool")
        _non_negative("RetryPolicy", "max_retry_after", self.max_retry_after)

    @classmethod
    def disabled(cls) -> RetryPolicy:
        """A policy that never retries (one attempt)."""
        return cls(max_attempts=1)


@dataclass(frozen=True, slots=True)
class BudgetPolicy:
    """A client-wide retry budget, with the semantics of gRPC's retry throttling (proposal A6).

    Every failed attempt costs one token, every success gives back ``token_ratio``; retries are allowed only while
    the bucket holds more than half of ``max_tokens``. The bucket drifts down exactly when more than
    ``token_ratio / (1 + token_ratio)`` of attempts fail, so that fraction is the failure rate at which retries stop.

    Defaults ``max_tokens=100``, ``token_ratio=0.5`` (retries stop above 1/3 of attempts failing, after 50
    failures more than successes can repay) were chosen in the simulator (``bench/defaults.py``; the table is in
    ``docs/defaults.md``) to win both ways: a random 30 % brownout keeps its retries (>= 97 % success at <= 1.5
    attempts per call), while an outage or a retry storm, where nearly every attempt fails, stops them within
    about 50 failures. gRPC A6's example figures (``max_tokens=10``, ``token_ratio=0.1``: retries stop above 9 %
    failures, and a bucket of 10 drains on chance runs) lost a fifth of the calls in that brownout; pass them
    explicitly to get A6's example behaviour.
    """

    max_tokens: float = 100.0
    token_ratio: float = 0.5
    enabled: bool = True

    def __post_init__(self) -> None:
        _positive("BudgetPolicy", "max_tokens", self.max_tokens)
        if self.max_tokens > 1000:
            raise _fail("BudgetPolicy", "max_tokens", self.max_tokens, "must be <= 1000 (gRPC A6 bound)")
        _positive("BudgetPolicy", "token_ratio", self.token_ratio)
        if not isinstance(self.enabled, bool):
            raise _fail("BudgetPolicy", "enabled", self.enabled, "must be a bool")


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When a circuit breaker opens, how long it stays open, and how it probes before closing.

    Modes: the classic one opens on ``failure_threshold`` consecutive failures (pybreaker's ``fail_max``); the
    rate one opens when at least ``failure_rate_threshold`` of the calls in a sliding window failed, once
    ``minimum_calls`` are in the window; a slow-call rate (calls over ``slow_call_duration``) opens it too. Any mode
    that is set applies.

    Defaults follow resilience4j (``failureRateThreshold`` 50 %, count-based window) except ``window_size=200``
    (resilience4j: 100; in the simulator a window of 100 attempts now and then reaches 50 % failures by chance in a
    random 30 % brownout at 100 calls/s, and the breaker then flaps for the rest of the brownout; with 200 that
    takes a 6-sigma run, see ``docs/defaults.md``), ``minimum_calls=20`` (resilience4j: 100; so a
    low-traffic integration can trip at all), ``wait_in_open=30`` s
    (resilience4j: 60 s, Hystrix: 5 s; a partner outage rarely heals faster) and ``half_open_max_calls=3``
    (resilience4j: 10; fewer probes hit a recovering partner). ``wait_in_open`` grows by
    ``wait_in_open_multiplier`` on each consecutive re-trip, capped at ``max_wait_in_open``.

    ``ignore_statuses`` (HTTP statuses, 400-599) are left out of the window: an attempt answered with one counts
    neither as a failure nor as a success, and a probe answered with one frees its slot (resilience4j's
    ``ignoreExceptions``). ``[429]`` keeps a partner's throttling from opening the breaker: a 429 says the partner
    is up and asks us to wait, which ``Retry-After`` and the retry budget already do. Default: empty, so every
    transient status counts as a failure, as before; a throttling partner then needs a ``failure_rate_threshold``
    above its 429 rate.
    """

    failure_threshold: int | None = None
    failure_rate_threshold: float | None = 0.5
    window_type: WindowType = "count"
    window_size: int = 200
    minimum_calls: int = 20
    slow_call_duration: float | None = None
    slow_call_rate_threshold: float = 1.0
    wait_in_open: float = 30.0
    wait_in_open_multiplier: float = 1.0
    max_wait_in_open: float = 300.0
    half_open_max_calls: int = 3
    ignore_statuses: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        owner = "BreakerPolicy"
        object.__setattr__(self, "ignore_statuses", _statuses(owner, "ignore_statuses", self.ignore_statuses, 400))
        _int_at_least(owner, "failure_threshold", self.failure_threshold, 1, allow_none=True)
        _fraction(owner, "failure_rate_threshold", self.failure_rate_threshold, allow_none=True)
        _choice(owner, "window_type", self.window_type, get_args(WindowType))
        _int_at_least(owner, "window_size", self.window_size, 1)
        if self.window_type == "time" and self.window_size > 3600:
            raise _fail(owner, "window_size", self.window_size, "must be <= 3600 seconds for a time window")
        _int_at_least(owner, "minimum_calls", self.minimum_calls, 1)
        _positive(owner, "slow_call_duration", self.slow_call_duration, allow_none=True)
        _fraction(owner, "slow_call_rate_threshold", self.slow_call_rate_threshold)
        _positive(owner, "wait_in_open", self.wait_in_open)
        if (
            isinstance(self.wait_in_open_multiplier, bool)
            or not isinstance(self.wait_in_open_multiplier, (int, float))
            or not (math.isfinite(self.wait_in_open_multiplier) and self.wait_in_open_multiplier >= 1)
        ):
            raise _fail(owner, "wait_in_open_multiplier", self.wait_in_open_multiplier, "must be a number >= 1")
        _positive(owner, "max_wait_in_open", self.max_wait_in_open)
        if self.max_wait_in_open < self.wait_in_open:
            raise _fail(owner, "max_wait_in_open", self.max_wait_in_open, "must be >= wait_in_open")
        _int_at_least(owner, "half_open_max_calls", self.half_open_max_calls, 1)
        if self.failure_threshold is None and self.failure_rate_threshold is None and self.slow_call_duration is None:
            raise ConfigurationError(
                "BreakerPolicy needs a trip condition: set failure_threshold, failure_rate_threshold "
                "or slow_call_duration"
            )


@dataclass(frozen=True, slots=True)
class Limits:
    """Client-side limits: a bulkhead (concurrent calls) and a token-bucket rate limiter.

    Both are off by default (``None``): they protect the partner's quota or our own threads, and only the
    integration knows those figures. ``max_wait`` is how long a call may queue for a slot or a token before it is
    rejected; 0 rejects at once, which keeps latency bounded (the bulkhead pattern of resilience4j, whose
    ``maxWaitDuration`` defaults to 0).
    """

    max_concurrent: int | None = None
    rate: float | None = None
    burst: int | None = None
    max_wait: float = 0.0

    def __post_init__(self) -> None:
        _int_at_least("Limits", "max_concurrent", self.max_concurrent, 1, allow_none=True)
        _positive("Limits", "rate", self.rate, allow_none=True)
        _int_at_least("Limits", "burst", self.burst, 1, allow_none=True)
        _non_negative("Limits", "max_wait", self.max_wait)


def _known_keys(cls: type[Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """Keep a mapping's keys if each names a field of ``cls``; otherwise raise a ValueError naming the stranger."""
    names = {f.name for f in fields(cls)}
    unknown = sorted(str(key) for key in values if key not in names)
    if unknown:
        raise ConfigurationError(
            f"{cls.__name__}: unknown field(s) {', '.join(unknown)}; expected {', '.join(sorted(names))}",
            field=unknown[0],
        )
    return dict(values)


def build(cls: type[_T], values: Mapping[str, Any] | _T | None, *, field: str | None = None) -> _T:
    """Build a policy dataclass from a mapping (unknown keys are an error), pass an instance through, or default.

    Raises :class:`ConfigurationError` naming ``field`` (default: the class) for anything else, and for a value of
    the wrong type at any depth (:func:`~integration_kit.policies.tables.check_table`).
    """
    if values is None:
        return cls()
    if isinstance(values, cls):
        return values
    if not isinstance(values, Mapping):
        raise ConfigurationError(
            f"{field or cls.__name__}: expected a mapping or a {cls.__name__}, got {type(values).__name__}"
        )
    known = _known_keys(cls, values)
    check_table(cls, known)
    return cls(**known)


class _Unset(Enum):
    """Sentinel type telling "not passed" from ``None`` (httpx's ``UseClientDefault``)."""

    UNSET = "UNSET"


UNSET = _Unset.UNSET
Unset = Literal[_Unset.UNSET]


class PolicySet(Protocol):
    """Anything that carries one integration's policies, such as a client's ``ClientConfig``.

    The simulator and the playbook take one of these, so they run exactly a client's settings without importing
    the HTTP layer.
    """

    @property
    def name(self) -> str: ...
    @property
    def timeouts(self) -> Timeouts: ...
    @property
    def retry(self) -> RetryPolicy: ...
    @property
    def budget(self) -> BudgetPolicy | None: ...
    @property
    def breaker(self) -> BreakerPolicy | None: ...
    @property
    def limits(self) -> Limits | None: ...
    @property
    def deadline(self) -> float | None: ...
    @property
    def idempotency_methods(self) -> Collection[str]: ...
