"""The events of a queue consumer, emitted to the same hooks as the call's events (:mod:`integration_kit.events`).

A :class:`~integration_kit.events.Recorder` keeps them, and its frame has their columns (``queue``,
``message_id``, ``redelivered``, ``paused_for``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from integration_kit._slots import fast_frozen_init
from integration_kit.events import Event

__all__ = [
    "ConsumerPaused",
    "ConsumerResumed",
    "DuplicateSuppressed",
    "MessageAcked",
    "MessageDeadLettered",
    "MessageEvent",
    "MessageReceived",
    "MessageRequeued",
    "MessageRetried",
]


@dataclass(frozen=True, slots=True)
class MessageEvent(Event):
    """Fields of every queue consumer event: the ``queue`` (the broker's destination), the message's id and the
    delivery's ``attempt`` (1 for the first). ``integration`` is the consumer's name; ``call_id`` is 0."""

    kind: ClassVar[str] = "message"
    queue: str
    message_id: str
    attempt: int


@dataclass(frozen=True, slots=True)
class MessageReceived(MessageEvent):
    """The consumer took a delivery from the broker (``redelivered``: the broker delivered it before)."""

    kind: ClassVar[str] = "message_received"
    redelivered: bool


@dataclass(frozen=True, slots=True)
class MessageAcked(MessageEvent):
    """The handler returned and the delivery was acknowledged, ``duration`` seconds after it was received."""

    kind: ClassVar[str] = "message_acked"
    duration: float


@dataclass(frozen=True, slots=True)
class DuplicateSuppressed(MessageEvent):
    """The inbox had processed this message id: acknowledged without running the handler."""

    kind: ClassVar[str] = "duplicate_suppressed"


@dataclass(frozen=True, slots=True)
class MessageRetried(MessageEvent):
    """The attempt failed (``reason``): the broker redelivers the message after ``delay`` seconds."""

    kind: ClassVar[str] = "message_retried"
    delay: float
    reason: str


@dataclass(frozen=True, slots=True)
class MessageDeadLettered(MessageEvent):
    """The message went to the dead-letter queue for ``reason`` (poison, or its attempts used up)."""

    kind: ClassVar[str] = "message_dead_lettered"
    reason: str


@dataclass(frozen=True, slots=True)
class MessageRequeued(MessageEvent):
    """The delivery went back to the broker unhandled, no attempt used: ``reason`` is "circuit_open" (the consumer
    pauses) or "shutdown" (fetched while stopping, or still running past the grace)."""

    kind: ClassVar[str] = "message_requeued"
    reason: str


@dataclass(frozen=True, slots=True)
class ConsumerPaused(Event):
    """The consumer of ``queue`` stopped fetching: the handler's downstream breaker ``breaker`` is open."""

    kind: ClassVar[str] = "consumer_paused"
    queue: str
    breaker: str


@dataclass(frozen=True, slots=True)
class ConsumerResumed(Event):
    """The consumer of ``queue`` fetches again (breaker ``breaker`` closed) after ``paused_for`` seconds."""

    kind: ClassVar[str] = "consumer_resumed"
    queue: str
    breaker: str
    paused_for: float


for _cls in (
    MessageEvent,
    MessageReceived,
    MessageAcked,
    DuplicateSuppressed,
    MessageRetried,
    MessageDeadLettered,
    MessageRequeued,
    ConsumerPaused,
    ConsumerResumed,
):
    fast_frozen_init(_cls)
