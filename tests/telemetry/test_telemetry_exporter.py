"""The OpenTelemetry hook's metrics through the OpenTelemetry Prometheus exporter have the names and labels of
PrometheusHook's, so the alert rules and the dashboard read either."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import opentelemetry.exporter.prometheus as exporter
import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from integration_kit.engine.call import CallEngine, run_sync
from integration_kit.errors import IntegrationError
from integration_kit.policies.breaker import CircuitBreaker
from integration_kit.policies.budget import RetryBudget
from integration_kit.policies.config import BreakerPolicy, BudgetPolicy, RetryPolicy
from integration_kit.policies.outcome import Outcome, OutcomeKind
from integration_kit.telemetry.prometheus import PrometheusHook

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str, prefixes: tuple[str, ...]) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith(prefixes):
                labels = frozenset((k, v) for k, v in s.labels.items() if v and not k.startswith("otel_scope"))
                found[s.name, labels] = s.value
    return found


@pytest.fixture
def reader() -> Iterator[object]:
    from opentelemetry.sdk.metrics import MeterProvider

    reader = exporter.PrometheusMetricReader(disable_target_info=True)  # registers with prometheus_client's REGISTRY
    provider = MeterProvider(metric_readers=[reader])
    yield provider
    provider.shutdown()  # unregisters


def test_the_exporter_and_the_prometheus_hook_agree(reader: object) -> None:
    from integration_kit.telemetry.otel import OpenTelemetryHook

    registry = CollectorRegistry()
    otel = OpenTelemetryHook(meter_provider=reader, traces=False)  # type: ignore[arg-type]
    prometheus = PrometheusHook(registry=registry)
    breaker = CircuitBreaker(BreakerPolicy(failure_threshold=3, failure_rate_threshold=None), name="p")
    engine = CallEngine(
        name="p",
        retry=RetryPolicy(max_attempts=2, jitter="none", base_delay=0.01),
        breaker=breaker,
        budget=RetryBudget(BudgetPolicy()),
    )
    otel.instrument(engine)
    prometheus.instrument(engine)
    answers = iter([503, 200, 503, 503, 503, 503, 503, 503])

    def send(action: object) -> Outcome:
        return Outcome(OutcomeKind.STATUS, status=next(answers))

    for _ in range(4):
        with contextlib.suppress(IntegrationError):
            run_sync(engine.call("GET", "http://127.0.0.1:8080/x"), send, lambda s: None)
    prefixes = ("integration_kit_", "http_client_")
    ours = samples(generate_latest(registry).decode(), prefixes)
    theirs = samples(generate_latest(REGISTRY).decode(), prefixes)
    ours = {k: v for k, v in ours.items() if not k[0].endswith(("_sum", "_created"))}  # durations differ slightly
    theirs = {k: v for k, v in theirs.items() if not k[0].endswith(("_sum", "_created"))}
    assert ours == theirs
    assert (
        "integration_kit_calls_rejected_total",
        frozenset({("integration_kit_integration", "p"), ("integration_kit_rejection_reason", "circuit_open")}),
    ) in ours
