"""What a broker client library logs about our connections: one line each, the traceback at DEBUG.

aiormq logs a lost connection as a WARNING with two chained tracebacks, and nats-py's default error callback logs
each asynchronous error as an ERROR with one. Both are events a queue run expects (the relay and the consumer
reconnect), so an adapter reports each as one WARNING line on its own logger, naming its destination, and the
detail with the traceback at DEBUG (:func:`report`).

nats-py takes an ``error_cb`` per connection. aiormq has no such hook: its records come from tasks and callbacks
that the connection starts, so the RabbitMQ adapter opens its connections and channels inside :func:`owned`, whose
context variable those tasks inherit, and :func:`take_over` installs a filter on the library's loggers that
rewrites the records made in that context (WARNING and above) and passes every other record (another part of the
program's own aio-pika connections) through untouched.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar

__all__ = ["owned", "report", "take_over"]

#: The adapter (destination and logger) whose connection the running task or callback belongs to.
_OWNER: ContextVar[tuple[str, logging.Logger] | None] = ContextVar("integration_kit_broker_owner", default=None)


def report(
    logger: logging.Logger,
    destination: str,
    what: str,
    error: BaseException | None = None,
    *,
    level: int = logging.WARNING,
) -> None:
    """Log ``what`` happened to ``destination``'s connection as one line at ``level`` (the error's type and message
    on it), and the error's traceback at DEBUG."""
    line = " ".join(what.split())
    if error is not None:
        line = f"{line}: {type(error).__name__}: {' '.join(str(error).split())}".rstrip(": ")
    logger.log(level, "%s: %s", destination, line)
    if error is not None:
        logger.debug("%s: %s, in detail", destination, line, exc_info=error)


@contextlib.contextmanager
def owned(destination: str, logger: logging.Logger) -> Iterator[None]:
    """Tasks and callbacks started inside belong to ``destination``: what the client library logs from them goes
    through :func:`report` on ``logger`` (once :func:`take_over` is installed on the library's loggers)."""
    token = _OWNER.set((destination, logger))
    try:
        yield
    finally:
        _OWNER.reset(token)


def take_over(*names: str) -> None:
    """Install the filter that rewrites records made for an adapter's connection on each logger in ``names``
    (a filter acts on the logger it is on only, not on its children: name each one that logs). Idempotent."""
    for name in names:
        library = logging.getLogger(name)
        if not any(isinstance(f, _OwnedRecords) for f in library.filters):
            library.addFilter(_OwnedRecords())


class _OwnedRecords(logging.Filter):
    """Records at WARNING and above made for an adapter's connection: reported by the adapter, then dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        owner = _OWNER.get()
        if owner is None or record.levelno < logging.WARNING:
            return True
        destination, logger = owner
        error = record.exc_info[1] if record.exc_info else None
        report(logger, destination, f"{record.name}: {record.getMessage()}", error)
        return False
