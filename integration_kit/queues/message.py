"""The message envelope: a body, a message id set once, a routing key, headers, and the delivery attempt.

The message id is chosen when the message is created and never changes: every publish retry, outbox relay and
redelivery carries the same id, so JetStream deduplicates repeated publishes (``Nats-Msg-Id``) and consumers
deduplicate repeated deliveries (the inbox). The attempt count and the history of failed attempts travel in the
kit's own headers (``x-ik-*``), so a dead letter says why and how often it failed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Self

__all__ = [
    "ATTEMPT_HEADER",
    "DEAD_REASON_HEADER",
    "HISTORY_HEADER",
    "KEY_HEADER",
    "MESSAGE_ID_HEADER",
    "FailedAttempt",
    "Message",
    "new_message_id",
]

#: The logical message id (also the broker's own id: AMQP ``message_id``, JetStream ``Nats-Msg-Id``).
MESSAGE_ID_HEADER = "x-ik-message-id"
#: The delivery attempt this copy of the message is (1 for the first delivery).
ATTEMPT_HEADER = "x-ik-attempt"
#: JSON list of the failed attempts so far: ``[{"attempt": 1, "reason": "...", "at": 12.5}, ...]``.
HISTORY_HEADER = "x-ik-history"
#: Why a dead letter was dead-lettered.
DEAD_REASON_HEADER = "x-ik-dead-reason"
#: The message's routing key, kept while it travels through retry and dead-letter queues.
KEY_HEADER = "x-ik-key"

_OWN = frozenset((MESSAGE_ID_HEADER, ATTEMPT_HEADER, HISTORY_HEADER, DEAD_REASON_HEADER, KEY_HEADER))
#: Headers the brokers add themselves (RabbitMQ's dead-lettering record, JetStream's ``Nats-*``): not the app's.
_BROKER_PREFIXES = ("x-death", "x-first-death-", "x-last-death-", "nats-")
#: A reason kept in headers is cut to this many characters (headers are not a place for tracebacks).
MAX_REASON = 200


def new_message_id() -> str:
    """A fresh message id: a random UUID4 in hex."""
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class FailedAttempt:
    """One failed delivery attempt: which one, why (an error's class and message, cut short), when (seconds)."""

    attempt: int
    reason: str
    at: float


@dataclass(frozen=True, slots=True)
class Message:
    """One message.

    ``body`` is the payload (bytes); ``key`` the routing key (RabbitMQ) or subject suffix (JetStream), which is
    also the ordering key of the outbox; ``message_id`` is set once (default: a new UUID4); ``headers`` are the
    application's (string values); ``attempt`` is which delivery this is (1-based) and ``history`` the failed
    attempts before it; ``dead_reason`` is set on a dead letter.
    """

    body: bytes
    key: str = ""
    message_id: str = field(default_factory=new_message_id)
    headers: Mapping[str, str] = field(default_factory=dict)
    attempt: int = 1
    history: tuple[FailedAttempt, ...] = ()
    dead_reason: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.body, bytes):
            raise TypeError(f"Message.body must be bytes, got {type(self.body).__name__}")
        if not self.message_id:
            raise ValueError("Message.message_id must be a non-empty string")
        if self.attempt < 1:
            raise ValueError(f"Message.attempt must be >= 1, got {self.attempt!r}")

    def failed(self, reason: str, at: float) -> Self:
        """The copy to redeliver after this attempt failed: the next attempt, with this failure in its history."""
        entry = FailedAttempt(self.attempt, reason[:MAX_REASON], at)
        return replace(self, attempt=self.attempt + 1, history=(*self.history, entry))

    def dead(self, reason: str, at: float) -> Self:
        """The dead letter of this message: this attempt's failure added to the history, and the reason."""
        entry = FailedAttempt(self.attempt, reason[:MAX_REASON], at)
        return replace(self, history=(*self.history, entry), dead_reason=reason[:MAX_REASON])

    def redriven(self) -> Self:
        """The copy a re-drive publishes: attempt 1 again, history kept, no dead reason."""
        return replace(self, attempt=1, dead_reason=None)

    def wire_headers(self) -> dict[str, str]:
        """The headers to send: the application's, then the kit's own."""
        headers = {k: v for k, v in self.headers.items() if k not in _OWN}
        headers[MESSAGE_ID_HEADER] = self.message_id
        headers[ATTEMPT_HEADER] = str(self.attempt)
        if self.key:
            headers[KEY_HEADER] = self.key
        if self.history:
            headers[HISTORY_HEADER] = json.dumps(
                [{"attempt": h.attempt, "reason": h.reason, "at": round(h.at, 6)} for h in self.history],
                separators=(",", ":"),
            )
        if self.dead_reason is not None:
            headers[DEAD_REASON_HEADER] = self.dead_reason
        return headers

    @classmethod
    def from_wire(
        cls, body: bytes, headers: Mapping[str, object], *, key: str = "", message_id: str | None = None
    ) -> Message:
        """Rebuild a message from what a broker delivered; a missing or garbled kit header gets its default.

        ``message_id`` is the broker's own id, used when the kit's header is missing (a message published by
        another producer); failing both, the message gets a fresh id (it cannot be deduplicated).
        """
        own: dict[str, str] = {}
        app: dict[str, str] = {}
        for k, v in headers.items():  # one pass: this runs for every delivery
            name = k if type(k) is str else str(k)
            value = v if type(v) is str else v.decode() if isinstance(v, bytes) else str(v)
            if name in _OWN:
                own[name] = value
            elif not name.lower().startswith(_BROKER_PREFIXES):
                app[name] = value
        attempt = 1
        if (text := own.get(ATTEMPT_HEADER, "1")) != "1":
            try:
                attempt = max(1, int(text))
            except ValueError:
                attempt = 1
        history: tuple[FailedAttempt, ...] = ()
        if raw := own.get(HISTORY_HEADER):
            try:
                history = tuple(
                    FailedAttempt(int(h["attempt"]), str(h["reason"]), float(h["at"])) for h in json.loads(raw)
                )
            except (ValueError, TypeError, KeyError):
                history = ()
        return cls(
            body,
            own.get(KEY_HEADER) or key,
            own.get(MESSAGE_ID_HEADER) or message_id or new_message_id(),
            app,
            attempt,
            history,
            own.get(DEAD_REASON_HEADER),
        )
