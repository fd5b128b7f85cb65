"""The errors of message queues: a broker, an outbox or a consumer failed.

Each is an :class:`~integration_kit.errors.IntegrationError`, and each also subclasses the call's class that says
whether trying again can help, so the engine that drives a publisher retries them as it would an HTTP attempt.

```
IntegrationError                    (integration_kit.errors)
└── QueueError                      a message broker, outbox or consumer failed (``destination`` names it)
    ├── PublishNotConfirmed (TransientError)  the broker nacked a publish or no confirm came in time
    ├── BrokerUnavailable (ConnectionFailed)  the broker could not be reached or the connection broke
    ├── MessageUnroutable (PermanentError)    ``mandatory`` publish returned: no queue or stream bound
    └── PoisonMessage (PermanentError)        a message that can never be handled (undecodable): dead-lettered
```
"""

from __future__ import annotations

from integration_kit.errors import ConnectionFailed, IntegrationError, PermanentError, TransientError

__all__ = ["BrokerUnavailable", "MessageUnroutable", "PoisonMessage", "PublishNotConfirmed", "QueueError"]


class QueueError(IntegrationError):
    """A message broker, outbox or consumer failed. ``destination`` names the exchange, queue or stream."""

    def __init__(self, message: str, *, destination: str = "", **context: str | None) -> None:
        super().__init__(message, **context)  # type: ignore[arg-type]
        self.destination = destination


class PublishNotConfirmed(QueueError, TransientError):
    """The broker did not confirm a publish: a RabbitMQ ``basic.nack`` or a JetStream error, or no confirm in time.

    The message may or may not be stored; publish it again with the same message id (consumers deduplicate).
    """


class BrokerUnavailable(QueueError, ConnectionFailed):
    """The broker could not be reached, or the connection broke during an operation."""


class MessageUnroutable(QueueError, PermanentError):
    """A ``mandatory`` publish came back (``basic.return``) or no JetStream stream holds the subject."""


class PoisonMessage(QueueError, PermanentError):
    """A message that no retry can help (it cannot be decoded, or the handler says so): dead-lettered at once."""
