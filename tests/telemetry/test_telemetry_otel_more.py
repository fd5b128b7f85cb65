"""The OpenTelemetry hook, pinned by the mutation sweep of issue 29 (``telemetry/otel.py``): a method outside the
known set, the call span's status and parent, the last attempt's retry decision, HTTP instrumentation suppressed
inside an attempt, the hook's own propagator over the global one, ``instrument()`` on an engine, and the labels
on the attempts histogram and the budget gauge. Over the loopback upstream, with the SDK's in-memory exporters.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager

import pytest
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.utils import _SUPPRESS_HTTP_INSTRUMENTATION_KEY
from opentelemetry.propagators.composite import CompositePropagator
from scripted_upstream import Reply, Upstream
from test_telemetry_otel import Otel, config, otel  # noqa: F401 - the fixture that sdk wraps

from integration_kit import ManualClock, ResilientClient
from integration_kit.errors import ClientError, UnsafeRequest
from integration_kit.policies.config import BudgetPolicy
from integration_kit.telemetry import conventions as c


@pytest.fixture
def sdk(otel: Otel) -> Otel:  # noqa: F811 - the imported fixture, by name
    """The SDK providers and the hook of test_telemetry_otel."""
    return otel


def _client(upstream: Upstream, sdk: Otel) -> ResilientClient:
    return ResilientClient(config(upstream.base_url), clock=ManualClock(), hooks=[sdk.hook])


def test_a_method_outside_the_known_set_is_other_with_its_original(upstream: Upstream, sdk: Otel) -> None:
    with _client(upstream, sdk) as client:
        client.request("PURGE", "/cache")
        client.get("/plain")
    purge, get = (s for s in sdk.spans() if s.kind is trace.SpanKind.CLIENT)
    assert purge.attributes is not None
    assert get.attributes is not None
    assert (purge.attributes[c.METHOD], purge.attributes["http.request.method_original"]) == ("_OTHER", "PURGE")
    assert get.attributes[c.METHOD] == "GET"
    assert "http.request.method_original" not in get.attributes


def test_the_call_span_has_the_status_and_the_current_parent(upstream: Upstream, sdk: Otel) -> None:
    tracer = sdk.tracer_provider.get_tracer("test")
    with _client(upstream, sdk) as client, tracer.start_as_current_span("checkout") as outer:
        client.get("/ok")
    [call] = [s for s in sdk.spans() if s.kind is trace.SpanKind.INTERNAL and s.name != "checkout"]
    assert call.attributes is not None
    assert call.attributes[c.STATUS_CODE] == 200
    assert call.parent is not None
    assert call.parent.span_id == outer.get_span_context().span_id


def test_a_failed_call_without_a_refusal_ends_its_attempt_with_decision_none(upstream: Upstream, sdk: Otel) -> None:
    upstream.script(Reply(400))
    with _client(upstream, sdk) as client, pytest.raises(ClientError):
        client.get("/bad")
    [attempt] = [s for s in sdk.spans() if s.kind is trace.SpanKind.CLIENT]
    assert attempt.attributes is not None
    assert attempt.attributes[c.RETRY_DECISION] == "none"


class SeesContext:
    """A hook after the OpenTelemetry one that records what the attempt's context holds."""

    def __init__(self) -> None:
        self.suppressed: list[object] = []

    def __call__(self, event: object) -> None:
        """Events are not needed here."""

    @contextmanager
    def wrap_attempt(self, headers: MutableMapping[str, str]) -> Iterator[None]:
        self.suppressed.append(otel_context.get_value(_SUPPRESS_HTTP_INSTRUMENTATION_KEY))
        yield


def test_http_instrumentation_is_suppressed_inside_an_attempt(upstream: Upstream, sdk: Otel) -> None:
    probe = SeesContext()
    with ResilientClient(config(upstream.base_url), clock=ManualClock(), hooks=[sdk.hook, probe]) as client:
        client.get("/x")
    assert probe.suppressed == [True]
    assert otel_context.get_value(_SUPPRESS_HTTP_INSTRUMENTATION_KEY) is None  # and restored after


def test_the_hooks_own_propagator_wins_over_the_global_one(upstream: Upstream, sdk: Otel) -> None:
    previous = propagate.get_global_textmap()
    propagate.set_global_textmap(CompositePropagator([]))  # the global one injects nothing
    try:
        with _client(upstream, sdk) as client:
            client.get("/x")
    finally:
        propagate.set_global_textmap(previous)
    assert "traceparent" in upstream.requests[0].headers


def test_instrument_takes_an_engine_and_labels_the_gauges_and_histograms(upstream: Upstream, sdk: Otel) -> None:
    with ResilientClient(config(upstream.base_url, budget=BudgetPolicy()), clock=ManualClock()) as client:
        sdk.hook.instrument(client.engine)
        client.get("/x")
    [attempts] = sdk.points(c.ATTEMPTS.name)
    assert attempts.attributes[c.INTEGRATION] == "partner"
    tokens = sdk.points(c.BUDGET.name)
    assert tokens
    assert {p.attributes[c.INTEGRATION] for p in tokens} == {"partner"}


class SlowAfterAttempts:
    """A hook after the OpenTelemetry one that takes 50 ms over each finished attempt (real time is measured)."""

    def __init__(self) -> None:
        self.finished_at: list[int] = []

    def __call__(self, event: object) -> None:
        if getattr(event, "kind", "") == "attempt_finished":
            self.finished_at.append(time.time_ns())
            time.sleep(0.05)


def test_an_attempt_span_ends_when_the_attempt_finished_not_when_the_next_step_was_chosen(
    upstream: Upstream, sdk: Otel
) -> None:
    slow = SlowAfterAttempts()
    upstream.script(Reply(503), Reply(200))
    with ResilientClient(config(upstream.base_url), clock=ManualClock(), hooks=[sdk.hook, slow]) as client:
        client.get("/x")
    first = next(s for s in sdk.spans() if s.kind is trace.SpanKind.CLIENT)
    assert first.end_time is not None
    assert first.end_time <= slow.finished_at[0]


def test_a_hook_without_traces_leaves_the_context_alone(upstream: Upstream, caplog: pytest.LogCaptureFixture) -> None:
    """Its attempt scope has nothing to make current, and nothing to detach on the way out (no error logged)."""
    quiet = Otel(traces=False)
    try:
        with ResilientClient(config(upstream.base_url), clock=ManualClock(), hooks=[quiet.hook]) as client:
            client.get("/x")
    finally:
        quiet.tracer_provider.shutdown()
        quiet.meter_provider.shutdown()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "traceparent" not in upstream.requests[0].headers


@pytest.mark.parametrize("retried", [False, True], ids=["first-attempt", "after-a-retry"])
def test_an_attempt_ended_by_a_refused_redirect_ends_after_it_started(
    upstream: Upstream, sdk: Otel, retried: bool
) -> None:
    upstream.script(*[Reply(503)] * retried, Reply(302, headers={"Location": "http://partner.example/landing"}))
    cfg = config(upstream.base_url, follow_redirects=True)
    with ResilientClient(cfg, clock=ManualClock(), hooks=[sdk.hook]) as client, pytest.raises(UnsafeRequest):
        client.get("/start")
    attempts = [s for s in sdk.spans() if s.kind is trace.SpanKind.CLIENT]
    assert len(attempts) == 1 + retried
    for attempt in attempts:
        assert attempt.start_time is not None
        assert attempt.end_time is not None
        assert attempt.end_time >= attempt.start_time


def test_the_fast_path_leaves_only_the_attempts_histogram_out(upstream: Upstream) -> None:
    """Head sampling off and ``attempts_histogram=False``: every other metric is recorded, on every attempt."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    from integration_kit.telemetry.otel import OpenTelemetryHook

    reader = InMemoryMetricReader()
    hook = OpenTelemetryHook(
        tracer_provider=TracerProvider(sampler=ALWAYS_OFF),
        meter_provider=MeterProvider(metric_readers=[reader]),
        attempts_histogram=False,
    )
    with ResilientClient(config(upstream.base_url), clock=ManualClock(), hooks=[hook]) as client:
        upstream.script(Reply(503), Reply(200))
        client.get("/x")
    counts = {
        metric.name: sum(getattr(p, "count", 0) or getattr(p, "value", 0) for p in metric.data.data_points)
        for rm in reader.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
    }
    assert counts[c.HTTP_DURATION.name] == 2
    assert counts[c.CALL_DURATION.name] == 1
    assert counts[c.RETRIES_SCHEDULED.name] == 1
    assert c.ATTEMPTS.name not in counts
