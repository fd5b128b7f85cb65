"""The OpenTelemetry hook's gRPC attempts and WebSocket metrics, pinned by the fifth mutation sweep (issue 29):
what the earlier sweeps' selection never reached (``_rpc_of``, the RPC branch of ``_start_attempt`` and
``_finish_attempt``, ``ws_record``).

- A gRPC channel's attempt (target ``grpc://`` or ``grpcs://``) is a span ``"package.Service/Method"`` with
  ``rpc.system``, ``rpc.service``, ``rpc.method`` and ``rpc.grpc.status_code``, and none of the HTTP attributes
  (``http.request.method``, its original, ``url.full``, ``http.request.resend_count``, ``http.response.status_code``);
  its other attributes (integration, attempt, server) stay.
- ``_rpc_of`` reads ``(service, method)`` only off a gRPC target with both parts.
- Every instrument has its convention's unit and description, each histogram its buckets.
- A WebSocket event reaches its OpenTelemetry instrument with the integration's label.
- A call whose first event is its rejection or its end still gets its span (named after the integration alone
  when rejected, with the rejection as attribute and event); the call span carries the call id, the method and
  the redacted target; a breaker transition becomes an event with its four attributes on the next call's span,
  and its new state is on the next attempt span; transitions keep being taken after one was reported.

The events are fed to the hook as a driver emits them (the end-to-end proofs over real channels are in
``tests/grpc/test_grpc_telemetry.py``, whose servers make each mutant cost seconds); SDK in-memory exporters.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.trace import SpanKind
from test_telemetry_otel import Otel

from integration_kit.engine.call import CallEngine
from integration_kit.events import (
    AttemptFinished,
    AttemptStarted,
    BreakerTransition,
    CallFinished,
    RejectedCall,
    RetryScheduled,
)
from integration_kit.policies.breaker import CircuitBreaker
from integration_kit.policies.budget import RetryBudget
from integration_kit.telemetry import conventions as c
from integration_kit.telemetry.otel import _rpc_of
from integration_kit.websocket.events import WsClosed

TARGET = "grpc://127.0.0.1:50051/shop.v1.Orders/Place"


@pytest.fixture
def sdk() -> Iterator[Otel]:
    o = Otel()
    yield o
    o.tracer_provider.shutdown()
    o.meter_provider.shutdown()


def _grpc_call(sdk: Otel, target: str = TARGET, method: str = "UNARY") -> None:
    hook = sdk.hook
    hook(AttemptStarted(1.0, "orders", 7, attempt=1, method=method, target=target, timeout=2.0, idempotency_key=None))
    hook(AttemptFinished(1.1, "orders", 7, 1, method, target, "status", 14, 0.1, "retryable"))
    hook(RetryScheduled(1.2, "orders", 7, attempt=1, delay=0.5, reason="status"))
    hook(AttemptStarted(2.0, "orders", 7, attempt=2, method=method, target=target, timeout=1.0, idempotency_key=None))
    hook(AttemptFinished(2.1, "orders", 7, 2, method, target, "status", 0, 0.1, "success"))
    hook(CallFinished(2.2, "orders", 7, method, target, True, "success", 0, 2, 1.2))


def test_a_grpc_attempt_follows_the_rpc_conventions(sdk: Otel) -> None:
    _grpc_call(sdk)
    attempts = sorted((s for s in sdk.spans() if s.kind is SpanKind.CLIENT), key=lambda s: s.attributes[c.ATTEMPT])
    assert [s.name for s in attempts] == ["shop.v1.Orders/Place", "shop.v1.Orders/Place"]
    first, second = (dict(s.attributes or {}) for s in attempts)
    for attributes in (first, second):
        assert attributes["rpc.system"] == "grpc"
        assert attributes["rpc.service"] == "shop.v1.Orders"
        assert attributes["rpc.method"] == "Place"
        assert attributes[c.INTEGRATION] == "orders"
        assert attributes[c.SERVER_ADDRESS] == "127.0.0.1"
        for http_only in (c.METHOD, c.URL_FULL, "http.request.method_original", c.RESEND_COUNT, c.STATUS_CODE):
            assert http_only not in attributes
    assert (first[c.ATTEMPT], second[c.ATTEMPT]) == (1, 2)
    assert (first["rpc.grpc.status_code"], second["rpc.grpc.status_code"]) == (14, 0)


def test_an_http_attempt_keeps_the_http_conventions(sdk: Otel) -> None:
    target = "http://127.0.0.1:8080/orders"
    hook = sdk.hook
    hook(AttemptStarted(1.0, "orders", 8, attempt=1, method="PURGE", target=target, timeout=2.0, idempotency_key=None))
    hook(AttemptFinished(1.1, "orders", 8, 1, "PURGE", target, "status", 503, 0.1, "retryable"))
    hook(CallFinished(1.2, "orders", 8, "PURGE", target, False, "ServerError", 503, 1, 0.2))
    [attempt] = [s for s in sdk.spans() if s.kind is SpanKind.CLIENT]
    attributes = dict(attempt.attributes or {})
    assert attempt.name == "PURGE"
    assert attributes[c.STATUS_CODE] == 503
    assert attributes["http.request.method_original"] == "PURGE"
    assert attributes[c.URL_FULL] == target
    assert "rpc.system" not in attributes
    assert "rpc.grpc.status_code" not in attributes


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("grpc://h:1/pkg.Svc/Method", ("pkg.Svc", "Method")),
        ("grpcs://h:443/pkg.Svc/Method", ("pkg.Svc", "Method")),
        ("grpc://h:1/pkg.Svc/Method/extra", ("pkg.Svc", "Method/extra")),
        ("grpc://h:1/pkg.Svc/Method://x", ("pkg.Svc", "Method://x")),  # the first separator only
        ("grpc://h:1/pkg.Svc", None),
        ("grpc://h:1/pkg.Svc/", None),
        ("grpc://h:1//Method", None),
        ("grpc://h:1", None),
        ("http://h:1/pkg.Svc/Method", None),
        ("xgrpc://h:1/pkg.Svc/Method", None),
        ("", None),
        (None, None),
    ],
)
def test_rpc_of_reads_service_and_method_off_a_grpc_target(target: str | None, expected: object) -> None:
    assert _rpc_of(target) == expected


def test_a_websocket_event_reaches_its_instrument(sdk: Otel) -> None:
    sdk.hook(WsClosed(1.0, "feed", 0, connection=1, code=1000, up_for=3.0))
    sdk.hook(WsClosed(1.0, "feed", 0, connection=2, code=1000, up_for=3.0))
    [point] = sdk.points("integration_kit.ws.connections")
    assert point.value == -2
    assert dict(point.attributes) == {c.INTEGRATION: "feed"}


HTTP = "http://127.0.0.1:8080/pay?token=%5BREDACTED%5D"


def test_a_call_rejected_at_once_has_a_span_named_after_the_integration(sdk: Otel) -> None:
    sdk.hook(RejectedCall(1.0, "billing", 3, reason="circuit_open"))
    sdk.hook(CallFinished(1.0, "billing", 3, "POST", HTTP, False, "CircuitOpenError", None, 0, 0.0))
    [call] = sdk.spans()
    attributes = dict(call.attributes or {})
    assert call.name == "billing"
    assert call.kind is SpanKind.INTERNAL
    assert attributes[c.REJECTION] == "circuit_open"
    assert attributes["integration_kit.call.id"] == 3
    assert c.METHOD not in attributes
    assert c.URL_FULL not in attributes
    [event] = [e for e in call.events if e.name == "call_rejected"]
    assert dict(event.attributes or {}) == {c.REJECTION: "circuit_open"}


def test_a_call_seen_only_at_its_end_still_has_its_span(sdk: Otel) -> None:
    sdk.hook(CallFinished(1.0, "billing", 4, "DELETE", HTTP, True, "success", 204, 1, 0.1))
    [call] = sdk.spans()
    attributes = dict(call.attributes or {})
    assert call.name == "billing DELETE"
    assert attributes["integration_kit.call.id"] == 4
    assert attributes[c.METHOD] == "DELETE"
    assert attributes[c.URL_FULL] == HTTP
    assert attributes[c.STATUS_CODE] == 204


def test_the_call_span_carries_the_method_and_the_redacted_target(sdk: Otel) -> None:
    hook = sdk.hook
    hook(AttemptStarted(1.0, "billing", 5, attempt=1, method="POST", target=HTTP, timeout=2.0, idempotency_key="k"))
    hook(AttemptFinished(1.1, "billing", 5, 1, "POST", HTTP, "status", 201, 0.1, "success"))
    hook(CallFinished(1.2, "billing", 5, "POST", HTTP, True, "success", 201, 1, 0.2))
    [call] = [s for s in sdk.spans() if s.kind is SpanKind.INTERNAL]
    attributes = dict(call.attributes or {})
    assert call.name == "billing POST"
    assert (attributes[c.METHOD], attributes[c.URL_FULL]) == ("POST", HTTP)
    assert attributes["integration_kit.call.id"] == 5


def test_a_breaker_transition_is_an_event_of_the_next_call_and_its_state_on_the_attempt(sdk: Otel) -> None:
    hook = sdk.hook
    for n, (old, new) in enumerate([("closed", "open"), ("open", "half_open")], start=1):
        hook(BreakerTransition(1.0, "billing", 0, breaker="billing", old=old, new=new, reason=f"why-{n}"))
        hook(
            AttemptStarted(2.0, "billing", n, attempt=1, method="GET", target=HTTP, timeout=None, idempotency_key=None)
        )
        hook(AttemptFinished(2.1, "billing", n, 1, "GET", HTTP, "status", 200, 0.1, "success"))
        hook(CallFinished(2.2, "billing", n, "GET", HTTP, True, "success", 200, 1, 0.2))
    calls = sorted((s for s in sdk.spans() if s.kind is SpanKind.INTERNAL), key=lambda s: s.start_time or 0)
    attempts = sorted((s for s in sdk.spans() if s.kind is SpanKind.CLIENT), key=lambda s: s.start_time or 0)
    assert [[dict(e.attributes or {}) for e in s.events if e.name == "breaker_transition"] for s in calls] == [
        [
            {
                "integration_kit.breaker.name": "billing",
                "integration_kit.breaker.from": "closed",
                c.BREAKER_STATE: "open",
                "integration_kit.breaker.reason": "why-1",
            }
        ],
        [
            {
                "integration_kit.breaker.name": "billing",
                "integration_kit.breaker.from": "open",
                c.BREAKER_STATE: "half_open",
                "integration_kit.breaker.reason": "why-2",
            }
        ],
    ]
    assert [dict(s.attributes or {})[c.BREAKER_STATE] for s in attempts] == ["open", "half_open"]


def test_every_instrument_has_its_unit_description_and_buckets(sdk: Otel) -> None:
    engine = CallEngine(name="billing", breaker=CircuitBreaker(name="billing"), budget=RetryBudget())
    hook = sdk.hook
    hook.instrument(engine)
    labels = {c.INTEGRATION: "billing"}
    hook.record_attempt(labels, 0.3)
    hook.record_call(labels, 1.0, 2)
    for spec in c.COUNTERS:
        hook.count(spec, labels)
    data = sdk.reader.get_metrics_data()
    assert data is not None
    metrics = {m.name: m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    specs = [c.HTTP_DURATION, c.CALL_DURATION, c.ATTEMPTS, c.BREAKER, c.BUDGET, *c.COUNTERS]
    assert {spec.name: (metrics[spec.name].unit, metrics[spec.name].description) for spec in specs} == {
        spec.name: (spec.unit, spec.description) for spec in specs
    }
    bounds = {
        c.HTTP_DURATION.name: c.DURATION_BUCKETS,
        c.CALL_DURATION.name: c.CALL_DURATION_BUCKETS,
        c.ATTEMPTS.name: c.ATTEMPT_BUCKETS,
    }
    for name, buckets in bounds.items():
        [point] = metrics[name].data.data_points
        assert tuple(point.explicit_bounds) == tuple(buckets), name
