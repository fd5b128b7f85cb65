"""Each fault kind found by the adversarial pass (issue 10), as a test on a real server: remote input, secrets,
framing, caller mistakes, unreplayable bodies, idempotency keys, log redaction, phase labels."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from matrix import Case, Servers, config_for, servers
from scripted_upstream import Connect, Reply, Upstream

from integration_kit import AsyncResilientClient, BasicAuth, BearerAuth, ClientConfig, Recorder, ResilientClient
from integration_kit.errors import (
    AuthError,
    CertificateError,
    DeadlineExceeded,
    IntegrationError,
    PoolTimeout,
    UnsafeRequest,
    WriteTimeout,
)
from integration_kit.events import AttemptStarted, CallFinished
from integration_kit.http.safety import FRAMING_HEADERS, MAX_KEY_LENGTH
from integration_kit.policies.breaker import CircuitState
from integration_kit.policies.config import BreakerPolicy, RetryPolicy, Timeouts
from integration_kit.server.idempotency import parse_idempotency_key

TOKEN = "tok_Zx9+/secret=42"


def config(base_url: str, **overrides: object) -> ClientConfig:
    values: dict[str, object] = {
        "name": "partner",
        "base_url": base_url,
        "retry": RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02),
        **overrides,
    }
    return ClientConfig(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def running() -> Iterator[Servers]:
    with servers() as started:
        yield started


# -- 3: remote input raises only IntegrationError, and every call ends with a call-finished event -------------


@pytest.mark.parametrize(
    "date",
    ["Mon, 01 Jan 100000000000000000000 00:00:00 GMT", "Mon, 99 Foo 2024 99:99:99 GMT", "Sat, 01 Jan 0000 00:00:00"],
)
def test_a_date_header_out_of_range_is_not_an_overflow(connect: Connect, upstream: Upstream, date: str) -> None:
    recorder = Recorder()
    client = connect(config(upstream.base_url, retry=RetryPolicy(max_attempts=1)), hooks=[recorder])
    upstream.script(Reply(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT", "Date": date}))
    with pytest.raises(IntegrationError):
        client.get("/x")
    assert len(recorder.of(CallFinished)) == 1


# -- 4: a secret echoed bare is masked in every form ------------------------------------------------------------


def _echoes(secret: str) -> list[str]:
    return [secret, quote(secret, safe=""), base64.b64encode(secret.encode()).decode()]


@pytest.mark.parametrize("auth", ["bearer", "basic"])
def test_a_secret_echoed_bare_is_masked_everywhere(
    connect: Connect, upstream: Upstream, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, auth: str
) -> None:
    monkeypatch.setenv("P_TOKEN", TOKEN)
    monkeypatch.setenv("P_USER", "alice")
    basic = BasicAuth(username_env="P_USER", password_env="P_TOKEN")
    setting = BearerAuth(env="P_TOKEN") if auth == "bearer" else basic
    recorder = Recorder()
    client = connect(config(upstream.base_url, auth=setting), hooks=[recorder])
    header = f"Bearer {TOKEN}" if auth == "bearer" else "Basic " + base64.b64encode(f"alice:{TOKEN}".encode()).decode()
    forms = [*_echoes(TOKEN), *_echoes(header.partition(" ")[2])]
    body = " | ".join(f"token {form} is expired" for form in forms)
    upstream.script(Reply(401, body=body.encode(), headers={"X-Echo": forms[1], "WWW-Authenticate": forms[2]}))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthError) as caught:
        client.get("/me")
    error = caught.value
    seen = " ".join([error.body_snippet or "", str(error.headers), str(error), repr(error), caplog.text])
    seen += " ".join(repr(event) for event in recorder.events)
    for form in forms:
        assert form not in seen, form
    assert "is expired" in (error.body_snippet or "")


def test_httpcore_debug_log_carries_no_signed_url_or_cookie(
    connect: Connect, upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    client = connect(config(upstream.base_url))
    upstream.script(
        Reply(302, headers={"Location": "https://cdn.example/f?sig=SIGSECRET123&x=1", "Set-Cookie": "s=COOKIE123"})
    )
    caplog.set_level(logging.DEBUG)
    with pytest.raises(IntegrationError):
        client.get("/file")
    assert "receive_response_headers" in caplog.text  # httpcore's trace was captured...
    assert "SIGSECRET123" not in caplog.text  # ...without the signature
    assert "COOKIE123" not in caplog.text


# -- 5, 6: framing headers and requests that cannot be built are the caller's UnsafeRequest -------------------


@pytest.mark.parametrize("name", [*sorted(FRAMING_HEADERS), "Proxy-Foo"])
def test_framing_and_routing_headers_are_refused(upstream: Upstream, name: str) -> None:
    recorder = Recorder()
    with ResilientClient(config(upstream.base_url), hooks=[recorder]) as client:
        seen = upstream.count
        with pytest.raises(UnsafeRequest):
            client.post("/x", content=b"body", headers={name: "chunked" if "encoding" in name else "3"})
    assert upstream.count == seen
    assert recorder.events == []


def test_transfer_encoding_with_content_is_refused_async(upstream: Upstream) -> None:
    async def main() -> None:
        async with AsyncResilientClient(config(upstream.base_url)) as client:
            with pytest.raises(UnsafeRequest, match="Transfer-Encoding"):
                await client.post("/x", content=b"abc", headers={"Transfer-Encoding": "chunked"})
            with pytest.raises(UnsafeRequest, match="Content-Length"):
                await client.post("/x", content=b"abc", headers={"Content-Length": "99"})

    asyncio.run(main())


BAD_REQUESTS: list[tuple[str, dict[str, str]]] = [
    ("GET", {"X Bad": "1"}),
    ("GET\r\nX-Injected: 1", {}),
    ("GET /evil HTTP/1.1", {}),
    ("G\x00T", {}),
    ("GET", {"X-Ok": "caf\u00e9\u2603"}),
    ("GET", {"X-Ok": "a\x01b"}),
    ("GET", {"": "x"}),
]


@pytest.mark.parametrize(("method", "headers"), BAD_REQUESTS)
def test_a_request_that_cannot_be_built_is_the_callers_and_never_opens_the_breaker(
    upstream: Upstream, method: str, headers: dict[str, str]
) -> None:
    recorder = Recorder()
    cfg = config(upstream.base_url, breaker=BreakerPolicy(failure_threshold=3))
    with ResilientClient(cfg, hooks=[recorder]) as client:
        seen = upstream.count
        for _ in range(5):
            with pytest.raises(UnsafeRequest) as caught:
                client.request(method, "/x", headers=headers)
            assert "\r" not in str(caught.value)
            assert "\n" not in str(caught.value)
            assert "\x00" not in str(caught.value)
        assert client.breaker is not None
        assert client.breaker.state is CircuitState.CLOSED
        assert upstream.count == seen
        assert recorder.events == []
        upstream.script(Reply(200))
        assert client.get("/x").status_code == 200


def test_an_unbuildable_body_is_the_callers(upstream: Upstream) -> None:
    with ResilientClient(config(upstream.base_url)) as client, pytest.raises(UnsafeRequest):
        client.post("/x", json={"when": object()})


def test_framing_headers_in_the_config_are_a_configuration_error(upstream: Upstream) -> None:
    from integration_kit.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="headers"):
        ResilientClient(config(upstream.base_url, headers={"Host": "evil.example"}))


# -- 13: idempotency keys the middleware would refuse are refused, generated ones are accepted -----------------


def test_an_idempotency_key_the_server_would_refuse_is_refused(upstream: Upstream) -> None:
    with ResilientClient(config(upstream.base_url, idempotency_methods=frozenset({"POST"}))) as client:
        seen = upstream.count
        for key in ("k" * (MAX_KEY_LENGTH + 1), "k" * 10_000, "", "caf\u00e9", "a\tb"):
            with pytest.raises(UnsafeRequest):
                client.post("/x", idempotency_key=key)
        with pytest.raises(UnsafeRequest):
            client.post("/x", headers={"Idempotency-Key": "k" * 300})
        assert upstream.count == seen
        upstream.script(Reply(200), Reply(200))
        client.post("/x")
        client.post("/x", idempotency_key='a "quoted" key \\ ' + "k" * 200)
    keys = [r.headers["idempotency-key"] for r in upstream.requests[-2:]]
    assert all(parse_idempotency_key(k) is not None for k in keys)


# -- 11: a body that cannot be replayed is buffered (or the call made single-attempt) --------------------------


def _pipe(data: bytes) -> object:
    read_fd, write_fd = os.pipe()
    writer = threading.Thread(target=lambda: (os.write(write_fd, data), os.close(write_fd)))
    writer.start()
    writer.join()
    return os.fdopen(read_fd, "rb")


def test_a_retry_resends_a_non_seekable_upload_whole(connect: Connect, upstream: Upstream) -> None:
    data = b"0123456789" * 3000
    client = connect(config(upstream.base_url))
    upstream.script(Reply(503), Reply(200))
    stream = _pipe(data)
    try:
        assert client.put("/upload", files={"f": ("f.bin", stream)}).status_code == 200
    finally:
        stream.close()  # type: ignore[attr-defined]
    first, second = upstream.requests[-2:]
    assert data in first.body
    assert first.body == second.body


def test_a_retry_resends_a_generator_body_whole(upstream: Upstream) -> None:
    with ResilientClient(config(upstream.base_url)) as client:
        upstream.script(Reply(503), Reply(200))
        assert client.put("/upload", content=(b"part%d;" % i for i in range(100))).status_code == 200
    first, second = upstream.requests[-2:]
    assert first.body == second.body == b"".join(b"part%d;" % i for i in range(100))


def test_a_stream_past_the_replay_limit_is_sent_once(upstream: Upstream, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("integration_kit.http.safety.REPLAY_LIMIT", 100)
    recorder = Recorder()
    with ResilientClient(config(upstream.base_url), hooks=[recorder]) as client:
        upstream.script(Reply(503), Reply(200))
        with pytest.raises(IntegrationError):
            client.put("/upload", content=(b"x" * 64 for _ in range(10)))
    assert upstream.requests[-1].body == b"x" * 640
    assert len(recorder.of(AttemptStarted)) == 1


# -- 7: TLS verification failures are not retried and say why ------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_certificate_that_does_not_verify_is_one_attempt_that_says_so(running: Servers, mode: str) -> None:
    recorder = Recorder()
    cfg = config_for(Case("ok", None, 1, tls="untrusted"), running)

    async def amain() -> None:
        async with AsyncResilientClient(cfg, hooks=[recorder]) as client:
            await client.get("/ok")

    def call() -> None:
        if mode == "sync":
            with ResilientClient(cfg, hooks=[recorder]) as client:
                client.get("/ok")
        else:
            asyncio.run(amain())

    with pytest.raises(CertificateError, match="certificate verification failed") as caught:
        call()
    assert "unable to get local issuer certificate" in str(caught.value)
    assert len(recorder.of(AttemptStarted)) == 1


# -- 13: the async client labels a cut pool wait and a stalled upload by their phase -------------------------


def test_async_labels_a_cut_pool_wait_pool_timeout(running: Servers) -> None:
    cfg = config_for(
        Case("never_answers", None, 1),
        running,
        retry=RetryPolicy(max_attempts=1),
        deadline=0.6,
        timeouts=Timeouts(connect=5, read=5, write=5, pool=5),
    )

    async def main() -> list[BaseException | None]:
        transport = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=1))
        async with AsyncResilientClient(cfg, transport=transport) as client:

            async def one(delay: float, deadline: float) -> BaseException | None:
                await asyncio.sleep(delay)
                try:
                    await client.get("/never_answers", deadline=deadline)
                except IntegrationError as exc:
                    return exc
                return None

            return list(await asyncio.gather(one(0, 1.0), one(0.2, 0.3)))

    holder, waiter = asyncio.run(main())
    assert isinstance(waiter, PoolTimeout), repr(waiter)
    assert not isinstance(holder, PoolTimeout)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_stalled_upload_is_a_write_timeout(running: Servers, mode: str) -> None:
    cfg = config_for(
        Case("never_reads_upload", None, 1),
        running,
        timeouts=Timeouts(connect=5, read=5, write=5, pool=5),
        retry=RetryPolicy(max_attempts=1),
    )
    body = b"u" * (32 << 20)

    async def amain() -> None:
        async with AsyncResilientClient(cfg) as client:
            await client.put("/never_reads_upload", content=body)

    def call() -> None:
        if mode == "sync":
            with ResilientClient(cfg) as client:
                client.put("/never_reads_upload", content=body)
        else:
            asyncio.run(amain())

    with pytest.raises((WriteTimeout, DeadlineExceeded)) as caught:
        call()
    error = caught.value
    assert isinstance(error, WriteTimeout) or isinstance(getattr(error, "last_error", None), WriteTimeout)


# -- 1 (a sibling): time queued in the bulkhead or the rate limiter is part of the deadline --------------------


def test_time_queued_for_admission_is_taken_from_the_first_attempt() -> None:
    from integration_kit import ManualClock
    from integration_kit.engine.call import CallEngine, Send, Wait
    from integration_kit.policies.config import Limits
    from integration_kit.policies.outcome import Outcome, OutcomeKind

    clock = ManualClock()
    engine = CallEngine(limits=Limits(max_concurrent=1, max_wait=5.0), deadline=2.0, clock=clock)
    holder = engine.call("GET")
    assert isinstance(next(holder), Send)
    waiter = engine.call("GET")
    action = next(waiter)
    while isinstance(action, Wait) and clock.now() < 0.5:
        clock.sleep(action.seconds)
        action = waiter.send(None)
    with contextlib.suppress(StopIteration):
        holder.send(Outcome(OutcomeKind.STATUS, status=200))
    while isinstance(action, Wait):
        clock.sleep(action.seconds)
        action = waiter.send(None)
    assert isinstance(action, Send)
    assert action.timeout is not None
    assert action.timeout == pytest.approx(2.0 - clock.now())
    assert action.timeout < 1.6


def test_an_unbuildable_url_is_refused_without_echoing_it_raw(upstream: Upstream) -> None:
    with ResilientClient(config(upstream.base_url)) as client:
        for url in ("/x?token=SECRET42&a=\r\nX-Evil: 1", "/a\r\nX-Evil: 1", "http://[::1"):
            with pytest.raises(UnsafeRequest) as caught:
                client.get(url)
            message = str(caught.value)
            assert "\r" not in message
            assert "\n" not in message
            assert "SECRET42" not in message
