"""The metrics of WebSocket streams, from their ``ws_*`` events (:mod:`integration_kit.websocket.events`).

A stream's handshakes are calls of the engine (method ``CONNECT``) and already reach the HTTP metrics; these are
the stream's own. OpenTelemetry names (the Prometheus names, as the OpenTelemetry exporter spells them, follow):

- ``integration_kit.ws.connect.attempts`` (``integration_kit_ws_connect_attempts_total``): handshake attempts;
- ``integration_kit.ws.connects`` (``..._connects_total``): connections opened;
- ``integration_kit.ws.disconnects`` (``..._disconnects_total``): connections lost, by close code
  (``integration_kit.ws.close_code``: the code, or ``none`` when no close frame came, 1006 at the client) and
  verdict (``integration_kit.ws.verdict``: ``reconnect``, ``permanent``, ``clean`` or ``stale``);
- ``integration_kit.ws.reconnects.scheduled`` (``..._reconnects_scheduled_total``): by reason (the verdict);
- ``integration_kit.ws.messages``, ``.gaps``, ``.gap.messages`` (messages missing in gaps), ``.duplicates``
  (dropped), ``.stale`` (silent sockets closed), ``.resyncs``: counters;
- ``integration_kit.ws.connections`` (``integration_kit_ws_connections``): connections open now (an up-down
  counter in OpenTelemetry, a gauge in Prometheus: +1 when connected, -1 when lost or closed by the user);
- ``integration_kit.ws.downtime`` (``integration_kit_ws_downtime_seconds``): seconds disconnected before each
  reconnect (a histogram with the call-duration buckets).

Every metric has the ``integration_kit.integration`` label (the stream's name); none has the URL, so a token in
its query never reaches a label. Codes are bounded (1000-4999), verdicts and reasons are a handful of words.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import Any

from integration_kit.events import Event
from integration_kit.telemetry.conventions import INTEGRATION, EventMetrics, MetricSpec

__all__ = ["WS_METRICS", "WsEventMetrics"]

#: The attribute (label) of a disconnect's close code, and of its verdict or a reconnect's reason.
CLOSE_CODE = "integration_kit.ws.close_code"
VERDICT = "integration_kit.ws.verdict"

WS_CONNECT_ATTEMPTS = MetricSpec("integration_kit.ws.connect.attempts", "{attempt}", "counter", "Handshake attempts.")
WS_CONNECTS = MetricSpec("integration_kit.ws.connects", "{connection}", "counter", "WebSocket connections opened.")
WS_DISCONNECTS = MetricSpec(
    "integration_kit.ws.disconnects", "{connection}", "counter", "WebSocket connections lost, by code and verdict."
)
WS_RECONNECTS = MetricSpec(
    "integration_kit.ws.reconnects.scheduled", "{reconnect}", "counter", "Reconnects scheduled, by reason."
)
WS_MESSAGES = MetricSpec("integration_kit.ws.messages", "{message}", "counter", "Messages delivered.")
WS_GAPS = MetricSpec("integration_kit.ws.gaps", "{gap}", "counter", "Sequence gaps seen.")
WS_GAP_MESSAGES = MetricSpec("integration_kit.ws.gap.messages", "{message}", "counter", "Messages missing in gaps.")
WS_DUPLICATES = MetricSpec("integration_kit.ws.duplicates", "{message}", "counter", "Duplicate messages dropped.")
WS_STALE = MetricSpec("integration_kit.ws.stale", "{connection}", "counter", "Silent connections closed as stale.")
WS_RESYNCS = MetricSpec("integration_kit.ws.resyncs", "{resync}", "counter", "Gaps filled by the resync handler.")
WS_CONNECTIONS = MetricSpec("integration_kit.ws.connections", "{connection}", "gauge", "WebSocket connections open.")
WS_DOWNTIME = MetricSpec("integration_kit.ws.downtime", "s", "histogram", "Time disconnected before a reconnect.")

#: Every WebSocket metric, in the order of the module docstring.
WS_METRICS: tuple[MetricSpec, ...] = (
    WS_CONNECT_ATTEMPTS,
    WS_CONNECTS,
    WS_DISCONNECTS,
    WS_RECONNECTS,
    WS_MESSAGES,
    WS_GAPS,
    WS_GAP_MESSAGES,
    WS_DUPLICATES,
    WS_STALE,
    WS_RESYNCS,
    WS_CONNECTIONS,
    WS_DOWNTIME,
)
#: The label names of each metric beyond ``integration_kit.integration``, in order.
WS_LABELS: dict[str, tuple[str, ...]] = {
    spec.name: ((CLOSE_CODE, VERDICT) if spec is WS_DISCONNECTS else (VERDICT,) if spec is WS_RECONNECTS else ())
    for spec in WS_METRICS
}


def _disconnected(e: Any) -> list[tuple[MetricSpec, float, tuple[str, ...]]]:
    code = "none" if e.code is None else str(e.code)
    return [(WS_DISCONNECTS, 1, (code, e.verdict)), (WS_CONNECTIONS, -1, ())]


def _connected(e: Any) -> list[tuple[MetricSpec, float, tuple[str, ...]]]:
    updates: list[tuple[MetricSpec, float, tuple[str, ...]]] = [(WS_CONNECTS, 1, ()), (WS_CONNECTIONS, 1, ())]
    if e.connection > 1:
        updates.append((WS_DOWNTIME, e.down_for, ()))
    return updates


#: What each event kind adds: ``(metric, value, labels beyond the integration)`` triples.
_UPDATES: dict[str, Callable[[Any], list[tuple[MetricSpec, float, tuple[str, ...]]]]] = {
    "ws_message": lambda e: [(WS_MESSAGES, 1, ())],
    "ws_connect_attempt": lambda e: [(WS_CONNECT_ATTEMPTS, 1, ())],
    "ws_connected": _connected,
    "ws_disconnected": _disconnected,
    "ws_closed": lambda e: [(WS_CONNECTIONS, -1, ())],
    "ws_reconnect_scheduled": lambda e: [(WS_RECONNECTS, 1, (e.reason,))],
    "ws_gap": lambda e: [(WS_GAPS, 1, ()), (WS_GAP_MESSAGES, e.received - e.expected, ())],
    "ws_duplicate": lambda e: [(WS_DUPLICATES, 1, ())],
    "ws_stale": lambda e: [(WS_STALE, 1, ())],
    "ws_resync": lambda e: [(WS_RESYNCS, 1, ())],
}


class WsEventMetrics(EventMetrics):
    """:class:`~integration_kit.telemetry.conventions.EventMetrics` that also turns ``ws_*`` events into the
    metrics of this module, through the backend's :meth:`ws_record`; every other event goes to the base class."""

    def __call__(self, event: Event) -> None:
        """Record ``event``: a ``ws_*`` event here, any other through the base class."""
        updates = _UPDATES.get(event.kind)
        if updates is None:
            super().__call__(event)
            return
        integration = event.integration
        for spec, value, labels in updates(event):
            self.ws_record(spec, value, (integration, *labels))

    @abstractmethod
    def ws_record(self, spec: MetricSpec, value: float, labels: tuple[str, ...]) -> None:
        """Add ``value`` to ``spec`` (a counter or the connections gauge) or observe it (the downtime histogram),
        under ``labels``: the integration, then :data:`WS_LABELS` of ``spec`` in order."""


def ws_attributes(spec: MetricSpec, labels: tuple[str, ...]) -> dict[str, str]:
    """``labels`` of ``spec`` as OpenTelemetry attributes (names from :data:`WS_LABELS`)."""
    return dict(zip((INTEGRATION, *WS_LABELS[spec.name]), labels, strict=True))
