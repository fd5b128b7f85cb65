"""WebSocket feeds that reconnect without storms and resume without gaps (extra ``websocket``: ``websockets>=13``).

:class:`ResilientWebSocket` drives the call engine for every handshake over the ``websockets`` asyncio client;
:mod:`~integration_kit.websocket.reconnect` holds the sans-I/O reconnect policy it shares with the simulator;
:mod:`~integration_kit.websocket.events` its events.
"""

from integration_kit.websocket.client import ResilientWebSocket, Resync, json_field
from integration_kit.websocket.config import Message, OutgoingMode, SequenceOf, WebSocketConfig
from integration_kit.websocket.errors import OutgoingQueueFull, StreamClosed
from integration_kit.websocket.reconnect import (
    CloseClass,
    ReconnectDecision,
    ReconnectPolicy,
    classify_close,
    decide_reconnect,
)
from integration_kit.websocket.resync import http_resync
from integration_kit.websocket.sequence import SequenceTracker, SeqVerdict

__all__ = [
    "CloseClass",
    "Message",
    "OutgoingMode",
    "OutgoingQueueFull",
    "ReconnectDecision",
    "ReconnectPolicy",
    "ResilientWebSocket",
    "Resync",
    "SeqVerdict",
    "SequenceOf",
    "SequenceTracker",
    "StreamClosed",
    "WebSocketConfig",
    "classify_close",
    "decide_reconnect",
    "http_resync",
    "json_field",
]
