"""Prometheus and OpenTelemetry count a WebSocket stream's own events (connect attempts, connections, disconnects by
code and verdict, reconnects, messages, gaps, duplicates, stale sockets, connections open, time disconnected), read
from the real ``prometheus_client`` registry and the OpenTelemetry SDK's in-memory readers, while a real
:class:`ResilientWebSocket` reads the live flaky feed on 127.0.0.1. No label or attribute holds the URL's token."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import opentelemetry.exporter.prometheus as exporter
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from ws_kit import FAST, SUBSCRIBE, resume_after, seq_of

from integration_kit.events import Recorder
from integration_kit.sim.ws_upstream import ConnectionFault, FeedScript, FlakyFeed
from integration_kit.telemetry.otel import OpenTelemetryHook
from integration_kit.telemetry.prometheus import PrometheusHook
from integration_kit.websocket import ReconnectPolicy, ResilientWebSocket, WebSocketConfig
from integration_kit.websocket.events import (
    WsClosed,
    WsConnectAttempt,
    WsConnected,
    WsDisconnected,
    WsDuplicate,
    WsGap,
    WsMessage,
    WsReconnectScheduled,
    WsResync,
    WsStale,
)

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

SECRET = "canary-ws-metrics-token"
PRICES = {"integration_kit_integration": "prices"}


@dataclass
class Hooks:
    """Both hooks on fresh registries and readers, and what they exported."""

    registry: CollectorRegistry
    prometheus: PrometheusHook
    reader: InMemoryMetricReader
    spans: InMemorySpanExporter
    otel: OpenTelemetryHook

    def prom(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, {**PRICES, **labels})
        return 0.0 if value is None else value

    def points(self, name: str) -> Iterator[Any]:
        data = self.reader.get_metrics_data()
        assert data is not None
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == name:
                        yield from metric.data.data_points

    def otel_sum(self, name: str, **attributes: str) -> float:
        """The sum of ``name``'s points with these attributes (the count, for a histogram)."""
        wanted = {"integration_kit.integration": "prices", **attributes}
        total = 0.0
        for point in self.points(name):
            if all(point.attributes.get(k) == v for k, v in wanted.items()):
                total += point.count if hasattr(point, "bucket_counts") else point.value
        return total

    def exported(self) -> str:
        """Everything both backends hold, as text (for the secret check)."""
        data = self.reader.get_metrics_data()
        spans = [json.dumps(dict(s.attributes or {})) + s.name for s in self.spans.get_finished_spans()]
        return generate_latest(self.registry).decode() + (data.to_json() if data else "") + "".join(spans)


@pytest.fixture
def hooks() -> Hooks:
    registry = CollectorRegistry()
    reader = InMemoryMetricReader()
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    otel = OpenTelemetryHook(meter_provider=MeterProvider(metric_readers=[reader]), tracer_provider=tracer_provider)
    return Hooks(registry, PrometheusHook(registry=registry), reader, spans, otel)


def stream(feed: FlakyFeed, hooks: Hooks, recorder: Recorder, **overrides: Any) -> ResilientWebSocket:
    settings: dict[str, Any] = {
        "url": f"{feed.url}?token={SECRET}",
        "name": "prices",
        "reconnect": FAST,
        "subscribe": (SUBSCRIBE,),
        "sequence": "seq",
        "open_timeout": 2.0,
        **overrides,
    }
    ws = ResilientWebSocket(WebSocketConfig(**settings), hooks=[recorder])
    hooks.prometheus.instrument(ws)
    hooks.otel.instrument(ws)
    return ws


async def test_a_streams_lifecycle_is_counted_by_both_backends(hooks: Hooks) -> None:
    # a refused handshake, a drop with 1012, a silent socket caught as stale; every resume asks 3 messages back
    script = FeedScript(
        rate=200,
        refusals=(503,),
        retry_after=0,
        connections=(ConnectionFault(after=5, code=1012), ConnectionFault(after=5, stall=True)),
    )
    recorder = Recorder()
    with FlakyFeed(script) as feed:
        ws = stream(feed, hooks, recorder, stale_after=0.3, resume=lambda last: resume_after(last - 3))
        async with ws:
            seqs: list[int] = []
            async for message in ws:
                seqs.append(seq_of(message))
                if len(seqs) == 20:
                    break
            assert hooks.prom("integration_kit_ws_connections") == 1
            assert hooks.otel_sum("integration_kit.ws.connections") == 1
        assert seqs == list(range(seqs[0], seqs[0] + 20))
    for prom, otel, labels, expected in [
        ("integration_kit_ws_connect_attempts_total", "integration_kit.ws.connect.attempts", {}, 4),
        ("integration_kit_ws_connects_total", "integration_kit.ws.connects", {}, 3),
        ("integration_kit_ws_messages_total", "integration_kit.ws.messages", {}, 20),
        ("integration_kit_ws_duplicates_total", "integration_kit.ws.duplicates", {}, 6),
        ("integration_kit_ws_stale_total", "integration_kit.ws.stale", {}, 1),
        ("integration_kit_ws_gaps_total", "integration_kit.ws.gaps", {}, 0),
        ("integration_kit_ws_connections", "integration_kit.ws.connections", {}, 0),  # closed on leaving
        ("integration_kit_ws_downtime_seconds_count", "integration_kit.ws.downtime", {}, 2),
        (
            "integration_kit_ws_disconnects_total",
            "integration_kit.ws.disconnects",
            {"integration_kit.ws.close_code": "1012", "integration_kit.ws.verdict": "reconnect"},
            1,
        ),
        (
            "integration_kit_ws_disconnects_total",
            "integration_kit.ws.disconnects",
            {"integration_kit.ws.close_code": "none", "integration_kit.ws.verdict": "stale"},
            1,
        ),
        (
            "integration_kit_ws_reconnects_scheduled_total",
            "integration_kit.ws.reconnects.scheduled",
            {"integration_kit.ws.verdict": "stale"},
            1,
        ),
    ]:
        prom_labels = {k.replace(".", "_"): v for k, v in labels.items()}
        assert hooks.prom(prom, **prom_labels) == expected, prom
        assert hooks.otel_sum(otel, **labels) == expected, otel
    # the handshakes are still the engine's CONNECT calls
    assert 'http_request_method="CONNECT"' in generate_latest(hooks.registry).decode()
    assert hooks.spans.get_finished_spans()  # the handshake calls were traced
    assert SECRET not in hooks.exported()
    assert SECRET not in repr(recorder.events)


async def test_a_gap_counts_the_messages_missed(hooks: Hooks) -> None:
    # no resume at the partner: the 0.2 s away at 200 messages/s are missed, one gap
    script = FeedScript(rate=200, resume=False, connections=(ConnectionFault(after=5, code=1011),))
    slow = ReconnectPolicy(first_delay=0.2, base_delay=0.1, jitter="none")
    recorder = Recorder()
    with FlakyFeed(script) as feed:
        async with stream(feed, hooks, recorder, reconnect=slow) as ws:
            count = 0
            async for _ in ws:
                count += 1
                if count == 15:
                    break
    (gap,) = [e for e in recorder.events if e.kind == "ws_gap"]
    missed = gap.received - gap.expected  # type: ignore[attr-defined]
    assert missed >= 10
    assert hooks.prom("integration_kit_ws_gaps_total") == 1
    assert hooks.otel_sum("integration_kit.ws.gaps") == 1
    assert hooks.prom("integration_kit_ws_gap_messages_total") == missed
    assert hooks.otel_sum("integration_kit.ws.gap.messages") == missed
    labels = {"integration_kit_ws_close_code": "1011", "integration_kit_ws_verdict": "reconnect"}
    assert hooks.prom("integration_kit_ws_disconnects_total", **labels) == 1
    assert SECRET not in hooks.exported()


def test_an_http_only_registry_has_no_websocket_metrics() -> None:
    registry = CollectorRegistry()
    PrometheusHook(registry=registry)
    assert "integration_kit_ws_" not in generate_latest(registry).decode()


def test_the_otel_exporter_and_the_prometheus_hook_agree_on_websocket_series() -> None:
    # the same events into both hooks; the OpenTelemetry Prometheus exporter must print PrometheusHook's series
    url = f"ws://127.0.0.1:9/?token={SECRET}"
    events = [
        WsConnectAttempt(0.0, "p", 0, 1, url, 1),
        WsConnected(0.1, "p", 0, 1, url, 1, 0.0),
        WsMessage(0.2, "p", 0, 1, 1, 10),
        WsGap(0.3, "p", 0, 1, 2, 5),
        WsResync(0.3, "p", 0, 1, 2, 5, 3),
        WsDisconnected(0.4, "p", 0, 1, 1012, "service restart", "reconnect", 0.3),
        WsReconnectScheduled(0.4, "p", 0, 1, 0.5, "reconnect"),
        WsConnectAttempt(0.9, "p", 0, 2, url, 1),
        WsConnected(1.0, "p", 0, 2, url, 1, 0.6),
        WsDuplicate(1.1, "p", 0, 2, 5),
        WsStale(2.0, "p", 0, 2, 0.9),
        WsDisconnected(2.0, "p", 0, 2, None, "stale", "stale", 1.0),
        WsReconnectScheduled(2.0, "p", 0, 2, 0.1, "stale"),
        WsConnected(2.2, "p", 0, 3, url, 1, 0.2),
        WsClosed(3.0, "p", 0, 3, 1000, 0.8),
    ]
    reader = exporter.PrometheusMetricReader(disable_target_info=True)  # registers with the global REGISTRY
    provider = MeterProvider(metric_readers=[reader])
    try:
        registry = CollectorRegistry()
        hooks = [PrometheusHook(registry=registry), OpenTelemetryHook(meter_provider=provider, traces=False)]
        for event in events:
            for hook in hooks:
                hook(event)

        ours = samples(generate_latest(registry).decode())
        theirs = samples(generate_latest(REGISTRY).decode())
    finally:
        provider.shutdown()
    assert ours == theirs
    p = ("integration_kit_integration", "p")
    assert ours["integration_kit_ws_gap_messages_total", frozenset({p})] == 3
    assert ours["integration_kit_ws_connections", frozenset({p})] == 0
    assert ours["integration_kit_ws_downtime_seconds_count", frozenset({p})] == 2
    assert SECRET not in generate_latest(registry).decode()


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The ``integration_kit_ws_*`` samples of a scrape, by name and labels (the exporter's scope labels left out)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith("integration_kit_ws_") and not s.name.endswith("_created"):
                labels = frozenset((k, v) for k, v in s.labels.items() if not k.startswith("otel_scope"))
                found[s.name, labels] = s.value
    return found
