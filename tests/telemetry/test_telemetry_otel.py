"""The OpenTelemetry hook over a real loopback server: span tree, names and attributes against the HTTP client
semantic conventions, trace context in each attempt's headers, metrics from the SDK's in-memory reader, and the
combination with opentelemetry-instrumentation-httpx (no duplicate, no orphan span)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from builders import client_config
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from scripted_upstream import Connect, Reply, Upstream

from integration_kit import ManualClock, ResilientClient
from integration_kit.errors import CircuitOpenError, DeadlineExceeded, ServerError
from integration_kit.policies.config import BreakerPolicy, RetryPolicy
from integration_kit.telemetry.conventions import DURATION_BUCKETS
from integration_kit.telemetry.otel import OpenTelemetryHook


class Otel:
    """An SDK tracer and meter provider with in-memory exporters, and a hook on them."""

    def __init__(self, **hook_options: Any) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.hook = OpenTelemetryHook(
            tracer_provider=self.tracer_provider,
            meter_provider=self.meter_provider,
            propagator=TraceContextTextMapPropagator(),
            **hook_options,
        )

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        found = []
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found

    def value(self, name: str, **attributes: Any) -> Any:
        """The sum of a counter's points (or count of a histogram's) whose attributes include ``attributes``."""
        total = 0
        for point in self.points(name):
            if all(point.attributes.get(k) == v for k, v in attributes.items()):
                total += getattr(point, "count", None) or getattr(point, "value", 0)
        return total


@pytest.fixture
def otel() -> Iterator[Otel]:
    o = Otel()
    yield o
    o.tracer_provider.shutdown()
    o.meter_provider.shutdown()


config = client_config


def tree(spans: list[ReadableSpan]) -> tuple[ReadableSpan, list[ReadableSpan]]:
    """The one call span and its attempt spans, in order; every span belongs to the tree."""
    calls = [s for s in spans if s.kind is SpanKind.INTERNAL]
    assert len(calls) == 1, [s.name for s in spans]
    call = calls[0]
    attempts = sorted(
        (s for s in spans if s.kind is SpanKind.CLIENT), key=lambda s: s.attributes["integration_kit.attempt"]
    )
    assert len(attempts) + 1 == len(spans)
    for a in attempts:
        assert a.parent is not None
        assert a.parent.span_id == call.context.span_id
        assert a.context.trace_id == call.context.trace_id
    return call, attempts


def test_a_call_with_retries(connect: Connect, upstream: Upstream, otel: Otel) -> None:
    client = connect(config(upstream.base_url), clock=ManualClock())
    otel.hook.instrument(client)
    upstream.script(Reply(503), Reply(503), Reply(200))
    assert client.get("/orders", params={"page": "2"}).status_code == 200

    call, attempts = tree(otel.spans())
    assert call.name == "partner GET"
    assert call.attributes["integration_kit.integration"] == "partner"
    assert call.attributes["integration_kit.call.attempts"] == 3
    assert call.attributes["integration_kit.call.outcome"] == "success"
    assert call.status.status_code is StatusCode.UNSET
    assert [e.name for e in call.events] == ["retry_scheduled", "retry_scheduled"]
    assert call.events[0].attributes["integration_kit.retry.delay"] == pytest.approx(0.1)

    assert "integration_kit.breaker.state" not in attempts[0].attributes  # no breaker configured
    url = f"{upstream.base_url}/orders?page=2"
    for n, span in enumerate(attempts, start=1):
        a = span.attributes
        assert span.name == "GET"
        assert a["http.request.method"] == "GET"
        assert a["server.address"] == "127.0.0.1"
        assert a["server.port"] == upstream.port
        assert a["url.full"] == url
        assert a["integration_kit.attempt"] == n
        assert a.get("http.request.resend_count") == (n - 1 if n > 1 else None)
    for span, delay in zip(attempts[:2], (0.1, 0.2), strict=True):
        assert span.attributes["http.response.status_code"] == 503
        assert span.attributes["error.type"] == "503"
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes["integration_kit.retry.decision"] == "retry"
        assert span.attributes["integration_kit.retry.reason"] == "backoff"
        assert span.attributes["integration_kit.retry.delay"] == pytest.approx(delay)
    last = attempts[2]
    assert last.attributes["http.response.status_code"] == 200
    assert "error.type" not in last.attributes
    assert last.status.status_code is StatusCode.UNSET

    # Each attempt carried its own span's trace context.
    sent = [r.headers["traceparent"].rsplit("-", 1)[0] for r in upstream.requests]
    expected = [f"00-{s.context.trace_id:032x}-{s.context.span_id:016x}" for s in attempts]
    assert sent == expected

    # Metrics: one histogram point per status, the conventions' buckets, the kit's counters.
    points = {p.attributes.get("http.response.status_code"): p for p in otel.points("http.client.request.duration")}
    assert points[503].count == 2
    assert points[200].count == 1
    assert tuple(points[200].explicit_bounds) == DURATION_BUCKETS
    assert dict(points[503].attributes) == {
        "integration_kit.integration": "partner",
        "http.request.method": "GET",
        "server.address": "127.0.0.1",
        "server.port": upstream.port,
        "http.response.status_code": 503,
        "error.type": "503",
    }
    assert otel.value("integration_kit.call.duration", **{"integration_kit.call.outcome": "success"}) == 1
    (attempts_point,) = otel.points("integration_kit.call.attempts")
    assert attempts_point.sum == 3
    assert otel.value("integration_kit.retries.scheduled", **{"integration_kit.retry.reason": "backoff"}) == 2


def test_the_call_span_is_a_child_of_the_callers_span(upstream: Upstream, otel: Otel) -> None:
    tracer = otel.tracer_provider.get_tracer("test")
    with (
        ResilientClient(config(upstream.base_url), hooks=[otel.hook]) as client,
        tracer.start_as_current_span("job") as job,
    ):
        client.get("/x")
    spans = {s.name: s for s in otel.spans()}
    assert spans["partner GET"].parent.span_id == job.get_span_context().span_id
    assert trace.get_current_span() is trace.INVALID_SPAN  # nothing left attached


def test_a_call_rejected_by_the_breaker(upstream: Upstream, otel: Otel) -> None:
    policy = BreakerPolicy(failure_threshold=1, failure_rate_threshold=None, wait_in_open=30.0)
    with ResilientClient(
        config(upstream.base_url, breaker=policy, retry=RetryPolicy.disabled()), clock=ManualClock()
    ) as client:
        otel.hook.instrument(client)
        upstream.script(Reply(503))
        with pytest.raises(ServerError):
            client.get("/x")
        assert otel.value("integration_kit.breaker.state", **{"integration_kit.breaker.state": "open"}) == 1
        otel.exporter.clear()
        with pytest.raises(CircuitOpenError):
            client.get("/x")
    (call,) = otel.spans()  # no attempt span: the network was never touched
    assert call.kind is SpanKind.INTERNAL
    assert call.attributes["integration_kit.rejection.reason"] == "circuit_open"
    assert call.attributes["error.type"] == "CircuitOpenError"
    assert call.attributes["integration_kit.call.attempts"] == 0
    assert call.status.status_code is StatusCode.ERROR
    assert [e.name for e in call.events] == ["call_rejected"]
    assert upstream.count == 1
    assert otel.value("integration_kit.calls.rejected", **{"integration_kit.rejection.reason": "circuit_open"}) == 1
    assert otel.value("integration_kit.breaker.transitions", **{"integration_kit.breaker.state": "open"}) == 1
    assert otel.value("integration_kit.breaker.state", **{"integration_kit.breaker.state": "closed"}) == 0


def test_a_breaker_transition_is_an_event_on_the_call_that_caused_it(upstream: Upstream, otel: Otel) -> None:
    policy = BreakerPolicy(failure_threshold=1, failure_rate_threshold=None, wait_in_open=30.0)
    with ResilientClient(
        config(upstream.base_url, breaker=policy, retry=RetryPolicy.disabled()), clock=ManualClock()
    ) as client:
        otel.hook.instrument(client)
        upstream.script(Reply(503))
        with pytest.raises(ServerError):
            client.get("/x")
    call, (attempt,) = tree(otel.spans())
    (event,) = call.events
    assert event.name == "breaker_transition"
    assert event.attributes["integration_kit.breaker.from"] == "closed"
    assert event.attributes["integration_kit.breaker.state"] == "open"
    assert attempt.attributes["integration_kit.breaker.state"] == "closed"  # as it was when the attempt started
    assert "integration_kit.budget.tokens" not in attempt.attributes  # this client has no budget


def test_a_call_past_its_deadline(upstream: Upstream, otel: Otel) -> None:
    with ResilientClient(config(upstream.base_url, deadline=0.3, timeouts=10.0)) as client:  # real clock
        otel.hook.instrument(client)
        upstream.script(Reply(hang=True))
        with pytest.raises(DeadlineExceeded):
            client.get("/slow")
    call, (attempt,) = tree(otel.spans())
    assert call.attributes["error.type"] == "DeadlineExceeded"
    assert call.status.status_code is StatusCode.ERROR
    assert attempt.attributes["error.type"] == "read_timeout"
    assert attempt.attributes["integration_kit.attempt.timeout"] == pytest.approx(0.3, abs=0.05)
    assert attempt.attributes["integration_kit.retry.decision"] == "refused"
    assert attempt.attributes["integration_kit.retry.refusal"] == "deadline"
    assert otel.value("integration_kit.deadline.exceeded") == 1
    assert otel.value("integration_kit.retries.refused", **{"integration_kit.retry.refusal": "deadline"}) == 1
    (point,) = otel.points("http.client.request.duration")
    assert point.attributes["error.type"] == "read_timeout"
    assert "http.response.status_code" not in point.attributes


def test_beside_opentelemetry_instrumentation_httpx(upstream: Upstream, otel: Otel) -> None:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    instrumentor = HTTPXClientInstrumentor()
    instrumentor.instrument(tracer_provider=otel.tracer_provider)
    try:
        # Control: the instrumentation does trace the kit's client when our hook is absent.
        with ResilientClient(config(upstream.base_url), clock=ManualClock()) as bare:
            bare.get("/control")
        assert [s.kind for s in otel.spans()] == [SpanKind.CLIENT]
        otel.exporter.clear()

        tracer = otel.tracer_provider.get_tracer("test")
        with (
            ResilientClient(config(upstream.base_url), clock=ManualClock()) as client,
            tracer.start_as_current_span("job"),
        ):
            otel.hook.instrument(client)
            upstream.script(Reply(503), Reply(200))
            client.get("/x")
    finally:
        instrumentor.uninstrument()
    spans = otel.spans()
    ids = {s.context.span_id for s in spans}
    assert all(s.parent is None or s.parent.span_id in ids for s in spans)  # no orphan
    assert [s.name for s in spans if s.parent is None] == ["job"]
    client_spans = [s for s in spans if s.kind is SpanKind.CLIENT]
    assert len(client_spans) == 2  # one per attempt, not two
    assert {s.instrumentation_scope.name for s in client_spans} == {"integration_kit"}
    assert [r.headers["traceparent"].split("-")[2] for r in upstream.requests[-2:]] == [
        f"{s.context.span_id:016x}" for s in sorted(client_spans, key=lambda s: s.start_time)
    ]


def test_trace_context_reaches_the_server_from_every_driver(connect: Connect, upstream: Upstream, otel: Otel) -> None:
    client = connect(config(upstream.base_url), clock=ManualClock())
    otel.hook.instrument(client)
    upstream.script(Reply(503), Reply(200))
    client.get("/x")
    _, attempts = tree(otel.spans())
    assert [r.headers["traceparent"].split("-")[2] for r in upstream.requests] == [
        f"{s.context.span_id:016x}" for s in attempts
    ]


def test_the_hook_works_on_the_simulator_and_other_engine_drivers(otel: Otel) -> None:
    from integration_kit.sim.scenarios import Scenario
    from integration_kit.sim.simulate import simulate

    scenario = Scenario.from_mapping({"name": "blip", "phases": [{"duration": 5, "errors": {"503": 0.3}}]})
    result = simulate(scenario, rate=20.0, hooks=[otel.hook], seed=1)
    spans = otel.spans()
    calls = [s for s in spans if s.kind is SpanKind.INTERNAL]
    assert len(calls) == result.summary.calls
    ids = {s.context.span_id for s in calls}
    assert all(s.parent is not None and s.parent.span_id in ids for s in spans if s.kind is SpanKind.CLIENT)
    assert otel.value("integration_kit.call.duration") == len(calls)


def test_importing_the_package_needs_no_telemetry_library() -> None:
    code = (
        "import sys\n"
        "for name in ('opentelemetry', 'prometheus_client', 'structlog'):\n"
        "    sys.modules[name] = None\n"
        "import integration_kit, integration_kit.telemetry, integration_kit.telemetry.alerts\n"
        "import integration_kit.telemetry.dashboard, integration_kit.sim.upstream, integration_kit.events\n"
        "import integration_kit.telemetry.conventions\n"
        "try:\n"
        "    import integration_kit.telemetry.otel\n"
        "except ImportError as exc:\n"
        "    assert 'otel' in str(exc), exc\n"
        "else:\n"
        "    raise SystemExit('imported without opentelemetry')\n"
        "assert not any(m.startswith(('opentelemetry', 'prometheus_client')) for m in sys.modules if sys.modules[m])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_a_sampled_out_call_propagates_its_context_and_records_nothing(upstream: Upstream) -> None:
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    hook = OpenTelemetryHook(tracer_provider=provider, propagator=TraceContextTextMapPropagator(), metrics=False)
    with ResilientClient(config(upstream.base_url), clock=ManualClock(), hooks=[hook]) as client:
        upstream.script(Reply(503), Reply(200))
        client.get("/x")
    assert exporter.get_finished_spans() == ()
    parents = [r.headers["traceparent"] for r in upstream.requests]
    assert len(set(parents)) == 1  # both attempts carry the (unsampled) call's context
    assert int(parents[0].rsplit("-", 1)[1], 16) & 1 == 0  # not sampled
    assert hook._calls == {}


def test_head_sampling_off_keeps_every_metric(upstream: Upstream) -> None:
    """The common production setup: traces head-sampled (here: none kept), metrics on every call."""
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    hook = OpenTelemetryHook(tracer_provider=provider, meter_provider=MeterProvider(metric_readers=[reader]))
    with ResilientClient(config(upstream.base_url), clock=ManualClock(), hooks=[hook]) as client:
        upstream.script(Reply(503), Reply(200))
        client.get("/x")
    assert exporter.get_finished_spans() == ()
    data = reader.get_metrics_data()
    counts = {
        metric.name: sum(getattr(p, "count", 0) or getattr(p, "value", 0) for p in metric.data.data_points)
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
    }
    assert counts["http.client.request.duration"] == 2  # both attempts
    assert counts["integration_kit.call.duration"] == 1


def test_abandoned_calls_are_ended_rather_than_kept(otel: Otel, monkeypatch: pytest.MonkeyPatch) -> None:
    from integration_kit.engine.call import CallEngine
    from integration_kit.telemetry import otel as otel_module

    monkeypatch.setattr(otel_module, "MAX_OPEN_CALLS", 2)
    engine = CallEngine(name="partner", hooks=[otel.hook])
    for _ in range(3):  # a driver that starts an attempt and is cancelled: no call_finished ever comes
        calls = engine.call("GET", "http://127.0.0.1:9/x")
        next(calls)
        calls.close()
    assert len(otel.hook._calls) == 2
    ended = [s for s in otel.spans() if s.kind is SpanKind.INTERNAL]
    assert [s.attributes["integration_kit.call.outcome"] for s in ended] == ["abandoned"]


class HeaderWitness:
    """Another hook that wraps attempts: it sees the headers after the trace context was injected."""

    def __init__(self) -> None:
        self.seen: list[str | None] = []
        self.active = False

    def __call__(self, event: Any) -> None:
        pass

    def wrap_attempt(self, headers: Any) -> Any:
        from contextlib import contextmanager

        @contextmanager
        def scope() -> Iterator[None]:
            self.active = True
            self.seen.append(headers.get("traceparent"))
            try:
                yield
            finally:
                self.active = False

        return scope()


def test_several_hooks_can_wrap_each_attempt(upstream: Upstream, otel: Otel) -> None:
    witness = HeaderWitness()
    with ResilientClient(config(upstream.base_url), clock=ManualClock(), hooks=[otel.hook, witness]) as client:
        upstream.script(Reply(503), Reply(200))
        client.get("/x")
    _, attempts = tree(otel.spans())
    assert witness.seen == [r.headers["traceparent"] for r in upstream.requests]
    assert [t.split("-")[2] for t in witness.seen if t] == [f"{s.context.span_id:016x}" for s in attempts]
    assert witness.seen[0] is not None
    assert len(set(witness.seen)) == 2
    assert not witness.active


def test_beside_the_httpx_instrumentation_on_every_driver(connect: Connect, upstream: Upstream, otel: Otel) -> None:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    instrumentor = HTTPXClientInstrumentor()
    instrumentor.instrument(tracer_provider=otel.tracer_provider)
    try:
        client = connect(config(upstream.base_url), clock=ManualClock())
        otel.hook.instrument(client)
        upstream.script(Reply(503), Reply(200))
        client.get("/x")
    finally:
        instrumentor.uninstrument()
    call, attempts = tree(otel.spans())  # the call span and one attempt span each: nothing from the instrumentation
    assert call.parent is None
    assert len(attempts) == 2


def test_a_retry_refused_by_the_budget(upstream: Upstream, otel: Otel) -> None:
    from integration_kit.errors import BudgetExhausted
    from integration_kit.policies.config import BudgetPolicy

    with ResilientClient(config(upstream.base_url, budget=BudgetPolicy(max_tokens=2.0)), clock=ManualClock()) as client:
        otel.hook.instrument(client)
        upstream.script(Reply(503))
        with pytest.raises(BudgetExhausted):
            client.get("/x")
    call, (attempt,) = tree(otel.spans())
    assert attempt.attributes["integration_kit.budget.tokens"] == 1.0  # when the retry was refused
    assert attempt.attributes["integration_kit.retry.decision"] == "refused"
    assert attempt.attributes["integration_kit.retry.refusal"] == "budget"
    assert [e.name for e in call.events] == ["budget_exhausted"]
    assert call.events[0].attributes["integration_kit.budget.tokens"] == 1.0
    assert call.attributes["error.type"] == "BudgetExhausted"
    assert otel.value("integration_kit.retries.refused", **{"integration_kit.retry.refusal": "budget"}) == 1
    assert otel.value("integration_kit.budget.tokens") == 1.0


def test_transitions_outside_any_call_do_not_pile_up(otel: Otel) -> None:
    from integration_kit.events import BreakerTransition
    from integration_kit.telemetry.otel import MAX_PENDING_TRANSITIONS

    for n in range(100):
        otel.hook(BreakerTransition(float(n), "partner", 0, "partner", "closed", "open", "reset"))
    assert len(otel.hook._pending.get()) == MAX_PENDING_TRANSITIONS
    assert otel.value("integration_kit.breaker.transitions") == 100


def test_a_route_names_spans_and_labels_metrics_with_the_path_template(upstream: Upstream) -> None:
    def route(url: str) -> str | None:
        return "/orders/{id}" if "/orders/" in url else None

    o = Otel(route=route)
    try:
        with ResilientClient(config(upstream.base_url), clock=ManualClock(), hooks=[o.hook]) as client:
            client.get("/orders/42")
            client.get("/orders/43")
        _, attempts = tree(o.spans()[:2])
        assert attempts[0].name == "GET /orders/{id}"
        assert attempts[0].attributes["url.template"] == "/orders/{id}"
        (point,) = o.points("http.client.request.duration")  # one series for both ids
        assert point.count == 2
        assert point.attributes["url.template"] == "/orders/{id}"
    finally:
        o.tracer_provider.shutdown()
        o.meter_provider.shutdown()
