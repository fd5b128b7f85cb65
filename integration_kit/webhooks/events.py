"""The events of webhook sending, emitted to the same hooks as the call's events (:mod:`integration_kit.events`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from integration_kit._slots import fast_frozen_init
from integration_kit.events import Event

__all__ = ["WebhookEndpointDisabled"]


@dataclass(frozen=True, slots=True)
class WebhookEndpointDisabled(Event):
    """Webhook deliveries to ``endpoint`` stopped: ``reason`` is "gone" (it answered 410) or "failing" (it failed
    for longer than the schedule's ``disable_after``); ``failing_since`` is when its failures began (or ``None``)."""

    kind: ClassVar[str] = "webhook_endpoint_disabled"
    endpoint: str
    reason: str
    failing_since: float | None


fast_frozen_init(WebhookEndpointDisabled)
