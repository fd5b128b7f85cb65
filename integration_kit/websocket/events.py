"""The events of a WebSocket stream, emitted to the same hooks as the call's events (:mod:`integration_kit.events`).

The handshake itself is a call of the engine (method ``CONNECT``), so each handshake attempt also has the
engine's ``attempt_started`` / ``attempt_finished`` events and its breaker and budget events. ``call_id`` is 0
(these are not a call's); ``connection`` counts the stream's connections from 1. ``url`` is always redacted. A
:class:`~integration_kit.events.Recorder` keeps them and its frame has their columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from integration_kit._slots import fast_frozen_init
from integration_kit.events import Event

__all__ = [
    "WsClosed",
    "WsConnectAttempt",
    "WsConnected",
    "WsDisconnected",
    "WsDuplicate",
    "WsEvent",
    "WsGap",
    "WsMessage",
    "WsReconnectScheduled",
    "WsResync",
    "WsStale",
]


@dataclass(frozen=True, slots=True)
class WsEvent(Event):
    """Fields of every WebSocket event: the stream's ``connection`` number (1 for the first)."""

    kind: ClassVar[str] = "ws"
    connection: int


@dataclass(frozen=True, slots=True)
class WsConnectAttempt(WsEvent):
    """A handshake attempt to the redacted ``url`` is starting (``attempt``: 1 for the first of this connection)."""

    kind: ClassVar[str] = "ws_connect_attempt"
    url: str
    attempt: int


@dataclass(frozen=True, slots=True)
class WsConnected(WsEvent):
    """The handshake succeeded after ``attempts`` attempts, ``down_for`` seconds after the last disconnect (0 at
    first)."""

    kind: ClassVar[str] = "ws_connected"
    url: str
    attempts: int
    down_for: float


@dataclass(frozen=True, slots=True)
class WsDisconnected(WsEvent):
    """The connection closed with ``code`` (``None``: no close frame) and ``reason``, judged ``verdict``
    (``clean``, ``reconnect`` or ``permanent``, or ``stale`` when the client closed a silent socket)."""

    kind: ClassVar[str] = "ws_disconnected"
    code: int | None
    reason: str
    verdict: str
    up_for: float


@dataclass(frozen=True, slots=True)
class WsClosed(WsEvent):
    """The user closed the open connection (:meth:`~integration_kit.websocket.ResilientWebSocket.close`) with
    ``code`` after it was up ``up_for`` seconds; the stream has ended."""

    kind: ClassVar[str] = "ws_closed"
    code: int
    up_for: float


@dataclass(frozen=True, slots=True)
class WsReconnectScheduled(WsEvent):
    """The client will start a handshake in ``delay`` seconds, for ``reason``."""

    kind: ClassVar[str] = "ws_reconnect_scheduled"
    delay: float
    reason: str


@dataclass(frozen=True, slots=True)
class WsMessage(WsEvent):
    """A message was delivered to the user: its sequence number (``None`` without a sequence field) and size in
    bytes (characters for text)."""

    kind: ClassVar[str] = "ws_message"
    seq: int | None
    size: int


@dataclass(frozen=True, slots=True)
class WsGap(WsEvent):
    """A message arrived with ``received`` when ``expected`` was next: ``received - expected`` messages missing."""

    kind: ClassVar[str] = "ws_gap"
    expected: int
    received: int


@dataclass(frozen=True, slots=True)
class WsDuplicate(WsEvent):
    """A message with an already delivered sequence number ``seq`` was dropped."""

    kind: ClassVar[str] = "ws_duplicate"
    seq: int


@dataclass(frozen=True, slots=True)
class WsStale(WsEvent):
    """No message for ``silent_for`` seconds on an open socket: the client closes it and reconnects."""

    kind: ClassVar[str] = "ws_stale"
    silent_for: float


@dataclass(frozen=True, slots=True)
class WsResync(WsEvent):
    """After a gap, the resync handler returned ``messages`` messages covering ``expected`` to ``received``."""

    kind: ClassVar[str] = "ws_resync"
    expected: int
    received: int
    messages: int


for _cls in (
    WsEvent,
    WsConnectAttempt,
    WsConnected,
    WsDisconnected,
    WsClosed,
    WsReconnectScheduled,
    WsMessage,
    WsGap,
    WsDuplicate,
    WsStale,
    WsResync,
):
    fast_frozen_init(_cls)
