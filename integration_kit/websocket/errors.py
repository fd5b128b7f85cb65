"""The errors a WebSocket stream ends with, beyond the call's (:mod:`integration_kit.errors`)::

    IntegrationError
    ├── PermanentError
    │   └── StreamClosed            the partner closed with a permanent code (1003, 1008, 4000-4999, a mapping)
    └── OutgoingQueueFull           send() while disconnected, the queue full, outgoing="fail"

A refused handshake ends the stream with the engine's own errors: :class:`~integration_kit.errors.AuthError`
(401, 403), :class:`~integration_kit.errors.RetriesExhausted`, :class:`~integration_kit.errors.CircuitOpenError`,
:class:`~integration_kit.errors.BudgetExhausted`.
"""

from __future__ import annotations

from integration_kit.errors import IntegrationError, PermanentError

__all__ = ["OutgoingQueueFull", "StreamClosed"]


class StreamClosed(PermanentError):
    """The partner closed the connection with ``code`` and ``reason``, a close that reconnecting would not fix.

    ``unsent`` counts the messages still in the outgoing queue, never sent (nothing is dropped silently).
    """

    def __init__(self, message: str, *, code: int | None, reason: str, unsent: int = 0, **context: str | None) -> None:
        super().__init__(message, **context)  # type: ignore[arg-type]
        self.code = code
        self.reason = reason
        self.unsent = unsent


class OutgoingQueueFull(IntegrationError):
    """``send()`` found the outgoing queue full (``limit`` messages) while disconnected, with ``outgoing="fail"``."""

    def __init__(self, message: str, *, limit: int, **context: str | None) -> None:
        super().__init__(message, **context)  # type: ignore[arg-type]
        self.limit = limit
