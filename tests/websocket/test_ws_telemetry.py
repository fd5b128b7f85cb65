"""Prometheus and OpenTelemetry read a WebSocket stream's handshakes as calls of the engine (method ``CONNECT``), and
its own events pass through their hooks without error."""

from __future__ import annotations

import logging

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry, generate_latest
from ws_kit import FAST, SUBSCRIBE

from integration_kit.sim.ws_upstream import ConnectionFault, FeedScript, FlakyFeed
from integration_kit.telemetry.otel import OpenTelemetryHook
from integration_kit.telemetry.prometheus import PrometheusHook
from integration_kit.websocket import ResilientWebSocket, WebSocketConfig

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


async def test_handshakes_reach_prometheus_and_opentelemetry(caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    prometheus = PrometheusHook(registry=registry)
    reader = InMemoryMetricReader()
    otel = OpenTelemetryHook(meter_provider=MeterProvider(metric_readers=[reader]))
    script = FeedScript(rate=200, refusals=(503,), retry_after=0, connections=(ConnectionFault(after=3, code=1012),))
    with FlakyFeed(script) as feed:
        config = WebSocketConfig(url=feed.url, name="prices", subscribe=(SUBSCRIBE,), reconnect=FAST)
        ws = ResilientWebSocket(config)
        prometheus.instrument(ws)
        otel.instrument(ws)
        with caplog.at_level(logging.WARNING, logger="integration_kit"):
            async with ws:
                count = 0
                async for _ in ws:
                    count += 1
                    if count == 6:
                        break
    text = generate_latest(registry).decode()
    assert 'http_request_method="CONNECT"' in text
    assert 'http_response_status_code="503"' in text  # the refused handshake, as an attempt
    names = {m.name for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert names  # the engine's metrics were recorded
    assert not [r for r in caplog.records if "hook" in r.getMessage().lower()]  # no hook failed on a ws event
