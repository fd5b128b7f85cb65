"""Observability as plain data: one frozen event per thing that happens, hooks that receive them, and a recorder.

Every driver (sync client, async client, simulator) emits the same events from the call engine, so a chart or
a summary works on live and simulated runs alike. A hook is any callable taking an :class:`Event`. Targets in
events are already redacted by the driver; events never hold a secret.

These are the call's events. Features define their own :class:`Event` subclasses in their own packages and emit
them to the same hooks: :mod:`integration_kit.webhooks.events` (``WebhookEndpointDisabled``) and
:mod:`integration_kit.queues.events` (the consumer's ``Message*`` and ``Consumer*`` events).

pandas is imported only by :meth:`Recorder.to_frame`.
"""

from integration_kit.events.kinds import (
    AttemptFinished,
    AttemptStarted,
    AttemptWrapper,
    BreakerTransition,
    BudgetDepleted,
    CallFinished,
    CircuitState,
    Event,
    EventRow,
    Hook,
    PacingWait,
    QuotaSeen,
    RejectedCall,
    RetryScheduled,
    StoreUnreachable,
    emit,
)
from integration_kit.events.kinds import (
    logger as logger,
)
from integration_kit.events.logs import LoggingHook, StructuredLogger
from integration_kit.events.recorder import (
    FRAME_COLUMNS,
    Recorder,
    Summary,
)
from integration_kit.events.recorder import (
    event_row as event_row,
)
from integration_kit.events.recorder import (
    events_to_frame as events_to_frame,
)
from integration_kit.events.recorder import (
    percentile as percentile,
)
from integration_kit.events.recorder import (
    summarize as summarize,
)

__all__ = [
    "CircuitState",
    "FRAME_COLUMNS",
    "AttemptFinished",
    "AttemptStarted",
    "AttemptWrapper",
    "BreakerTransition",
    "BudgetDepleted",
    "CallFinished",
    "Event",
    "EventRow",
    "Hook",
    "LoggingHook",
    "Recorder",
    "PacingWait",
    "QuotaSeen",
    "RejectedCall",
    "RetryScheduled",
    "StoreUnreachable",
    "StructuredLogger",
    "Summary",
    "emit",
]
