"""The one boundary where httpx's failures become the kit's errors (``Exchange.failed``), pinned by the mutation
sweep of issue 29: each translated error keeps the library's exception as its cause, an exception the boundary
does not know is an ``InvalidResponse`` naming it, an exception chain that loops does not hang the boundary, and
a Retry-After date is measured in UTC whatever the machine's time zone.

Real loopback servers where a partner causes the failure; a transport plugged in only where no server can (an
attempt stuck inside the transport, an exception chain that loops).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import anyio
import httpx
import pytest
from scripted_upstream import Connect, Reply, Upstream
from test_client_guarantees import config
from test_io_guarantees import DroppingServer

from integration_kit import AsyncResilientClient, ManualClock, Recorder, ResilientClient
from integration_kit.errors import (
    ConnectError,
    ConnectionLost,
    DeadlineExceeded,
    IntegrationError,
    InvalidResponse,
    ReadTimeout,
)
from integration_kit.events import AttemptStarted, RetryScheduled
from integration_kit.policies.config import RetryPolicy, Timeouts

ONCE = RetryPolicy.disabled()


def test_a_refused_connection_keeps_httpx_error_as_its_cause(connect: Connect, refused_url: str) -> None:
    client = connect(config(refused_url, retry=ONCE))
    with pytest.raises(ConnectError) as caught:
        client.get("/x")
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


def test_a_lost_connection_keeps_httpx_error_as_its_cause(connect: Connect) -> None:
    with DroppingServer("close") as server:
        client = connect(config(server.base_url, retry=ONCE))
        with pytest.raises(ConnectionLost) as caught:
            client.get("/x")
    assert isinstance(caught.value.__cause__, httpx.RemoteProtocolError)


def test_a_read_timeout_keeps_httpx_error_as_its_cause(connect: Connect, upstream: Upstream) -> None:
    client = connect(config(upstream.base_url, retry=ONCE, timeouts=Timeouts(connect=2, read=0.3, write=2, pool=2)))
    upstream.script(Reply(hang=True))
    with pytest.raises((ReadTimeout, DeadlineExceeded)) as caught:
        client.get("/slow")
    error: BaseException | None = caught.value
    while error is not None and not isinstance(error, httpx.TimeoutException):
        error = error.__cause__  # DeadlineExceeded -> ReadTimeout -> httpx's
    assert isinstance(error, httpx.ReadTimeout)


class StuckTransport(httpx.AsyncBaseTransport):
    """A transport whose attempt never ends (a stuck proxy library): only the client's ``fail_after`` ends it."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await anyio.sleep(30)  # bounded: the test's deadline is 0.3 s
        raise AssertionError("the deadline did not cut the attempt")


def test_an_attempt_cut_by_the_async_deadline_keeps_the_timeout_as_its_cause() -> None:
    async def main() -> None:
        cfg = config("http://127.0.0.1:9", retry=ONCE, deadline=0.3)
        async with AsyncResilientClient(cfg, transport=StuckTransport()) as client:
            await client.get("/x")

    with pytest.raises(IntegrationError) as caught:
        asyncio.run(main())
    # the attempt was cut in a transport that reports no phase: it may have sent the request, so a read timeout
    # (never the pool's "not sent"), and the builtin TimeoutError anyio raised is kept as its cause
    cause = caught.value.__cause__
    assert type(cause) is httpx.ReadTimeout, repr(caught.value)
    assert type(cause.__cause__) is TimeoutError, repr(cause)


def test_an_unknown_failure_is_an_invalid_response_naming_it(connect: Connect, upstream: Upstream) -> None:
    """A body that says it is gzip and is not makes httpx raise ``DecodingError``, which no network kind fits."""
    recorder = Recorder()
    client = connect(config(upstream.base_url), clock=ManualClock(), hooks=[recorder])
    upstream.script(Reply(200, headers={"Content-Encoding": "gzip"}, body=b"not gzip at all"))
    with pytest.raises(InvalidResponse) as caught:
        client.get("/zipped")
    assert "unusable response (DecodingError)" in str(caught.value)
    assert isinstance(caught.value.__cause__, httpx.DecodingError)
    assert len(recorder.of(AttemptStarted)) == 1  # not retried: the same answer would come again


class LoopingChainTransport(httpx.BaseTransport):
    """Raises an exception whose ``__context__`` chain loops back to itself (a library that chains by hand)."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        first, second = RuntimeError("first"), RuntimeError("second")
        first.__context__, second.__context__ = second, first
        raise first


@pytest.mark.timeout(20)
def test_an_exception_chain_that_loops_does_not_hang_the_boundary() -> None:
    with ResilientClient(config("http://127.0.0.1:9", retry=ONCE), transport=LoopingChainTransport()) as client:
        started = time.monotonic()
        with pytest.raises(InvalidResponse, match=r"unusable response \(RuntimeError\)"):
            client.get("/x")
    assert time.monotonic() - started < 10


class SlowToClose(httpx.SyncByteStream):
    """A whole body at once, then a close that blocks past the attempt's deadline (a peer slow to shut down)."""

    def __iter__(self) -> Iterator[bytes]:
        yield b'{"ok": true}'

    def close(self) -> None:
        time.sleep(0.5)  # the deadline under test passes here (0.2 s): real time is the thing measured


class SlowToCloseTransport(httpx.BaseTransport):
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=SlowToClose())


def test_an_answer_completed_after_the_deadline_is_a_read_timeout_not_a_success() -> None:
    cfg = config("http://127.0.0.1:9", retry=ONCE, deadline=0.2)
    with (
        ResilientClient(cfg, transport=SlowToCloseTransport()) as client,
        pytest.raises((ReadTimeout, DeadlineExceeded)) as caught,
    ):
        client.get("/x")
    assert not isinstance(caught.value, InvalidResponse)


@pytest.fixture
def twelve_hours_east(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time zone is UTC+12 for the test."""
    monkeypatch.setenv("TZ", "Etc/GMT-12")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("twelve_hours_east")
def test_a_retry_after_date_without_a_date_header_is_measured_in_utc(connect: Connect, upstream: Upstream) -> None:
    """With no ``Date`` to measure from, the hint is measured from now in UTC, not from the local wall time."""
    recorder = Recorder()
    policy = RetryPolicy(max_attempts=2, base_delay=0.1, jitter="none", max_retry_after=86400.0)
    client = connect(config(upstream.base_url, retry=policy, deadline=None), clock=ManualClock(), hooks=[recorder])
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    upstream.script(Reply(503, headers={"Retry-After": when}), Reply(200))
    assert client.get("/later").status_code == 200
    [wait] = recorder.of(RetryScheduled)
    assert isinstance(wait, RetryScheduled)
    assert wait.reason == "retry_after"
    assert 60 < wait.delay <= 121


def test_retries_of_an_unknown_failure_are_not_made(connect: Connect, upstream: Upstream) -> None:
    """The same decoding failure on a PUT (safe to repeat) is still not retried: it is not a transient kind."""
    client = connect(config(upstream.base_url), clock=ManualClock())
    upstream.script(*[Reply(200, headers={"Content-Encoding": "gzip"}, body=b"still not gzip")] * 3)
    with pytest.raises(InvalidResponse):
        client.put("/zipped", content=b"{}")
    assert upstream.count == 1
