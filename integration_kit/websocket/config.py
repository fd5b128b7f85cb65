"""The settings of one WebSocket feed: :class:`WebSocketConfig`, frozen and checked when built.

A bad value raises :class:`~integration_kit.errors.ConfigurationError` naming the field and what was written, so a
typo fails at start-up rather than during an outage. Credentials are held by *name* (an environment variable read
at every handshake, through :mod:`integration_kit.http.auth`) or built by a callable at every handshake (a
short-lived token); neither is ever kept in the config's repr.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Literal
from urllib.parse import urlsplit

from integration_kit.errors import ConfigurationError
from integration_kit.http.auth import Auth
from integration_kit.http.config import is_loopback
from integration_kit.http.redact import redact_url
from integration_kit.policies.config import BreakerPolicy, BudgetPolicy
from integration_kit.websocket.reconnect import ReconnectPolicy

__all__ = ["Message", "OutgoingMode", "SequenceOf", "WebSocketConfig"]

Message = str | bytes
"""A WebSocket message: text (``str``) or binary (``bytes``), as in ``websockets``."""

OutgoingMode = Literal["wait", "fail"]
"""What :meth:`~integration_kit.websocket.ResilientWebSocket.send` does when the outgoing queue is full while
disconnected: wait for room (``"wait"``) or raise :class:`~integration_kit.websocket.OutgoingQueueFull`."""

SequenceOf = Callable[[Message], int | None]
"""Reads a message's sequence number (``None``: the message carries none, such as a heartbeat)."""


@dataclass(frozen=True, slots=True)
class WebSocketConfig:
    """One WebSocket feed's settings; times in seconds.

    - ``url``: ``wss://`` (``ws://`` only to a loopback host, or with ``allow_insecure=True``, never in production).
    - ``auth``: a :mod:`~integration_kit.http.auth` setting naming environment variables, read at every handshake;
      ``credentials``: a callable returning headers, called at every handshake (a fresh short-lived token). Both
      values are masked wherever the client reports.
    - ``ping_interval=20`` and ``ping_timeout=20``: the ``websockets`` library's defaults; a missing pong closes
      the connection (1011) and the client reconnects. ``None`` switches keepalive off.
    - ``stale_after``: no message for this long on an open socket means it is dead (a feed that should be live):
      the client closes it and reconnects. ``None`` (the default): no staleness check, as ``websockets``.
    - ``open_timeout=10`` and ``close_timeout=10``: the ``websockets`` defaults for the handshake and the close.
    - ``reconnect``: the :class:`~integration_kit.websocket.reconnect.ReconnectPolicy`; ``breaker`` and ``budget``
      guard the handshakes (``None``: none).
    - ``subscribe``: messages sent after every handshake; ``resume``: builds a message from the last sequence
      number delivered, sent after a reconnect before the subscriptions (``None``: the partner cannot resume).
    - ``sequence``: the name of a top-level field of JSON messages holding the sequence number, or a callable
      (:data:`SequenceOf`); ``None``: no gap or duplicate detection.
    - ``outgoing_limit=1000``: the bound of the queue of messages sent while disconnected; ``outgoing``: when it is
      full, ``"wait"`` (the default) or ``"fail"``.
    - ``max_size=2**20``: the largest incoming message in bytes (the ``websockets`` default).
    - ``secret_query_params``: more query parameter names to mask in ``url`` (beyond the usual ``token``, ``key``).
    """

    url: str
    name: str = "websocket"
    auth: Auth | None = None
    credentials: Callable[[], Mapping[str, str]] | None = field(default=None, repr=False)
    allow_insecure: bool = False
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    stale_after: float | None = None
    open_timeout: float = 10.0
    close_timeout: float = 10.0
    reconnect: ReconnectPolicy = field(default_factory=ReconnectPolicy)
    breaker: BreakerPolicy | None = None
    budget: BudgetPolicy | None = None
    subscribe: tuple[Message, ...] = ()
    resume: Callable[[int], Message | None] | None = field(default=None, repr=False)
    sequence: str | SequenceOf | None = None
    outgoing_limit: int = 1000
    outgoing: OutgoingMode = "wait"
    max_size: int | None = 2**20
    secret_query_params: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_url(self.url, self.allow_insecure, self.secret_query_params)
        if not isinstance(self.name, str) or not self.name:
            raise ConfigurationError(
                f"WebSocketConfig.name must be a non-empty string, got {self.name!r}", field="name"
            )
        for name in ("ping_interval", "ping_timeout", "stale_after"):
            _positive(name, getattr(self, name), allow_none=True)
        for name in ("open_timeout", "close_timeout"):
            _positive(name, getattr(self, name), allow_none=False)
        if isinstance(self.outgoing_limit, bool) or not isinstance(self.outgoing_limit, int) or self.outgoing_limit < 1:
            raise ConfigurationError(
                f"WebSocketConfig.outgoing_limit must be an integer >= 1, got {self.outgoing_limit!r}",
                field="outgoing_limit",
            )
        if self.outgoing not in ("wait", "fail"):
            raise ConfigurationError(
                f"WebSocketConfig.outgoing must be 'wait' or 'fail', got {self.outgoing!r}", field="outgoing"
            )
        if not isinstance(self.reconnect, ReconnectPolicy):
            raise ConfigurationError("WebSocketConfig.reconnect must be a ReconnectPolicy", field="reconnect")
        if isinstance(self.sequence, str) and not self.sequence:
            raise ConfigurationError("WebSocketConfig.sequence must name a field", field="sequence")
        if not all(isinstance(m, str | bytes) for m in self.subscribe):
            raise ConfigurationError("WebSocketConfig.subscribe must hold str or bytes messages", field="subscribe")
        object.__setattr__(self, "subscribe", tuple(self.subscribe))
        object.__setattr__(self, "secret_query_params", tuple(self.secret_query_params))

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}={self.shown_url if f.name == 'url' else getattr(self, f.name)!r}" for f in fields(self) if f.repr
        )
        return f"WebSocketConfig({shown})"

    @property
    def shown_url(self) -> str:
        """``url`` with its userinfo removed and secret-looking query values masked: what events and errors show."""
        return redact_url(self.url, self.secret_query_params)


def _positive(name: str, value: object, *, allow_none: bool) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ConfigurationError(f"WebSocketConfig.{name} must be a finite number > 0, got {value!r}", field=name)


def _check_url(url: object, allow_insecure: bool, secret_query_params: Iterable[str]) -> None:
    if not isinstance(url, str):
        raise ConfigurationError(f"WebSocketConfig.url must be a string, got {type(url).__name__}", field="url")
    parts = urlsplit(url)
    shown = redact_url(url, secret_query_params)  # the user's own secret names too, as shown_url
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ConfigurationError(f"WebSocketConfig.url must be ws:// or wss:// with a host, got {shown!r}", field="url")
    if parts.scheme == "ws" and not allow_insecure and not is_loopback(parts.hostname):
        raise ConfigurationError(
            f"{shown!r} is plain ws:// to a non-loopback host; use wss:// "
            "(or set allow_insecure=True, never in production)",
            field="url",
        )
