"""gRPC calls emit the same events as HTTP calls: OpenTelemetry spans follow the RPC semantic conventions (one per
attempt), Prometheus counts them, and the credential reaches neither (a canary over the live upstream)."""

from __future__ import annotations

from typing import Any

import pytest
from grpc_kit_helpers import SERVICE, Serve, retry_config, scenario
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry, generate_latest

from integration_kit.errors import RetriesExhausted
from integration_kit.grpc import AsyncResilientChannel, MetadataCredential
from integration_kit.sim.grpc import inventory_pb2 as pb
from integration_kit.sim.grpc import inventory_pb2_grpc as pbg
from integration_kit.telemetry.otel import OpenTelemetryHook
from integration_kit.telemetry.prometheus import PrometheusHook

pytestmark = pytest.mark.anyio

TOKEN = "grpc-telemetry-canary-91c2"


async def test_spans_follow_the_rpc_conventions_one_per_attempt(serve: Serve, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVENTORY_TOKEN", TOKEN)
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    otel = OpenTelemetryHook(tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[reader]))
    registry = CollectorRegistry()
    prometheus = PrometheusHook(registry=registry)
    with serve(scenario({"503": 1.0})) as (target, _):
        async with AsyncResilientChannel(
            target,
            tls=False,
            service_config=retry_config(attempts=3),
            credential=MetadataCredential("INVENTORY_TOKEN"),
            idempotency={f"{SERVICE}/GetItem": "NO_SIDE_EFFECTS"},
            hooks=[otel, prometheus],
        ) as channel:
            with pytest.raises(RetriesExhausted):
                await pbg.InventoryStub(channel).GetItem(pb.GetItemRequest(sku="a"))
    spans = exporter.get_finished_spans()
    attempts = [s for s in spans if s.name == f"{SERVICE}/GetItem"]
    assert len(attempts) == 3
    for span in attempts:
        attributes: dict[str, Any] = dict(span.attributes or {})
        assert attributes["rpc.system"] == "grpc"
        assert attributes["rpc.service"] == SERVICE
        assert attributes["rpc.method"] == "GetItem"
        assert attributes["rpc.grpc.status_code"] == 14  # UNAVAILABLE
        assert "http.response.status_code" not in attributes
    exported = [str(s.to_json()) for s in spans] + [str(reader.get_metrics_data().to_json())]
    exported.append(generate_latest(registry).decode())
    assert all(TOKEN not in text for text in exported)
    assert "integration_kit" in exported[-1]  # Prometheus counted the calls
