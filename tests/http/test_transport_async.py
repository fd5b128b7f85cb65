"""A transport passed to the async client is composed (:func:`~integration_kit.http.transport.aheld`) and bounded
by the expiry its request carries, on asyncio and trio: a cut names the phase httpcore's trace last reported
(connect, write, read), httpx's own transport's silence is the pool wait, another transport's silence (or a trace
of the caller's own) is a read timeout, which only idempotent or keyed requests retry; the body's chunks are
bounded too. A request without an expiry goes through untouched. The stalling transports are in memory and wait
for ever; the bound is the expiry (a few hundredths of a second), never a sleep."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
import httpcore
import httpx
import pytest

from integration_kit.http import transport as tr
from integration_kit.http.backend import HeldTimeout
from integration_kit.http.transport import AsyncDeadlineTransport, aheld

pytestmark = pytest.mark.anyio

SOON = 0.05  # seconds until the expiry of a request that is to be cut
CONNECT = "in the connect phase"
READ = "in the read phase"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _request(expires: float | None, **extensions: Any) -> httpx.Request:
    if expires is not None:
        extensions["timeout"] = {p: HeldTimeout(5.0, expires) for p in ("connect", "read", "write", "pool")}
    return httpx.Request("GET", "http://partner.invalid/", extensions=extensions)


class Stalls(httpx.AsyncBaseTransport):
    """Reports ``events`` through the request's trace (if it has one), then waits for ever; records what it got."""

    def __init__(self, *events: str) -> None:
        self.events = events
        self.seen: list[httpx.Request] = []
        self.closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        trace: Callable[[str, dict[str, Any]], Awaitable[None]] | None = request.extensions.get("trace")
        if trace is not None:
            for event in self.events:
                await trace(event, {})
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        self.closed = True


class StallingHttpx(httpx.AsyncHTTPTransport):
    """httpx's own transport type (it reports its phases), stalling before it reports any."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")


class Answers(httpx.AsyncBaseTransport):
    """Answers 200 with the body ``chunks``; a chunk ``None`` stands for a body that stops arriving."""

    def __init__(self, *chunks: bytes | None) -> None:
        self.chunks = chunks
        self.seen: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)

        async def body() -> AsyncIterator[bytes]:
            for chunk in self.chunks:
                if chunk is None:
                    await anyio.sleep_forever()
                else:
                    yield chunk

        return httpx.Response(200, content=body())


async def _read(response: httpx.Response) -> bytes:
    return b"".join([chunk async for chunk in response.stream])  # type: ignore[union-attr]


async def test_an_async_deadline_transport_is_held_as_it_is_and_another_is_composed() -> None:
    own = AsyncDeadlineTransport()
    assert aheld(own) is own
    inner = Stalls()
    composed = aheld(inner)
    assert composed is not inner
    await composed.aclose()
    assert inner.closed


@pytest.mark.parametrize(
    ("events", "cut", "where"),
    [
        ((), httpx.ReadTimeout, "before the transport reported a phase"),
        (("connection.connect_tcp.started",), httpx.ConnectTimeout, "in the connect phase"),
        (
            ("connection.connect_tcp.started", "connection.connect_tcp.complete"),
            httpx.ConnectTimeout,
            "in the connect phase",
        ),
        (("connection.start_tls.started",), httpx.ConnectTimeout, "in the connect phase"),
        (("http11.send_request_headers.started",), httpx.WriteTimeout, "in the write phase"),
        (("http2.send_request_headers.started",), httpx.WriteTimeout, "in the write phase"),
        (
            ("http11.send_request_headers.started", "http11.receive_response_headers.started"),
            httpx.ReadTimeout,
            "in the read phase",
        ),
        (("http2.receive_response_headers.started",), httpx.ReadTimeout, "in the read phase"),
        (("http11.send_request_headers.complete",), httpx.ReadTimeout, "before the transport reported a phase"),
    ],
)
async def test_a_cut_is_the_timeout_of_the_phase_last_reported(
    events: tuple[str, ...], cut: type[httpx.TimeoutException], where: str
) -> None:
    inner = Stalls(*events)
    with pytest.raises(httpx.TimeoutException) as caught:
        await aheld(inner).handle_async_request(_request(time.monotonic() + SOON))
    assert type(caught.value) is cut
    assert str(caught.value) == f"the attempt's deadline passed {where}"
    assert isinstance(caught.value.__cause__, TimeoutError)


async def test_httpx_s_own_transport_silent_is_waiting_for_the_pool() -> None:
    with pytest.raises(httpx.PoolTimeout, match=r"^the attempt's deadline passed in the pool phase$"):
        await aheld(StallingHttpx()).handle_async_request(_request(time.monotonic() + SOON))


async def test_a_trace_of_the_caller_s_own_is_kept_and_the_phase_is_unknown() -> None:
    reported: list[str] = []

    async def mine(event: str, info: Any) -> None:
        reported.append(event)

    inner = Stalls("http11.send_request_headers.started")
    with pytest.raises(httpx.ReadTimeout, match=r"before the transport reported a phase$"):
        await aheld(inner).handle_async_request(_request(time.monotonic() + SOON, trace=mine))
    assert reported == ["http11.send_request_headers.started"]


async def test_an_expiry_already_passed_cuts_at_once() -> None:
    with pytest.raises(httpx.ReadTimeout):
        await aheld(Stalls()).handle_async_request(_request(time.monotonic() - 10))


async def test_a_request_without_an_expiry_goes_through_untouched() -> None:
    inner = Answers(b"a", b"b")
    request = _request(None, timeout={"read": 5.0})
    response = await aheld(inner).handle_async_request(request)
    assert await _read(response) == b"ab"
    assert inner.seen == [request]
    assert "trace" not in request.extensions


async def test_a_body_is_read_whole_before_the_expiry_and_the_trace_is_added() -> None:
    inner = Answers(b"a", b"b", b"c")
    response = await aheld(inner).handle_async_request(_request(time.monotonic() + 100))
    assert await _read(response) == b"abc"
    assert callable(inner.seen[0].extensions["trace"])
    await response.aclose()


async def test_a_body_that_stops_arriving_is_cut_as_a_read() -> None:
    inner = Answers(b"a", None)
    response = await aheld(inner).handle_async_request(_request(time.monotonic() + SOON))
    chunks = response.stream.__aiter__()  # type: ignore[union-attr]
    assert await chunks.__anext__() == b"a"
    with pytest.raises(httpx.ReadTimeout, match=r"^the attempt's deadline passed in the read phase$"):
        await chunks.__anext__()


class _Closing(httpx.AsyncByteStream):
    def __init__(self) -> None:
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"body"

    async def aclose(self) -> None:
        self.closed = True


class _ClosingBody(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.stream = _Closing()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=self.stream)


async def test_closing_a_composed_body_closes_the_inner_one() -> None:
    inner = _ClosingBody()
    response = await aheld(inner).handle_async_request(_request(time.monotonic() + 100))
    assert response.stream is not inner.stream
    await response.aclose()
    assert inner.stream.closed


class _Orphan:
    """A stand-in for a connection httpcore's pool leaked: busy, serving no request; records being closed."""

    closed = False

    def is_idle(self) -> bool:
        return False

    is_available = is_closed = has_expired = is_idle

    def can_handle_request(self, origin: Any) -> bool:
        return False

    async def aclose(self) -> None:
        await anyio.lowlevel.checkpoint()  # where a cancellation not shielded would end the close
        self.closed = True


class _Refusing(httpcore.AsyncMockBackend):
    async def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("refused")


async def test_a_failed_request_closes_the_orphans_and_fails_as_it_did() -> None:
    pool = tr._AsyncReclaimingPool(network_backend=_Refusing([]))
    orphan = _Orphan()
    pool._connections.append(orphan)
    with pytest.raises(httpcore.ConnectError, match=r"^refused$"):
        await pool.handle_async_request(httpcore.Request("GET", "http://127.0.0.1:9/"))
    assert orphan.closed
    assert orphan not in pool._connections


class _Stalling(httpcore.AsyncMockBackend):
    async def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")


async def test_a_cancelled_request_still_closes_the_orphans() -> None:
    pool = tr._AsyncReclaimingPool(network_backend=_Stalling([]))
    orphan = _Orphan()
    pool._connections.append(orphan)
    with anyio.move_on_after(SOON) as scope:
        await pool.handle_async_request(httpcore.Request("GET", "http://127.0.0.1:9/"))
    assert scope.cancelled_caught
    assert orphan.closed
    assert orphan not in pool._connections


async def test_httpx_s_own_transport_under_the_caller_s_trace_is_in_an_unknown_phase() -> None:
    async def mine(event: str, info: Any) -> None:
        return None

    with pytest.raises(httpx.ReadTimeout, match=r"before the transport reported a phase$"):
        await aheld(StallingHttpx()).handle_async_request(_request(time.monotonic() + SOON, trace=mine))
