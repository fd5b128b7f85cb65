"""The Prometheus hook and the flaky upstream's /metrics, scraped over real loopback HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from asgi_server import serve_in_thread
from builders import client_config
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from scripted_upstream import Reply, Upstream

from integration_kit import ClientConfig, ManualClock, ResilientClient
from integration_kit.errors import CircuitOpenError, ServerError
from integration_kit.policies.config import BreakerPolicy, BudgetPolicy
from integration_kit.sim.scenarios import Scenario
from integration_kit.sim.upstream import serve_scenario
from integration_kit.telemetry.conventions import METRICS
from integration_kit.telemetry.prometheus import PrometheusHook


def config(base_url: str, **overrides: Any) -> ClientConfig:
    """A test integration with its breaker (open after two failures) and budget on: they are what is measured."""
    breaker = BreakerPolicy(failure_threshold=2, failure_rate_threshold=None, wait_in_open=30.0)
    return client_config(base_url, **{"breaker": breaker, "budget": BudgetPolicy(), **overrides})


def scrape(url: str, families: set[str] | None = None) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a /metrics page: (name, labels without empty ones) -> value; family names into ``families``."""
    response = httpx.get(url, timeout=5.0)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        if families is not None:
            families.add(family.name)
        for s in family.samples:
            samples[s.name, frozenset((k, v) for k, v in s.labels.items() if v)] = s.value
    return samples


def test_the_hook_serves_the_kits_metrics_on_metrics(upstream: Upstream) -> None:
    registry = CollectorRegistry()
    hook = PrometheusHook(registry=registry)
    with (
        ResilientClient(config(upstream.base_url), clock=ManualClock()) as client,
        serve_in_thread(hook.asgi_app()) as metrics_url,
    ):
        hook.instrument(client)
        upstream.script(Reply(503), Reply(200), Reply(503), Reply(503), Reply(503))
        client.get("/a")  # 503 then 200
        with pytest.raises((ServerError, CircuitOpenError)):
            client.get("/b")  # two 503s open the breaker; the third attempt is rejected
        families: set[str] = set()
        samples = scrape(metrics_url + "/metrics", families)

    partner = ("integration_kit_integration", "partner")
    attempt = {partner, ("http_request_method", "GET"), ("server_address", "127.0.0.1")}
    attempt.add(("server_port", str(upstream.port)))
    ok = frozenset({*attempt, ("http_response_status_code", "200")})
    failed = frozenset({*attempt, ("http_response_status_code", "503"), ("error_type", "503")})
    assert samples["http_client_request_duration_seconds_count", ok] == 1
    assert samples["http_client_request_duration_seconds_count", failed] == 3
    assert samples["http_client_request_duration_seconds_bucket", frozenset({*ok, ("le", "10.0")})] == 1
    success = frozenset({partner, ("http_request_method", "GET"), ("integration_kit_call_outcome", "success")})
    assert samples["integration_kit_call_duration_seconds_count", success] == 1
    assert samples["integration_kit_call_attempts_sum", success] == 2
    assert (
        samples[
            "integration_kit_retries_scheduled_total", frozenset({partner, ("integration_kit_retry_reason", "backoff")})
        ]
        == 3
    )
    rejected = frozenset({partner, ("integration_kit_rejection_reason", "circuit_open")})
    assert samples["integration_kit_calls_rejected_total", rejected] == 1
    opened = frozenset({partner, ("integration_kit_breaker_state", "open")})
    assert samples["integration_kit_breaker_state", opened] == 1
    assert (
        samples["integration_kit_breaker_state", frozenset({partner, ("integration_kit_breaker_state", "closed")})] == 0
    )
    assert samples["integration_kit_breaker_transitions_total", opened] == 1
    assert samples["integration_kit_budget_tokens", frozenset({partner})] > 0
    # Every metric of the conventions has the name the OpenTelemetry exporter would give it.
    assert {spec.prometheus.removesuffix("_total") for spec in METRICS} <= families


def test_two_hooks_on_separate_registries_do_not_collide() -> None:
    PrometheusHook(registry=CollectorRegistry())
    PrometheusHook(registry=CollectorRegistry())


def test_the_flaky_upstream_exposes_its_counts() -> None:
    scenario = Scenario.from_mapping({"name": "mixed", "phases": [{"duration": 60, "errors": {"503": 0.5}}]})
    with serve_scenario(scenario, seed=3, time_scale=50.0) as base, httpx.Client(base_url=base) as http:
        for _ in range(20):
            http.get("/orders", headers={"Idempotency-Key": "k1"})
        stats = http.get("/stats").json()
        samples = scrape(base + "/metrics")
    mixed = ("scenario", "mixed")
    for answer, n in stats["answers"].items():
        assert samples["flaky_upstream_requests_total", frozenset({mixed, ("answer", answer)})] == n
    assert samples["flaky_upstream_received_total", frozenset({mixed})] == 20
    assert samples["flaky_upstream_duplicate_idempotency_keys", frozenset({mixed})] == 1
    assert samples["flaky_upstream_scenario_time_seconds", frozenset({mixed})] > 0
