"""The consumer's events counted by the telemetry hooks: a real consumer on each broker, Prometheus and OTel."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry
from queue_brokers import BrokerEnv, amqp_available, broker_env, nats_url, run, session

from integration_kit.queues.consumer import Consumer
from integration_kit.queues.errors import PoisonMessage
from integration_kit.queues.message import Message
from integration_kit.telemetry import conventions as c
from integration_kit.telemetry.otel import OpenTelemetryHook
from integration_kit.telemetry.prometheus import PrometheusHook

pytestmark = pytest.mark.queues
__all__ = ["amqp_available", "broker_env", "nats_url"]


def otel_counts(reader: InMemoryMetricReader, name: str) -> dict[tuple[tuple[str, object], ...], int]:
    """A counter's points: sorted attributes -> value."""
    data = reader.get_metrics_data()
    counts: dict[tuple[tuple[str, object], ...], int] = {}
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == name:
                    for point in metric.data.data_points:
                        counts[tuple(sorted(point.attributes.items()))] = point.value
    return counts


def test_received_and_settled_deliveries_are_counted_by_outcome(broker_env: BrokerEnv) -> None:
    registry = CollectorRegistry()
    prometheus = PrometheusHook(registry=registry)
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    otel = OpenTelemetryHook(meter_provider=provider, traces=False)

    async def body() -> None:
        async with session(broker_env, broker_env.topology(retry_delays=(0.2,))) as broker:

            async def handler(message: Message) -> None:
                if message.body == b"poison":
                    raise PoisonMessage("not an order")
                if message.body == b"flaky" and message.attempt == 1:
                    raise ConnectionError("downstream reset")

            await broker.publish([Message(b"ok"), Message(b"flaky"), Message(b"poison")], timeout=5)
            consumer = Consumer(broker, handler, fetch_timeout=0.2, name="orders", hooks=[prometheus, otel])
            await asyncio.wait_for(consumer.run(max_messages=4), 20)

    run(body)
    outcome = c.prometheus_label(c.QUEUE_OUTCOME)
    integration = c.prometheus_label(c.INTEGRATION)
    received = c.QUEUE_RECEIVED.prometheus
    settled = c.QUEUE_SETTLED.prometheus
    assert registry.get_sample_value(received, {integration: "orders"}) == 4  # the flaky one twice
    for name, count in {"acked": 2, "retried": 1, "dead_lettered": 1, "duplicate": None}.items():
        assert registry.get_sample_value(settled, {integration: "orders", outcome: name}) == count
    assert otel_counts(reader, c.QUEUE_RECEIVED.name) == {((c.INTEGRATION, "orders"),): 4}
    assert otel_counts(reader, c.QUEUE_SETTLED.name) == {
        ((c.INTEGRATION, "orders"), (c.QUEUE_OUTCOME, name)): count
        for name, count in {"acked": 2, "retried": 1, "dead_lettered": 1}.items()
    }
    provider.shutdown()
