"""When a WebSocket client reconnects, and after how long: pure, sans-I/O policy code.

The client (:mod:`integration_kit.websocket.client`) and the virtual-time simulator
(:mod:`integration_kit.sim.ws_herd`) both ask these functions, so the simulator's reconnect herd is the one the
client would make. Nothing here sleeps, reads a clock or touches a socket; randomness comes from a seeded
``random.Random`` the caller passes.

Close codes (RFC 6455 section 7.4.1, and the IANA registry for 1012 and 1013) are classified by
:func:`classify_close`:

- 1000 (normal) and 1001 (going away) are **clean**: the stream ends;
- 1006 (abnormal, no close frame), 1011 (internal error), 1012 (service restart) and 1013 (try again later) are
  **reconnect**: the client reconnects after a jittered delay;
- 1003 (unsupported data), 1008 (policy violation) and the application codes 4000-4999 are **permanent**: the
  client stops with an error, since reconnecting would be refused again;
- any other code reconnects (a peer that sends an unknown code is more often broken than hostile).

The user's ``close_codes`` mapping overrides any of these.

The wait before the first reconnect after a drop is drawn from ``uniform(0, first_delay)`` (RFC 6455 section
7.2.3 asks for a random first delay so that clients dropped together do not return together); later handshake
attempts wait the engine's backoff, computed by :func:`~integration_kit.policies.retry.backoff_delay` from
:meth:`ReconnectPolicy.retry_policy`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any

from integration_kit.errors import ConfigurationError
from integration_kit.policies.config import Jitter, RetryPolicy

__all__ = [
    "CloseClass",
    "ReconnectDecision",
    "ReconnectPolicy",
    "classify_close",
    "decide_reconnect",
]


class CloseClass(Enum):
    """What a close code means for the client."""

    CLEAN = "clean"  # the peer ended the stream on purpose: stop without an error
    RECONNECT = "reconnect"  # a fault worth reconnecting after
    PERMANENT = "permanent"  # reconnecting would be refused again: stop with an error


_CLEAN_CODES = frozenset({1000, 1001})
_PERMANENT_CODES = frozenset({1003, 1008})
_JITTERS = ("none", "full", "equal", "decorrelated")


def classify_close(code: int | None, overrides: Mapping[int, CloseClass] | None = None) -> CloseClass:
    """The class of close ``code`` (``None``: the socket died with no close frame, as 1006), after ``overrides``."""
    effective = 1006 if code is None else code
    if overrides and effective in overrides:
        return overrides[effective]
    if effective in _CLEAN_CODES:
        return CloseClass.CLEAN
    if effective in _PERMANENT_CODES or 4000 <= effective <= 4999:
        return CloseClass.PERMANENT
    return CloseClass.RECONNECT


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """How a dropped WebSocket reconnects, in seconds.

    ``first_delay=5.0`` bounds the random wait before the first handshake after a drop: RFC 6455 section 7.2.3's
    example ("a random delay between 0 and 5 seconds"), also the ``websockets`` library's initial delay. Later
    handshake attempts back off from ``base_delay=2.0`` by ``multiplier=2.0`` up to ``max_delay=30.0`` with
    ``jitter="full"`` (AWS Architecture Blog, "Exponential Backoff and Jitter"; the simulated herd of
    :mod:`integration_kit.sim.ws_herd` chose 2 s over 1 s: a lower peak after a restart for the same recovery);
    ``max_attempts=10`` handshake attempts per reconnect before the stream fails (about 4 minutes at the
    defaults). ``close_codes`` maps close codes to a :class:`CloseClass` (or its value, ``"clean"``,
    ``"reconnect"``, ``"permanent"``) over the defaults of :func:`classify_close`.

    Raises :class:`~integration_kit.errors.ConfigurationError` naming the field for a bad value.
    """

    first_delay: float = 5.0
    base_delay: float = 2.0
    max_delay: float = 30.0
    multiplier: float = 2.0
    jitter: Jitter = "full"
    max_attempts: int = 10
    close_codes: Mapping[int, CloseClass] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        for name in ("first_delay", "base_delay", "max_delay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < float("inf"):
                raise ConfigurationError(
                    f"ReconnectPolicy.{name} must be a finite number >= 0, got {value!r}", field=name
                )
        if isinstance(self.multiplier, bool) or not isinstance(self.multiplier, int | float) or self.multiplier < 1:
            raise ConfigurationError(
                f"ReconnectPolicy.multiplier must be a number >= 1, got {self.multiplier!r}", field="multiplier"
            )
        if self.jitter not in _JITTERS:
            raise ConfigurationError(
                f"ReconnectPolicy.jitter must be one of {', '.join(map(repr, _JITTERS))}, got {self.jitter!r}",
                field="jitter",
            )
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ConfigurationError(
                f"ReconnectPolicy.max_attempts must be an integer >= 1, got {self.max_attempts!r}",
                field="max_attempts",
            )
        object.__setattr__(self, "close_codes", MappingProxyType(_close_codes(self.close_codes)))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ReconnectPolicy:
        """Build from a spec's table; an unknown key is a :class:`ConfigurationError` naming it."""
        known = {f for f in cls.__dataclass_fields__}
        for key in values:
            if key not in known:
                raise ConfigurationError(f"reconnect: unknown setting {key!r}", field=str(key))
        return cls(**dict(values))

    def retry_policy(self) -> RetryPolicy:
        """The handshake's :class:`~integration_kit.policies.config.RetryPolicy` for the call engine: this policy's
        backoff and attempts; 408, 429, 500, 502, 503 and 504 retried, a ``Retry-After`` honoured up to 60 s (the
        RetryPolicy default) or ``max_delay`` when longer."""
        return RetryPolicy(
            max_attempts=self.max_attempts,
            base_delay=self.base_delay if self.base_delay > 0 else 1e-3,
            multiplier=self.multiplier,
            max_delay=max(self.max_delay, 1e-3),
            jitter=self.jitter,
            retry_on_status=frozenset({408, 429, 500, 502, 503, 504}),
            max_retry_after=max(60.0, self.max_delay),
        )


def _close_codes(values: object) -> dict[int, CloseClass]:
    if not isinstance(values, Mapping):
        raise ConfigurationError(
            f"ReconnectPolicy.close_codes must be a table of close code = class, got {values!r}", field="close_codes"
        )
    out: dict[int, CloseClass] = {}
    for key, value in dict(values).items():
        try:
            code = int(key)
            if isinstance(key, bool | float):
                raise TypeError(key)
        except (TypeError, ValueError):
            raise ConfigurationError(
                f"ReconnectPolicy.close_codes: {key!r} is not a close code", field="close_codes"
            ) from None
        if not 1000 <= code <= 4999:
            raise ConfigurationError(
                f"ReconnectPolicy.close_codes: {code} is not a close code (1000-4999)", field=f"close_codes.{code}"
            )
        try:
            out[code] = value if isinstance(value, CloseClass) else CloseClass(value)
        except (ValueError, TypeError):
            raise ConfigurationError(
                f"ReconnectPolicy.close_codes.{code} must be 'clean', 'reconnect' or 'permanent', got {value!r}",
                field=f"close_codes.{code}",
            ) from None
    return out


@dataclass(frozen=True, slots=True)
class ReconnectDecision:
    """Whether to reconnect after a close, after how long (seconds), and why (recorded in events)."""

    reconnect: bool
    delay: float
    reason: str


def decide_reconnect(policy: ReconnectPolicy, code: int | None, rng: random.Random) -> ReconnectDecision:
    """What to do after the connection closed with ``code`` (``None``: no close frame).

    A clean close stops (reason ``clean``), a permanent one stops (reason ``permanent``); otherwise the client
    reconnects after ``uniform(0, first_delay)`` seconds (``first_delay`` itself when ``jitter="none"``).
    """
    verdict = classify_close(code, policy.close_codes)
    if verdict is CloseClass.CLEAN:
        return ReconnectDecision(False, 0.0, "clean")
    if verdict is CloseClass.PERMANENT:
        return ReconnectDecision(False, 0.0, "permanent")
    delay = policy.first_delay if policy.jitter == "none" else rng.uniform(0.0, policy.first_delay)
    return ReconnectDecision(True, delay, "close_code")
