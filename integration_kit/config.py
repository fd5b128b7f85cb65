"""Frozen, validated configuration for every resilience policy.

Each dataclass checks itself in ``__post_init__``: a bad value raises :class:`ValueError` naming the field and the
value, so a typo in a spec fails at load time rather than during an outage. Each default says where its figure
comes from.
"""

from __future__ import annotations

import ipaddress
import math
import os
import ssl
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from enum import Enum
from types import MappingProxyType
from typing import Any, Literal, TypeVar, get_args
from urllib.parse import urlsplit

from integration_kit.auth import Auth, auth_from_mapping
from integration_kit.errors import ConfigurationError

__all__ = [
    "IDEMPOTENT_METHODS",
    "BreakerPolicy",
    "BudgetPolicy",
    "ClientConfig",
    "Jitter",
    "Limits",
    "RetryPolicy",
    "Timeouts",
    "WindowType",
]

#: RFC 9110 section 9.2.2: methods whose repeated effect equals a single one.
IDEMPOTENT_METHODS: frozenset[str] = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})

Jitter = Literal["none", "full", "equal", "decorrelated"]
WindowType = Literal["count", "time"]

_T = TypeVar("_T")


def _fail(owner: str, name: str, value: object, reason: str) -> ValueError:
    return ValueError(f"{owner}.{name} {reason}, got {value!r}")


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
            return cls(**_known_keys(cls, value))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            v = float(value)
            return cls(connect=v, read=v, write=v, pool=v)
        raise TypeError(f"Timeouts: expected a number, a mapping or Timeouts, got {type(value).__name__}")

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
    ``Retry-After`` is honoured up to ``max_retry_after=60`` s, and a longer hint ends the call instead of
    parking it.
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
        statuses = frozenset(self.retry_on_status)
        for status in statuses:
            if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
                raise _fail("RetryPolicy", "retry_on_status", status, "must hold HTTP statuses (100-599)")
        object.__setattr__(self, "retry_on_status", statuses)
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
    the bucket holds more than half of ``max_tokens``. Defaults ``max_tokens=10``, ``token_ratio=0.1`` are the
    figures in gRPC A6's example service config: once failures dominate, retries stop until about five
    successes per missing token have refilled the bucket, so retries cannot amplify an outage.
    """

    max_tokens: float = 10.0
    token_ratio: float = 0.1
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

    Defaults follow resilience4j (``failureRateThreshold`` 50 %, ``slidingWindowSize`` 100, count-based) except
    ``minimum_calls=20`` (resilience4j: 100; so a low-traffic integration can trip at all), ``wait_in_open=30`` s
    (resilience4j: 60 s, Hystrix: 5 s; a partner outage rarely heals faster) and ``half_open_max_calls=3``
    (resilience4j: 10; fewer probes hit a recovering partner). ``wait_in_open`` grows by
    ``wait_in_open_multiplier`` on each consecutive re-trip, capped at ``max_wait_in_open``.
    """

    failure_threshold: int | None = None
    failure_rate_threshold: float | None = 0.5
    window_type: WindowType = "count"
    window_size: int = 100
    minimum_calls: int = 20
    slow_call_duration: float | None = None
    slow_call_rate_threshold: float = 1.0
    wait_in_open: float = 30.0
    wait_in_open_multiplier: float = 1.0
    max_wait_in_open: float = 300.0
    half_open_max_calls: int = 3

    def __post_init__(self) -> None:
        owner = "BreakerPolicy"
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
            raise ValueError(
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
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown field(s) {', '.join(unknown)}; expected {', '.join(sorted(names))}")
    return dict(values)


def build(cls: type[_T], values: Mapping[str, Any] | _T | None) -> _T:
    """Build a policy dataclass from a mapping (unknown keys are an error), pass an instance through, or default."""
    if values is None:
        return cls()
    if isinstance(values, cls):
        return values
    if not isinstance(values, Mapping):
        raise TypeError(f"{cls.__name__}: expected a mapping, got {type(values).__name__}")
    data = _known_keys(cls, values)
    if cls is RetryPolicy and "retry_on_status" in data:
        data["retry_on_status"] = frozenset(data["retry_on_status"])
    return cls(**data)


class _Unset(Enum):
    """Sentinel type telling "not passed" from ``None`` (httpx's ``UseClientDefault``)."""

    UNSET = "UNSET"


UNSET = _Unset.UNSET
Unset = Literal[_Unset.UNSET]


#: Default ``ClientConfig.max_response_bytes``: 10 MiB, far above a typical JSON API answer, far below memory.
DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an IP literal, brackets allowed) is this machine's loopback interface."""
    host = host.strip("[]").lower()
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Everything one integration's client needs, validated at construction; never holds a secret.

    ``base_url`` pins the origin: every request goes to it, and ``http://`` is refused for any host but loopback
    unless ``allow_insecure_http``. ``timeouts`` bound each phase of one attempt (a float, a mapping or a
    :class:`Timeouts` is accepted and coerced); ``deadline`` bounds the whole logical call, retries and waits
    included (``None``: no deadline). ``breaker`` and ``budget`` may be ``None`` to switch them off. ``auth`` holds
    only the *names* of environment variables, read once when a client is built. Credential headers are refused in
    ``headers``: give them through ``auth``. ``idempotency_methods`` lists the methods that get a generated
    ``Idempotency-Key`` on each logical call (for example ``{"POST", "PATCH"}``), which also makes them safe to
    retry. ``redact_query_params`` adds names to the secret-looking query parameters masked in events, logs and
    errors. ``verify`` is ``True`` (system CAs), ``False`` (only for tests), or the path of a CA bundle.
    """

    name: str
    base_url: str
    timeouts: Timeouts = Timeouts()
    deadline: float | None = 30.0
    retry: RetryPolicy = RetryPolicy()
    breaker: BreakerPolicy | None = BreakerPolicy()
    budget: BudgetPolicy | None = BudgetPolicy()
    limits: Limits = Limits()
    auth: Auth | None = None
    headers: Mapping[str, str] = field(default_factory=dict, hash=False)
    user_agent: str | None = None
    max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES
    follow_redirects: bool = False
    verify: bool | str = True
    allow_insecure_http: bool = False
    idempotency_methods: frozenset[str] = frozenset()
    redact_query_params: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        with _configuration_errors():
            self._validate()

    def _validate(self) -> None:
        owner = "ClientConfig"
        if not isinstance(self.name, str) or not self.name or not self.name.isprintable() or " " in self.name:
            raise ConfigurationError(f"{owner}.name must be a non-empty name without spaces, got {self.name!r}")
        object.__setattr__(self, "timeouts", Timeouts.coerce(self.timeouts))
        _positive(owner, "deadline", self.deadline, allow_none=True)
        policies: tuple[tuple[str, type, bool], ...] = (
            ("retry", RetryPolicy, False),
            ("limits", Limits, False),
            ("breaker", BreakerPolicy, True),
            ("budget", BudgetPolicy, True),
        )
        for name, cls, optional in policies:
            value = getattr(self, name)
            if not isinstance(value, cls) and not (optional and value is None):
                raise ConfigurationError(
                    f"{owner}.{name} must be a {cls.__name__}{' or None' if optional else ''}, got "
                    f"{type(value).__name__} (ClientConfig.from_mapping builds policies from mappings)"
                )
        object.__setattr__(self, "auth", auth_from_mapping(self.auth))
        _int_at_least(owner, "max_response_bytes", self.max_response_bytes, 1, allow_none=True)
        for name in ("follow_redirects", "allow_insecure_http"):
            if not isinstance(getattr(self, name), bool):
                raise _fail(owner, name, getattr(self, name), "must be a bool")
        self._check_base_url()
        self._check_headers()
        self._check_verify()
        methods = frozenset(_token(owner, "idempotency_methods", m).upper() for m in _strings(self.idempotency_methods))
        object.__setattr__(self, "idempotency_methods", methods)
        params = frozenset(p.lower() for p in _strings(self.redact_query_params))
        object.__setattr__(self, "redact_query_params", params)

    def _check_base_url(self) -> None:
        from integration_kit.redact import redact_url

        url = self.base_url
        if not isinstance(url, str):
            raise ConfigurationError(f"ClientConfig.base_url must be a string, got {type(url).__name__}")
        shown = redact_url(url)
        try:
            parts = urlsplit(url)
            host = parts.hostname
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError:
            raise ConfigurationError(f"ClientConfig.base_url is not a valid URL: {shown!r}") from None
        if parts.scheme not in ("http", "https") or not host:
            raise ConfigurationError(f"ClientConfig.base_url must be an absolute http(s) URL, got {shown!r}")
        if parts.username is not None or parts.password is not None:
            raise ConfigurationError(
                f"ClientConfig.base_url must not hold credentials ({shown!r}): name an env var in auth= instead"
            )
        if parts.query or parts.fragment:
            raise ConfigurationError(f"ClientConfig.base_url must not have a query or fragment, got {shown!r}")
        if parts.scheme == "http" and not self.allow_insecure_http and not is_loopback(host):
            raise ConfigurationError(
                f"ClientConfig.base_url {shown!r} is plain http:// to a non-loopback host; use https:// "
                "(or set allow_insecure_http=True, never in production)"
            )

    def _check_headers(self) -> None:
        from integration_kit.redact import SECRET_HEADERS

        if not isinstance(self.headers, Mapping):
            raise ConfigurationError(f"ClientConfig.headers must be a mapping, got {type(self.headers).__name__}")
        headers = dict(self.headers)
        if self.user_agent is not None:
            headers.setdefault("User-Agent", self.user_agent)
        for name, value in headers.items():
            _token("ClientConfig", "headers", name)
            if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
                raise ConfigurationError(f"ClientConfig.headers[{name!r}] must be a str without CR, LF or NUL")
            if name.lower() in SECRET_HEADERS:
                raise ConfigurationError(
                    f"ClientConfig.headers[{name!r}] is a credential header: name an env var in auth= instead"
                )
        object.__setattr__(self, "headers", MappingProxyType(dict(self.headers)))

    def _check_verify(self) -> None:
        verify = self.verify
        if isinstance(verify, bool):
            return
        if not isinstance(verify, str) or not os.path.exists(verify):
            raise ConfigurationError(f"ClientConfig.verify must be a bool or the path of a CA bundle, got {verify!r}")

    @property
    def origin(self) -> tuple[str, str, int]:
        """The (scheme, host, port) every request of this integration goes to."""
        parts = urlsplit(self.base_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return parts.scheme, (parts.hostname or "").lower(), port

    def ssl_context(self) -> ssl.SSLContext | bool:
        """What to give httpx as ``verify``: ``True``/``False``, or a context trusting the configured CA bundle."""
        if isinstance(self.verify, bool):
            return self.verify
        if os.path.isdir(self.verify):
            return ssl.create_default_context(capath=self.verify)
        return ssl.create_default_context(cafile=self.verify)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ClientConfig:
        """Build from a spec's table: nested policies may be mappings (built with :func:`build`).

        ``breaker`` and ``budget`` may be ``False`` or ``None`` (off) or ``True`` (defaults); ``auth`` is a mapping
        with a ``type`` of ``"bearer"``, ``"header"`` or ``"basic"`` and the names of its environment variables.
        """
        with _configuration_errors():
            data = _known_keys(cls, values)
            if "timeouts" in data:
                data["timeouts"] = Timeouts.coerce(data["timeouts"])
            for name, policy in (("retry", RetryPolicy), ("limits", Limits)):
                if name in data:
                    data[name] = build(policy, data[name])
            for name, switchable in (("breaker", BreakerPolicy), ("budget", BudgetPolicy)):
                if name in data:
                    value = data[name]
                    data[name] = None if value in (None, False) else build(switchable, None if value is True else value)
            if "auth" in data:
                data["auth"] = auth_from_mapping(data["auth"])
            for name in ("idempotency_methods", "redact_query_params"):
                if name in data:
                    data[name] = frozenset(_strings(data[name]))
            return cls(**data)

    @classmethod
    def from_env(cls, prefix: str, *, environ: Mapping[str, str] | None = None, **values: Any) -> ClientConfig:
        """Build from ``values`` (as :meth:`from_mapping`), overridden by ``{PREFIX}_*`` environment variables.

        Read: ``_BASE_URL``; ``_TIMEOUT`` (all four phases) and ``_CONNECT_TIMEOUT``, ``_READ_TIMEOUT``,
        ``_WRITE_TIMEOUT``, ``_POOL_TIMEOUT``; ``_DEADLINE`` (seconds, or ``none``); ``_MAX_ATTEMPTS``. ``name``
        defaults to the prefix in lower case. A malformed value is a :class:`ConfigurationError` naming the variable.
        """
        env = os.environ if environ is None else environ
        stem = prefix.upper().rstrip("_")
        if not stem:
            raise ConfigurationError("ClientConfig.from_env: the prefix must not be empty")
        data = dict(values)
        data.setdefault("name", stem.lower())
        if base_url := env.get(f"{stem}_BASE_URL"):
            data["base_url"] = base_url
        timeouts = Timeouts.coerce(data.get("timeouts"))
        if (all_phases := _env_number(env, f"{stem}_TIMEOUT", float)) is not None:
            timeouts = Timeouts.coerce(all_phases)
        phases = {
            phase: value
            for phase in ("connect", "read", "write", "pool")
            if (value := _env_number(env, f"{stem}_{phase.upper()}_TIMEOUT", float)) is not None
        }
        data["timeouts"] = Timeouts.coerce({**{f.name: getattr(timeouts, f.name) for f in fields(timeouts)}, **phases})
        deadline_name = f"{stem}_DEADLINE"
        if env.get(deadline_name, "").strip().lower() in ("none", "off"):
            data["deadline"] = None
        elif (deadline := _env_number(env, deadline_name, float)) is not None:
            data["deadline"] = deadline
        if (attempts := _env_number(env, f"{stem}_MAX_ATTEMPTS", int)) is not None:
            retry = build(RetryPolicy, data.get("retry"))
            data["retry"] = {**{f.name: getattr(retry, f.name) for f in fields(retry)}, "max_attempts": attempts}
        return cls.from_mapping(data)


@contextmanager
def _configuration_errors() -> Iterator[None]:
    """Re-raise a policy's ValueError as the ConfigurationError a client's settings promise."""
    try:
        yield
    except ConfigurationError:
        raise
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


def _env_number(env: Mapping[str, str], name: str, kind: type[float] | type[int]) -> Any:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return None
    try:
        return kind(raw.strip())
    except ValueError:
        raise ConfigurationError(f"environment variable {name!r} must be a number, got {raw!r}") from None


def _strings(values: object) -> list[str]:
    if isinstance(values, str) or not isinstance(values, Collection):
        raise ConfigurationError(f"expected a collection of strings, got {values!r}")
    if not all(isinstance(v, str) for v in values):
        raise ConfigurationError(f"expected a collection of strings, got {values!r}")
    return list(values)


def _token(owner: str, name: str, value: str) -> str:
    if not value or not all(c.isalnum() or c in "!#$%&'*+-.^_`|~" for c in value) or not value.isascii():
        raise ConfigurationError(f"{owner}.{name}: {value!r} is not an HTTP token")
    return value
