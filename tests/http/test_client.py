"""The clients against a real HTTP server on 127.0.0.1, each scenario run by the sync client and by the async
client on asyncio and on trio (the ``connect`` fixture). Backoff waits run on a ManualClock, so nothing sleeps
except where real time is the thing under test (timeouts and the deadline)."""

from __future__ import annotations

import logging
import re
import time
import traceback
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from builders import client_config
from scripted_upstream import Connect, Reply, Upstream

from integration_kit import BearerAuth, ClientConfig, HeaderAuth, ManualClock, Recorder
from integration_kit.errors import (
    AuthError,
    CircuitOpenError,
    ClientError,
    ConfigurationError,
    ConnectError,
    DeadlineExceeded,
    IntegrationError,
    InvalidResponse,
    RateLimited,
    ReadTimeout,
    ResponseTooLarge,
    RetriesExhausted,
    ServerError,
    UnsafeRequest,
)
from integration_kit.events import AttemptStarted, LoggingHook, RetryScheduled
from integration_kit.policies.breaker import CircuitState
from integration_kit.policies.config import BreakerPolicy, RetryPolicy, Timeouts

config = client_config


# -- retries ------------------------------------------------------------------------------------------------------


def test_503_then_success(connect: Connect, upstream: Upstream) -> None:
    clock, recorder = ManualClock(), Recorder()
    client = connect(config(upstream.base_url), clock=clock, hooks=[recorder])
    upstream.script(Reply(503), Reply(200, body=b'{"ok": true}'))
    response = client.get("/orders")
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert upstream.count == 2
    assert clock.now() == pytest.approx(0.1)  # one backoff wait, taken on the manual clock
    summary = recorder.summary()
    assert (summary.calls, summary.attempts, summary.retries, summary.success_rate) == (1, 2, 1, 1.0)


def test_retry_after_in_seconds(connect: Connect, upstream: Upstream) -> None:
    clock, recorder = ManualClock(), Recorder()
    client = connect(config(upstream.base_url), clock=clock, hooks=[recorder])
    upstream.script(Reply(429, headers={"Retry-After": "2"}), Reply(200))
    assert client.get("/x").status_code == 200
    (retry,) = recorder.of(RetryScheduled)
    assert (retry.delay, retry.reason) == (2.0, "retry_after")  # type: ignore[attr-defined]
    assert clock.now() == pytest.approx(2.0)


def test_retry_after_as_http_date_is_measured_from_the_response_date(connect: Connect, upstream: Upstream) -> None:
    clock, recorder = ManualClock(), Recorder()
    client = connect(config(upstream.base_url), clock=clock, hooks=[recorder])
    sent = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)  # a server clock far from ours: only the difference counts
    headers = {
        "Date": format_datetime(sent, usegmt=True),
        "Retry-After": format_datetime(sent + timedelta(seconds=7), usegmt=True),
    }
    upstream.script(Reply(503, headers=headers), Reply(200))
    assert client.get("/x").status_code == 200
    (retry,) = recorder.of(RetryScheduled)
    assert (retry.delay, retry.reason) == (7.0, "retry_after")  # type: ignore[attr-defined]


def test_retry_after_is_never_cut_short_by_the_policy_or_the_deadline(connect: Connect, upstream: Upstream) -> None:
    """A request is never sent before the partner's Retry-After: a longer hint ends the call with RateLimited."""
    clock, recorder = ManualClock(), Recorder()
    policy = RetryPolicy(max_attempts=3, base_delay=0.1, jitter="none", max_retry_after=1.5)
    client = connect(config(upstream.base_url, retry=policy, deadline=5.0), clock=clock, hooks=[recorder])
    upstream.script(Reply(429, headers={"Retry-After": "1"}), Reply(200))
    assert client.get("/x").status_code == 200
    assert recorder.of(RetryScheduled)[0].delay == 1.0  # type: ignore[attr-defined]

    upstream.script(Reply(429, headers={"Retry-After": "120"}))
    before, seen = clock.now(), upstream.count
    with pytest.raises(RateLimited) as too_long:
        client.get("/x")
    assert too_long.value.retry_after == 120.0
    assert upstream.count == seen + 1
    assert clock.now() == before  # not sent again after the cap, seconds before the partner asked

    strict = connect(config(upstream.base_url, deadline=5.0), clock=clock)
    upstream.script(Reply(503, headers={"Retry-After": "30"}))
    seen = upstream.count
    with pytest.raises(RateLimited) as caught:
        strict.get("/x")
    assert caught.value.retry_after == 30.0
    assert upstream.count == seen + 1
    assert clock.now() == before  # failed at once instead of sleeping into certain failure


def test_read_timeout_then_success(connect: Connect, upstream: Upstream) -> None:
    clock = ManualClock()
    client = connect(
        config(upstream.base_url, timeouts=Timeouts(connect=1.0, read=0.2, write=1.0, pool=1.0)), clock=clock
    )
    upstream.script(Reply(hang=True), Reply(200, body=b'{"second": true}'))
    assert client.get("/slow").json() == {"second": True}
    assert upstream.count == 2


def test_connection_refused_is_retried_then_gives_up(connect: Connect, refused_url: str) -> None:
    clock, recorder = ManualClock(), Recorder()
    client = connect(config(refused_url), clock=clock, hooks=[recorder])
    with pytest.raises(RetriesExhausted) as caught:
        client.post("/orders", json={"id": 1})  # never reached the server: safe to retry even without a key
    assert isinstance(caught.value.last_error, ConnectError)
    assert [a.outcome for a in caught.value.attempts] == ["connect_error"] * 3
    assert recorder.summary().attempts == 3
    with pytest.raises(ConnectError):
        client.get("/x", retry=False)


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_client_errors_are_never_retried_nor_counted_by_the_breaker(
    connect: Connect, upstream: Upstream, status: int
) -> None:
    breaker = BreakerPolicy(failure_threshold=1, failure_rate_threshold=None)
    client = connect(config(upstream.base_url, breaker=breaker), clock=ManualClock())
    upstream.script(Reply(status, body=b'{"error": "nope"}'), Reply(status))
    for _ in range(2):
        with pytest.raises(ClientError) as caught:
            client.get("/x")
        assert caught.value.status == status
        assert isinstance(caught.value, AuthError) == (status == 401)
    assert upstream.count == 2
    assert client.breaker.state is CircuitState.CLOSED
    assert client.breaker.metrics().failures == 0


def test_error_carries_status_redacted_headers_and_a_truncated_snippet(connect: Connect, upstream: Upstream) -> None:
    client = connect(config(upstream.base_url, retry=RetryPolicy.disabled()))
    upstream.script(Reply(500, headers={"Set-Cookie": "session=abc", "X-Request-Id": "r-1"}, body=b"e" * 5000))
    with pytest.raises(ServerError) as caught:
        client.get("/x")
    error = caught.value
    assert error.status == 500
    assert error.headers["set-cookie"] == "***"
    assert error.headers["x-request-id"] == "r-1"
    assert error.body_snippet == "e" * 500
    assert "partner" in str(error)
    assert f"{upstream.base_url}/x" in str(error)


# -- the deadline -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("replies", [1, 3])
def test_a_hanging_server_never_outlives_the_deadline(connect: Connect, upstream: Upstream, replies: int) -> None:
    deadline = 0.4
    client = connect(config(upstream.base_url, deadline=deadline, timeouts=10.0))  # the real clock, on purpose
    upstream.script(*[Reply(hang=True)] * replies)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        client.get("/hang")
    # Without the clipping it would take the 10 s (30 s) timeouts. A bound that holds on a loaded 2-core machine;
    # the overshoot itself (milliseconds) is measured by bench/deadline.py.
    assert time.monotonic() - started < deadline + 1.0


def test_per_call_overrides(connect: Connect, upstream: Upstream) -> None:
    client = connect(config(upstream.base_url), clock=ManualClock())
    upstream.script(Reply(503))
    with pytest.raises(ServerError):
        client.get("/x", retry=False)
    assert upstream.count == 1
    upstream.script(Reply(hang=True))
    started = time.monotonic()
    with pytest.raises(ReadTimeout):
        client.get("/x", timeout=0.2, retry=False)
    assert time.monotonic() - started < 1.5  # the configured read timeout is 2 s: the override applied


# -- the circuit breaker ------------------------------------------------------------------------------------------


def test_open_breaker_rejects_without_touching_the_network_and_a_probe_closes_it(
    connect: Connect, upstream: Upstream
) -> None:
    clock, recorder = ManualClock(), Recorder()
    policy = BreakerPolicy(failure_threshold=2, failure_rate_threshold=None, wait_in_open=30.0, half_open_max_calls=1)
    client = connect(
        config(upstream.base_url, breaker=policy, retry=RetryPolicy.disabled()), clock=clock, hooks=[recorder]
    )
    upstream.script(Reply(503), Reply(503))
    for _ in range(2):
        with pytest.raises(ServerError):
            client.get("/x")
    assert client.breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitOpenError) as caught:
        client.get("/x")
    assert caught.value.breaker == "partner"
    assert upstream.count == 2  # the rejected call never reached the server
    clock.advance(30.0)
    assert client.get("/x").status_code == 200  # the half-open probe
    assert client.breaker.state is CircuitState.CLOSED
    assert upstream.count == 3
    assert recorder.summary().transitions == ("closed->open", "open->half_open", "half_open->closed")
    assert recorder.summary().rejected == 1


# -- idempotency ----------------------------------------------------------------------------------------------------

SLOW_READ = Timeouts(connect=1.0, read=0.2, write=1.0, pool=1.0)


def test_post_without_a_key_is_not_retried_after_a_read_timeout(connect: Connect, upstream: Upstream) -> None:
    client = connect(config(upstream.base_url, timeouts=SLOW_READ), clock=ManualClock())
    upstream.script(Reply(hang=True), Reply(200))
    with pytest.raises(ReadTimeout):
        client.post("/payments", json={"amount": 10})
    assert upstream.count == 1
    assert "idempotency-key" not in upstream.requests[0].headers


def test_post_with_a_generated_key_is_retried_with_the_same_key(connect: Connect, upstream: Upstream) -> None:
    recorder = Recorder()
    cfg = config(upstream.base_url, timeouts=SLOW_READ, idempotency_methods={"POST"})
    client = connect(cfg, clock=ManualClock(), hooks=[recorder])
    upstream.script(Reply(hang=True), Reply(201))
    assert client.post("/payments", json={"amount": 10}).status_code == 201
    keys = [seen.headers.get("idempotency-key") for seen in upstream.requests]
    assert len(keys) == 2
    assert keys[0] == keys[1]
    assert keys[0] is not None
    assert re.fullmatch(r'"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"', keys[0])
    started = recorder.of(AttemptStarted)
    assert {e.idempotency_key for e in started} == {keys[0].strip('"')}  # type: ignore[attr-defined]


def test_post_with_an_explicit_key_is_retried_with_it(connect: Connect, upstream: Upstream) -> None:
    client = connect(config(upstream.base_url, timeouts=SLOW_READ), clock=ManualClock())
    upstream.script(Reply(hang=True), Reply(200))
    client.post("/payments", json={"amount": 10}, idempotency_key="order-42")
    assert [seen.headers["idempotency-key"] for seen in upstream.requests] == ['"order-42"', '"order-42"']


# -- security -------------------------------------------------------------------------------------------------------

CANARY = "canary-7f3a9c1e-do-not-leak"
QUERY_CANARY = "qcanary-51b2-do-not-leak"


def test_a_canary_secret_appears_nowhere(
    connect: Connect, upstream: Upstream, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PARTNER_TOKEN", CANARY)
    caplog.set_level(logging.DEBUG)
    recorder = Recorder()
    cfg = config(upstream.base_url, auth=BearerAuth(env="PARTNER_TOKEN"), breaker=BreakerPolicy(failure_threshold=5))
    client = connect(cfg, clock=ManualClock(), hooks=[recorder, LoggingHook(level=logging.INFO)])
    errors: list[IntegrationError] = []
    upstream.script(Reply(401), Reply(503), Reply(503), Reply(503), Reply(200))  # 401 echoes the request headers
    for _ in range(2):
        with pytest.raises(IntegrationError) as caught:
            client.get("/account", params={"api_key": QUERY_CANARY, "page": "1"})
        errors.append(caught.value)
    assert client.get("/account", params={"access_token": QUERY_CANARY}).status_code == 200
    assert upstream.requests[0].headers["authorization"] == f"Bearer {CANARY}"  # it was sent, to the origin
    outputs = [
        caplog.text,
        repr([vars(r) for r in caplog.records]),
        recorder.to_frame().to_string(),
        repr(recorder.events),
        repr(client),
        repr(cfg),
    ]
    for error in errors:
        outputs += [str(error), repr(error), "".join(traceback.format_exception(error)), repr(vars(error))]
        last = getattr(error, "last_error", None)
        outputs += [repr(vars(last))] if last is not None else []
    assert isinstance(errors[0], AuthError)
    assert CANARY not in errors[0].body_snippet
    assert "***" in errors[0].body_snippet
    assert "api_key=***" in errors[0].url  # type: ignore[operator]
    for text in outputs:
        assert CANARY not in text
        assert QUERY_CANARY not in text


def test_plain_http_to_a_non_loopback_host_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="plain http"):
        ClientConfig(name="partner", base_url="http://api.example.com")
    ClientConfig(name="partner", base_url="http://api.example.com", allow_insecure_http=True)
    for loopback in ("http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000"):
        ClientConfig(name="partner", base_url=loopback)


def test_an_absolute_url_to_another_origin_is_refused(connect: Connect, upstream: Upstream) -> None:
    client = connect(config(upstream.base_url))
    for elsewhere in (
        "https://evil.example/steal",
        f"http://localhost:{upstream.port}/x",  # same server, other origin
        f"https://127.0.0.1:{upstream.port}/x",
        f"http://user:pw@127.0.0.1:{upstream.port}/x",
    ):
        with pytest.raises(UnsafeRequest):
            client.get(elsewhere)
    assert upstream.count == 0
    assert client.get(f"{upstream.base_url}/same-origin").status_code == 200


def test_header_values_with_cr_or_lf_are_refused(connect: Connect, upstream: Upstream) -> None:
    client = connect(config(upstream.base_url))
    for value in ("a\r\nInjected: 1", "a\nb", "a\rb"):
        with pytest.raises(UnsafeRequest, match="X-Note"):
            client.get("/x", headers={"X-Note": value})
    assert upstream.count == 0


def test_redirects_to_another_origin_drop_the_credential(
    connect: Connect, upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARTNER_KEY", CANARY)
    cfg = config(upstream.base_url, auth=HeaderAuth(header="X-Api-Key", env="PARTNER_KEY"), follow_redirects=True)
    client = connect(cfg)
    upstream.script(Reply(302, headers={"Location": "/landing"}))
    assert client.get("/start").json()["headers"]["x-api-key"] == CANARY  # same origin: kept
    upstream.script(Reply(302, headers={"Location": f"http://localhost:{upstream.port}/landing"}))
    echoed = client.get("/start").json()
    assert echoed["path"] == "/landing"
    assert "x-api-key" not in echoed["headers"]
    upstream.script(Reply(302, headers={"Location": "http://partner.example/landing"}))
    with pytest.raises(UnsafeRequest, match="plain http"):
        client.get("/start")


def test_an_oversized_body_raises_without_being_read(connect: Connect, upstream: Upstream) -> None:
    client = connect(config(upstream.base_url, max_response_bytes=100_000))
    upstream.script(Reply(stream_bytes=5_000_000))  # chunked: caught while streaming
    with pytest.raises(ResponseTooLarge) as caught:
        client.get("/big")
    assert caught.value.limit == 100_000
    upstream.script(Reply(body=b"x" * 200_000))  # Content-Length: refused before reading
    with pytest.raises(ResponseTooLarge):
        client.get("/big")
    assert upstream.count == 2  # not retried
    upstream.script(Reply(body=b"x" * 100_000))
    assert len(client.get("/exactly-the-limit").content) == 100_000


# -- the json() helper ----------------------------------------------------------------------------------------------


def test_json_helper_parses_checks_and_validates(connect: Connect, upstream: Upstream) -> None:
    client = connect(config(upstream.base_url))
    upstream.script(Reply(body=b'{"id": 7}', content_type="application/problem+json"))
    assert client.json("/thing") == {"id": 7}
    upstream.script(Reply(body=b'{"id": 7}'))
    assert client.json("/thing", validator=lambda data: data["id"] * 2) == 14
    upstream.script(Reply(body=b"<html>", content_type="text/html"))
    with pytest.raises(InvalidResponse, match="content type 'text/html'"):
        client.json("/thing")
    upstream.script(Reply(body=b'{"id": '))
    with pytest.raises(InvalidResponse, match="malformed JSON"):
        client.json("/thing")
    upstream.script(Reply(body=b"[]"))
    with pytest.raises(InvalidResponse, match="failed validation") as caught:
        client.json("/thing", validator=lambda data: data["id"])
    assert isinstance(caught.value.__cause__, TypeError)
    upstream.script(Reply(body=b'{"ok": 1}'))
    assert client.json("/thing", method="POST", json={"q": 1}) == {"ok": 1}
    assert upstream.requests[-1].method == "POST"
