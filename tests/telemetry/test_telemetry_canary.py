"""A secret canary set for a whole live run (the flaky upstream, a client with a Bearer token and a secret query
parameter, every telemetry hook on) appears in no span, attribute, event, metric label or log line."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
import structlog
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry, generate_latest

from integration_kit import BearerAuth, ClientConfig, ResilientClient
from integration_kit.errors import IntegrationError
from integration_kit.events import LoggingHook
from integration_kit.policies.config import BreakerPolicy, BudgetPolicy, RetryPolicy, Timeouts
from integration_kit.sim.scenarios import Scenario
from integration_kit.sim.upstream import ScaledClock, serve_scenario
from integration_kit.telemetry.otel import OpenTelemetryHook
from integration_kit.telemetry.prometheus import PrometheusHook

TOKEN = "canary-token-7f3a9c"
QUERY_SECRET = "canary-query-51be20"
SCALE = 5.0  # each 4 s phase lasts 0.8 s: a loaded machine's set-up cannot skip the first phase (at 20x it could)


def strings(value: Any) -> list[str]:
    """Every string inside ``value`` (mappings, sequences, scalars)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict) or hasattr(value, "items"):
        return [s for k, v in value.items() for s in (*strings(k), *strings(v))]
    if isinstance(value, list | tuple):
        return [s for v in value for s in strings(v)]
    return [str(value)]


def test_no_secret_reaches_telemetry(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("CANARY_TOKEN", TOKEN)
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    registry = CollectorRegistry()
    otel = OpenTelemetryHook(tracer_provider=tracer_provider, meter_provider=meter_provider)
    prometheus = PrometheusHook(registry=registry)
    scenario = Scenario.from_mapping(
        {
            "name": "canary",
            "phases": [
                {"duration": 4, "errors": {"503": 0.3, "429": 0.1, "reset": 0.05}},
                {"duration": 4, "errors": {"503": 0.95}},
            ],
        }
    )
    caplog.set_level(logging.DEBUG)
    with serve_scenario(scenario, seed=5, time_scale=SCALE) as base, structlog.testing.capture_logs() as captured:
        config = ClientConfig(
            name="canary",
            base_url=base,
            auth=BearerAuth("CANARY_TOKEN"),
            retry=RetryPolicy(max_attempts=3, base_delay=0.05),
            timeouts=Timeouts(connect=1.0, read=2.0, write=2.0, pool=1.0),
            breaker=BreakerPolicy(failure_threshold=5, failure_rate_threshold=None, wait_in_open=1.0),
            budget=BudgetPolicy(),
        )
        hooks = [LoggingHook(), LoggingHook(structured=True), LoggingHook(structlog.get_logger())]
        with ResilientClient(config, clock=ScaledClock(SCALE), hooks=hooks) as client:
            otel.instrument(client)
            prometheus.instrument(client)
            outcomes = set()
            errors: list[str] = []
            end = time.monotonic() + 8.5 / SCALE  # through both phases, at least 60 calls, at most 2,000
            for n in range(2000):
                if n >= 60 and time.monotonic() > end:
                    break
                try:
                    client.get("/orders", params={"api_key": QUERY_SECRET, "page": str(n)})
                    outcomes.add("ok")
                except IntegrationError as exc:
                    outcomes.add(type(exc).__name__)
                    errors += [str(exc), repr(exc)]
    assert "ok" in outcomes
    assert len(outcomes) > 1

    texts: list[str] = list(errors)
    spans = exporter.get_finished_spans()
    assert len(spans) > 60
    for span in spans:
        texts += [span.name, span.status.description or "", *strings(dict(span.attributes or {}))]
        for event in span.events:
            texts += [event.name, *strings(dict(event.attributes or {}))]
    assert any("api_key=" in t for t in texts)  # the parameter is there, its value masked
    data = reader.get_metrics_data()
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for point in metric.data.data_points:
                    texts += strings(dict(point.attributes or {}))
    texts.append(generate_latest(registry).decode())
    records = caplog.records
    assert any(r.name == "httpx" for r in records)
    texts += [r.getMessage() for r in records]
    texts += [str(getattr(r, "integration_kit", "")) for r in records]
    texts += [s for entry in captured for s in strings(entry)]
    assert len(captured) > 60
    leaks = [t for t in texts if TOKEN in t or QUERY_SECRET in t]
    assert leaks == []
