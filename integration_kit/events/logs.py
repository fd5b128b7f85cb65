"""The :class:`LoggingHook`: each event as one structured log record (standard logging or structlog), redacted by
construction (events hold no secret)."""

from __future__ import annotations

import json
import logging
from dataclasses import fields
from typing import TYPE_CHECKING, Any, Protocol, cast

if TYPE_CHECKING:
    pass

from integration_kit.events.kinds import Event
from integration_kit.events.recorder import event_row

__all__ = ["LoggingHook", "StructuredLogger"]


class StructuredLogger(Protocol):
    """A structlog-style logger: ``log(level, event_name, **fields)`` (structlog's bound loggers are)."""

    def log(self, level: int, event: str, **fields: Any) -> Any: ...


class LoggingHook:
    """Emits one log record per finished attempt, and one per rejection, transition or refusal.

    Records go to the ``integration_kit`` logger (or ``logger``) with the event's fields in ``extra`` under
    ``integration_kit``; the message holds only redacted values.

    ``structured=True`` logs every event as one JSON object with stable keys: ``event`` (the event's kind:
    ``attempt_started``, ``attempt_finished``, ``retry_scheduled``, ``call_rejected``, ``budget_exhausted``,
    ``breaker_transition``, ``store_unavailable``, ``call_finished``), ``integration``, ``call_id``, ``time`` and
    the event's own fields. With a :class:`logging.Logger` the JSON object is the message; with a structlog logger
    (anything with ``log(level, event, **fields)``; always structured) the hook calls
    ``logger.log(level, kind, **fields)`` and structlog's processors render it.
    """

    def __init__(
        self,
        logger: logging.Logger | StructuredLogger | None = None,
        *,
        level: int = logging.INFO,
        structured: bool = False,
    ) -> None:
        self.logger = logger or logging.getLogger("integration_kit")
        self.level = level
        self.structured = structured
        self._stdlib = isinstance(self.logger, logging.Logger | logging.LoggerAdapter)

    def __call__(self, event: Event) -> None:
        """Log ``event`` if it is one this hook reports."""
        kind = event.kind
        if self.structured or not self._stdlib:
            self._structured(event)
            return
        if kind in {"attempt_started", "retry_scheduled"}:
            return
        logger = cast(logging.Logger, self.logger)
        if not logger.isEnabledFor(self.level):
            return
        fields_ = event_row(event)
        if kind == "attempt_finished":
            message = "%s attempt %s %s %s -> %s in %.3fs"
            args: tuple[object, ...] = (
                event.integration,
                fields_["attempt"],
                fields_["method"],
                fields_["target"],
                fields_["status"] if fields_["status"] is not None else fields_["outcome"],
                fields_["duration"],
            )
        else:
            message = "%s %s %s"
            args = (event.integration, kind, {k: v for k, v in fields_.items() if k not in ("event", "integration")})
        logger.log(self.level, message, *args, extra={"integration_kit": fields_})

    def _structured(self, event: Event) -> None:
        logger = self.logger
        if self._stdlib:
            stdlib = cast(logging.Logger, logger)
            if stdlib.isEnabledFor(self.level):
                row = event_row(event)
                stdlib.log(self.level, "%s", _Json(row), extra={"integration_kit": row})
            return
        row = {f.name: getattr(event, f.name) for f in fields(event)}
        logger.log(self.level, event.kind, **row)


class _Json:
    """A log message argument rendered as JSON only when a handler formats the record."""

    __slots__ = ("row",)

    def __init__(self, row: dict[str, Any]) -> None:
        self.row = row

    def __str__(self) -> str:
        return json.dumps(self.row, default=str, separators=(",", ":"))
