"""``ResilientWebSocket`` function by function, exactly, against a scripted ``websockets`` server on 127.0.0.1 in the
test's own event loop, on a ``ManualClock`` (no real waits): every event's fields, the order of what is sent after
a handshake (resume, subscriptions, the queued messages), reconnect delays on the injected clock, staleness measured
from the last message, every close path (clean, permanent, reconnect, keepalive, stale, the user's), the outgoing
queue (fail, wait, a send that fails as the connection drops), sequence handling (duplicates, gaps, resync), the
parameters handed to the library (scaled by the clock's ``time_scale``), and secrets kept out of the wire log.
Each test runs in well under a second: this file comes first in ``websocket.client``'s mutation selection."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from integration_kit.clock import ManualClock, SystemClock
from integration_kit.errors import AuthError, ConnectTimeout, RetriesExhausted
from integration_kit.events import AttemptStarted, Recorder
from integration_kit.http.auth import BearerAuth
from integration_kit.policies.budget import RetryBudget
from integration_kit.policies.config import BreakerPolicy, BudgetPolicy
from integration_kit.websocket import (
    OutgoingQueueFull,
    ReconnectPolicy,
    ResilientWebSocket,
    StreamClosed,
    WebSocketConfig,
    json_field,
)
from integration_kit.websocket.events import (
    WsClosed,
    WsConnectAttempt,
    WsConnected,
    WsDisconnected,
    WsDuplicate,
    WsGap,
    WsMessage,
    WsReconnectScheduled,
    WsResync,
    WsStale,
)
from integration_kit.websocket.handshake import WireLogRedactor

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(20)]

#: reconnects at once, exactly ``first_delay`` later on the manual clock
STEADY = ReconnectPolicy(first_delay=0.5, base_delay=0.25, jitter="none", max_attempts=3)

Script = Callable[[ServerConnection, "Upstream"], Awaitable[None]]


@dataclass
class Upstream:
    """What the scripted server saw: the handshakes' headers, each connection's messages and the close it got."""

    url: str = ""
    scripts: list[Script] = field(default_factory=list)
    refusals: list[Response | None] = field(default_factory=list)
    headers: list[Headers] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    received: list[list[str]] = field(default_factory=list)
    closes: list[tuple[int | None, str]] = field(default_factory=list)
    inbox: asyncio.Queue[str] = field(default_factory=asyncio.Queue)

    def all_received(self) -> list[str]:
        return [m for messages in self.received for m in messages]


async def drain(conn: ServerConnection, up: Upstream, index: int, until: str | None = None) -> None:
    """Record what the client sends on connection ``index`` until ``until`` arrives (or the connection ends)."""
    try:
        async for raw in conn:
            text = raw if isinstance(raw, str) else raw.decode()
            up.received[index].append(text)
            up.inbox.put_nowait(text)
            if text == until:
                return
    except ConnectionClosed:
        pass


@asynccontextmanager
async def upstream(
    *scripts: Script, refusals: tuple[Response | None, ...] = (), process_response: object = None
) -> AsyncIterator[Upstream]:
    """A server whose Nth connection runs ``scripts[N]`` (the last one again after that)."""
    up = Upstream(scripts=list(scripts), refusals=list(refusals))

    def process_request(conn: ServerConnection, request: Request) -> Response | None:
        index = len(up.headers)
        up.headers.append(request.headers)
        up.paths.append(request.path)
        refusal = up.refusals[index] if index < len(up.refusals) else None
        return refusal

    async def handler(conn: ServerConnection) -> None:
        index = len(up.received)
        up.received.append([])
        script = up.scripts[min(index, len(up.scripts) - 1)]
        try:
            await script(conn, up)
            await drain(conn, up, index)
        finally:
            rcvd = conn.protocol.close_rcvd
            up.closes.append((rcvd.code, rcvd.reason) if rcvd is not None else (None, ""))

    async with serve(
        handler,
        "127.0.0.1",
        0,
        process_request=process_request,
        process_response=process_response,  # type: ignore[arg-type]
        close_timeout=0.2,
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        up.url = f"ws://127.0.0.1:{port}/feed"
        yield up


def refuse(status: int, **headers: str) -> Response:
    response = Response(status, f"status {status}", Headers(headers), b"refused\n")
    return response


def sends(*messages: str, then: Callable[[ServerConnection], Awaitable[None]] | None = None) -> Script:
    """A script: wait for the subscription, send ``messages``, then do ``then`` (nothing: keep reading)."""

    async def script(conn: ServerConnection, up: Upstream) -> None:
        index = len(up.received) - 1
        await drain(conn, up, index, until="sub")
        for message in messages:
            await conn.send(message)
        if then is not None:
            await then(conn)

    return script


def after(text: str, action: Callable[[ServerConnection], Awaitable[None]], *messages: str) -> Script:
    """A script: wait for the subscription, send ``messages``, wait for ``text`` from the client, then ``action``."""

    async def script(conn: ServerConnection, up: Upstream) -> None:
        index = len(up.received) - 1
        await drain(conn, up, index, until="sub")
        for message in messages:
            await conn.send(message)
        await drain(conn, up, index, until=text)
        await action(conn)

    return script


def closing(code: int, reason: str = "") -> Callable[[ServerConnection], Awaitable[None]]:
    async def action(conn: ServerConnection) -> None:
        await conn.close(code, reason)

    return action


async def aborting(conn: ServerConnection) -> None:
    conn.transport.abort()


def seq(n: int, **more: object) -> str:
    return json.dumps({"seq": n, **more})


def cfg(url: str, **overrides: object) -> WebSocketConfig:
    settings: dict[str, object] = {
        "url": url,
        "name": "feed",
        "reconnect": STEADY,
        "subscribe": ("sub",),
        "sequence": "seq",
        "open_timeout": 2.0,
        "close_timeout": 0.5,
    }
    settings.update(overrides)
    return WebSocketConfig(**settings)  # type: ignore[arg-type]


def only(recorder: Recorder, kind: type) -> list:
    return [e for e in recorder.events if isinstance(e, kind)]


async def next_of(ws: ResilientWebSocket) -> str | bytes:
    return await asyncio.wait_for(ws.__anext__(), 5)


# -- json_field -----------------------------------------------------------------------------------------------


def test_json_field_reads_only_an_integer_field_of_an_object() -> None:
    read = json_field("seq")
    assert read('{"seq": 7}') == 7
    assert read(b'{"seq": 0}') == 0
    assert read('{"seq": -3, "other": 1}') == -3
    assert read('{"n": 7}') is None
    assert read('{"seq": true}') is None
    assert read('{"seq": 7.0}') is None
    assert read('{"seq": "7"}') is None
    assert read("[7]") is None
    assert read("7") is None
    assert read("not json") is None
    assert json_field("n")('{"seq": 1, "n": 2}') == 2


# -- construction ---------------------------------------------------------------------------------------------


def test_the_constructor_wires_clock_rng_hooks_engine_and_sequence() -> None:
    with pytest.raises(TypeError, match=r"^expected a WebSocketConfig, got dict$"):
        ResilientWebSocket({"url": "ws://x"})  # type: ignore[arg-type]
    clock, rng, recorder = ManualClock(), random.Random(1), Recorder()

    async def resync(first: int, last: int) -> list[str]:
        return []

    config = cfg(
        "ws://127.0.0.1:9/feed?token=t0ps3cret&x=1&chan=c0dename",
        breaker=BreakerPolicy(failure_threshold=2),
        budget=BudgetPolicy(max_tokens=3.0, token_ratio=0.5),
        secret_query_params=("chan",),
    )
    ws = ResilientWebSocket(config, clock=clock, rng=rng, hooks=[recorder], resync=resync)
    assert ws.config is config
    assert ws.clock is clock
    assert ws.engine.clock is clock
    assert ws.rng is rng
    assert ws.engine.rng is rng
    assert ws.resync is resync
    assert ws.url == "ws://127.0.0.1:9/feed?token=***&x=1&chan=***"
    assert ws.engine.name == "feed"
    assert ws.engine.breaker is not None
    assert ws.engine.breaker.name == "feed"
    assert ws.engine.breaker.clock is clock
    assert isinstance(ws.engine.budget, RetryBudget)
    assert ws.engine.budget._policy is config.budget
    assert ws.engine.retry == STEADY.retry_policy()
    assert ws.hooks is ws.engine.hooks
    assert ws.hooks == [recorder]
    other = Recorder()
    ws.add_hook(other)
    assert ws.hooks == [recorder, other]
    assert (ws.connected, ws.unsent, ws.tracker.last) == (False, 0, None)
    assert ws._sequence_of is not None
    assert ws._sequence_of('{"seq": 4}') == 4
    assert ws._redactor.secrets == ("t0ps3cret", "c0dename")  # the usual names' values and the extra ones'

    assert (
        repr(ws)
        == "ResilientWebSocket(name='feed', url='ws://127.0.0.1:9/feed?token=***&x=1&chan=***', connected=False)"
    )

    plain = ResilientWebSocket(cfg("ws://127.0.0.1:9/feed", sequence=None))
    assert isinstance(plain.clock, SystemClock)
    assert isinstance(plain.rng, random.Random)
    assert plain.engine.breaker is None
    assert plain.engine.budget is None
    assert plain.resync is None
    assert plain._sequence_of is None
    assert plain.hooks == []
    assert plain._redactor.secrets == ()
    assert plain._down_since is None
    assert plain._connections == 0

    def custom(message: str | bytes) -> int | None:
        return 99

    assert ResilientWebSocket(cfg("ws://127.0.0.1:9/", sequence=custom))._sequence_of is custom


def test_a_second_stream_of_the_same_name_replaces_the_wire_log_filter() -> None:
    logger = logging.getLogger("integration_kit.websocket.wire.twin")
    kept = logging.Filter("kept")
    logger.addFilter(kept)
    try:
        first = ResilientWebSocket(cfg("ws://127.0.0.1:9/", name="twin"))
        second = ResilientWebSocket(cfg("ws://127.0.0.1:9/", name="twin"))
        redactors = [f for f in logger.filters if isinstance(f, WireLogRedactor)]
        assert redactors == [second._redactor]
        assert redactors[0] is not first._redactor
        assert kept in logger.filters
        assert second._wire_logger is logger
    finally:
        for f in list(logger.filters):
            logger.removeFilter(f)


# -- the lifecycle over one and two connections ---------------------------------------------------------------


async def test_a_connection_sends_subscriptions_then_the_queue_and_reports_each_event() -> None:
    async with upstream(after("bye", closing(1012, "restart"), seq(1), seq(2)), sends(seq(3))) as up:
        clock, recorder = ManualClock(10.0), Recorder()
        config = cfg(up.url, subscribe=("sub", "sub-2"), resume=lambda last: f"resume {last}", outgoing_limit=3)
        ws = ResilientWebSocket(config, clock=clock, hooks=[recorder])
        await ws.send("queued-1")
        await ws.send(b"queued-2")
        assert ws.unsent == 2
        assert not ws.connected
        assert await next_of(ws) == seq(1)
        assert ws.connected
        assert ws.unsent == 0
        assert await next_of(ws) == seq(2)
        clock.advance(5.0)
        await ws.send("bye")
        assert await next_of(ws) == seq(3)
        await ws.close()
    assert up.received[0][:4] == ["sub", "sub-2", "queued-1", "queued-2"]
    assert up.received[1][:3] == ["resume 2", "sub", "sub-2"]  # resume first, from the last delivered
    attempts = only(recorder, WsConnectAttempt)
    assert [(a.time, a.integration, a.call_id, a.connection, a.url, a.attempt) for a in attempts] == [
        (10.0, "feed", 0, 1, up.url, 1),
        (15.5, "feed", 0, 2, up.url, 1),
    ]
    connected = only(recorder, WsConnected)
    assert [(c.time, c.integration, c.call_id, c.connection, c.url, c.attempts, c.down_for) for c in connected] == [
        (10.0, "feed", 0, 1, up.url, 1, 0.0),
        (15.5, "feed", 0, 2, up.url, 1, 0.5),
    ]
    (lost,) = only(recorder, WsDisconnected)
    assert (lost.time, lost.integration, lost.call_id, lost.connection) == (15.0, "feed", 0, 1)
    assert (lost.code, lost.reason, lost.verdict, lost.up_for) == (1012, "restart", "reconnect", 5.0)
    (scheduled,) = only(recorder, WsReconnectScheduled)
    assert (scheduled.time, scheduled.connection, scheduled.delay, scheduled.reason) == (15.0, 1, 0.5, "reconnect")
    assert (scheduled.integration, scheduled.call_id) == ("feed", 0)
    messages = only(recorder, WsMessage)
    assert [(m.time, m.connection, m.seq, m.size, m.call_id, m.integration) for m in messages] == [
        (10.0, 1, 1, len(seq(1)), 0, "feed"),
        (10.0, 1, 2, len(seq(2)), 0, "feed"),
        (15.5, 2, 3, len(seq(3)), 0, "feed"),
    ]
    (closed,) = only(recorder, WsClosed)
    assert (closed.time, closed.integration, closed.call_id, closed.connection, closed.code, closed.up_for) == (
        15.5,
        "feed",
        0,
        2,
        1000,
        0.0,
    )
    assert clock.now() == 15.5  # the reconnect waited first_delay on the injected clock
    assert up.closes[-1] == (1000, "")  # close()'s defaults
    started = [(e.method, e.target, e.attempt) for e in recorder.events if isinstance(e, AttemptStarted)]
    assert started == [("CONNECT", up.url, 1), ("CONNECT", up.url, 1)]


async def test_resume_is_skipped_without_a_sequence_seen_or_when_it_returns_none() -> None:
    async with upstream(after("bye", closing(1012)), after("bye", closing(1012), seq(1)), sends(seq(2))) as up:
        asked: list[int] = []

        def resume(last: int) -> str | None:
            asked.append(last)
            return None

        ws = ResilientWebSocket(cfg(up.url, resume=resume), clock=ManualClock())
        connect = asyncio.ensure_future(ws.__anext__())
        await asyncio.wait_for(up.inbox.get(), 5)  # "sub" of the first connection
        await ws.send("bye")  # that connection closes before any message: nothing seen, no resume
        assert await asyncio.wait_for(connect, 5) == seq(1)
        await ws.send("bye")
        assert await next_of(ws) == seq(2)
        await ws.close()
    assert asked == [1]
    assert up.received[1][0] == "sub"
    assert up.received[2][0] == "sub"


async def test_the_user_closes_with_a_code_and_reason_the_partner_receives() -> None:
    async with upstream(sends(seq(1))) as up:
        clock, recorder = ManualClock(), Recorder()
        ws = ResilientWebSocket(cfg(up.url), clock=clock, hooks=[recorder])
        await ws.close()  # not connected yet: nothing to report
        assert not only(recorder, WsClosed)
        with pytest.raises(StopAsyncIteration):
            await ws.__anext__()
    async with upstream(sends(seq(1))) as up:
        clock, recorder = ManualClock(), Recorder()
        async with ResilientWebSocket(cfg(up.url), clock=clock, hooks=[recorder]) as ws:
            assert await next_of(ws) == seq(1)
            clock.advance(2.5)
            await ws.close(4000, "done here")
            assert not ws.connected
            with pytest.raises(StopAsyncIteration):
                await ws.__anext__()
            with pytest.raises(StreamClosed) as ended:
                await ws.send("late")
        for _ in range(100):
            if up.closes:
                break
            await asyncio.sleep(0.01)
    assert up.closes == [(4000, "done here")]
    (closed,) = only(recorder, WsClosed)
    assert (closed.code, closed.up_for, closed.connection) == (4000, 2.5, 1)
    error = ended.value
    assert str(error) == f"[feed] send() on a stream that has ended ({up.url})"
    assert (error.code, error.reason, error.unsent, error.integration, error.url) == (None, "ended", 0, "feed", up.url)


async def test_closing_a_busy_feed_completes_the_handshake_without_waiting_close_timeout() -> None:
    """More than the library's 16 unread frames make it stop reading, so it never saw the partner's close frame and
    close() waited all of close_timeout (10 s by default) on leaving the ``async with`` block of any busy feed."""
    async with upstream(sends(*(seq(n) for n in range(1, 101)))) as up:
        ws = ResilientWebSocket(cfg(up.url, close_timeout=3.0), clock=ManualClock())
        assert await next_of(ws) == seq(1)
        for _ in range(100):
            if len(ws._conn.recv_messages.frames) > 16:  # type: ignore[union-attr]
                break
            await asyncio.sleep(0.01)
        started = time.monotonic()
        await ws.close()
        assert time.monotonic() - started < 1.0
    assert up.closes == [(1000, "")]


async def test_a_reader_waiting_when_the_user_closes_ends_without_reconnecting() -> None:
    async with upstream(sends(seq(1))) as up:
        recorder = Recorder()
        ws = ResilientWebSocket(cfg(up.url), clock=ManualClock(), hooks=[recorder])
        assert await next_of(ws) == seq(1)
        reader = asyncio.ensure_future(ws.__anext__())
        await asyncio.sleep(0.02)
        await ws.close()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(reader, 5)
    assert len(up.headers) == 1
    assert not only(recorder, WsDisconnected)


# -- how a connection ends ------------------------------------------------------------------------------------


async def test_a_clean_close_ends_the_iteration_and_later_sends_fail() -> None:
    async with upstream(sends(seq(1), then=closing(1000, "bye"))) as up:
        recorder = Recorder()
        ws = ResilientWebSocket(cfg(up.url), clock=ManualClock(), hooks=[recorder])
        assert [m async for m in ws] == [seq(1)]
        with pytest.raises(StopAsyncIteration):
            await ws.__anext__()
        with pytest.raises(StreamClosed, match="ended"):
            await ws.send("x")
        await ws.close()
    (lost,) = only(recorder, WsDisconnected)
    assert (lost.code, lost.reason, lost.verdict) == (1000, "bye", "clean")
    assert not only(recorder, WsReconnectScheduled)
    assert not only(recorder, WsClosed)
    assert len(up.headers) == 1


async def test_a_permanent_close_raises_stream_closed_with_what_was_left_unsent() -> None:
    async with upstream(after("go", closing(1008, "policy"), seq(1))) as up:
        clock, recorder = ManualClock(), Recorder()
        ws = ResilientWebSocket(cfg(up.url + "?token=hush"), clock=clock, hooks=[recorder])
        assert await next_of(ws) == seq(1)
        await ws.send("go")
        conn = ws._conn
        assert conn is not None
        await asyncio.wait_for(conn.wait_closed(), 5)
        await ws.send("lost-1")  # the send fails on the closed connection: queued, not dropped
        await ws.send("lost-2")
        assert ws.unsent == 2
        with pytest.raises(StreamClosed) as caught:
            await next_of(ws)
        with pytest.raises(StreamClosed) as again:
            await ws.__anext__()
        with pytest.raises(StreamClosed) as on_send:
            await ws.send("later")
        await ws.close()
    error = caught.value
    assert again.value is error
    assert on_send.value is error
    assert str(error) == f"[feed] the partner closed the stream with code 1008 ({up.url}?token=***)"
    assert (error.code, error.reason, error.unsent, error.integration) == (1008, "policy", 2, "feed")
    assert error.url == up.url + "?token=***"
    (lost,) = only(recorder, WsDisconnected)
    assert (lost.code, lost.reason, lost.verdict) == (1008, "policy", "permanent")
    assert not only(recorder, WsReconnectScheduled)


async def test_an_abort_without_a_close_frame_reconnects_as_code_none() -> None:
    async with upstream(sends(seq(1), then=aborting), sends(seq(2))) as up:
        recorder = Recorder()
        ws = ResilientWebSocket(cfg(up.url), clock=ManualClock(), hooks=[recorder])
        assert [await next_of(ws), await next_of(ws)] == [seq(1), seq(2)]
        await ws.close()
    (lost,) = only(recorder, WsDisconnected)
    assert (lost.code, lost.reason, lost.verdict) == (None, "", "reconnect")


async def test_a_peer_that_stops_answering_pings_is_failed_by_the_client_with_1011() -> None:
    async def freeze(conn: ServerConnection) -> None:
        conn.transport.pause_reading()

    async with upstream(sends(seq(1), then=freeze), sends(seq(2))) as up:
        recorder = Recorder()
        config = cfg(up.url, ping_interval=0.05, ping_timeout=0.05, close_timeout=0.05)
        ws = ResilientWebSocket(config, clock=ManualClock(), hooks=[recorder])
        started = time.monotonic()
        assert [await next_of(ws), await next_of(ws)] == [seq(1), seq(2)]
        assert time.monotonic() - started < 2.0
        await ws.close()
    (lost,) = only(recorder, WsDisconnected)
    assert (lost.code, lost.verdict) == (1011, "reconnect")  # the frame the client sent: no frame came back
    assert "ping" in lost.reason


async def test_staleness_is_measured_from_the_last_message() -> None:
    async with upstream(after("go", lambda conn: asyncio.sleep(0), seq(1), seq(2), seq(3)), sends(seq(4))) as up:
        clock, recorder = ManualClock(), Recorder()
        ws = ResilientWebSocket(cfg(up.url, stale_after=0.5), clock=clock, hooks=[recorder])
        assert await next_of(ws) == seq(1)
        clock.advance(0.25)
        assert await next_of(ws) == seq(2)  # at 0.25
        clock.advance(0.375)
        assert await next_of(ws) == seq(3)  # at 0.625: 0.375 after the last, not stale
        await ws.send("go")
        clock.advance(0.25)
        started = time.monotonic()
        assert await next_of(ws) == seq(4)  # 0.25 left: stale after 0.25 real seconds, then reconnected
        assert 0.2 <= time.monotonic() - started < 0.8
        await ws.close()
    (stale,) = only(recorder, WsStale)
    assert (stale.time, stale.integration, stale.call_id, stale.connection, stale.silent_for) == (
        0.875,
        "feed",
        0,
        1,
        0.25,
    )
    (lost,) = only(recorder, WsDisconnected)
    assert (lost.time, lost.code, lost.reason, lost.verdict, lost.up_for) == (0.875, None, "stale", "stale", 0.875)
    (scheduled,) = only(recorder, WsReconnectScheduled)
    assert (scheduled.delay, scheduled.reason) == (0.5, "stale")
    assert up.closes[0] == (None, "")  # dropped without a close handshake
    assert len(up.headers) == 2


async def test_a_stale_socket_whose_time_is_already_up_is_dropped_at_once() -> None:
    async with upstream(sends(seq(1)), sends(seq(2))) as up:
        clock, recorder = ManualClock(), Recorder()
        ws = ResilientWebSocket(cfg(up.url, stale_after=5.0), clock=clock, hooks=[recorder])
        assert await next_of(ws) == seq(1)
        clock.advance(7.0)
        started = time.monotonic()
        assert await next_of(ws) == seq(2)
        assert time.monotonic() - started < 0.5
        await ws.close()
    (stale,) = only(recorder, WsStale)
    assert stale.silent_for == 7.0


async def test_a_stale_deadline_is_in_real_seconds_of_a_scaled_clock() -> None:
    class Scaled(ManualClock):
        time_scale = 10.0

    async with upstream(sends(seq(1)), sends(seq(2))) as up:
        ws = ResilientWebSocket(cfg(up.url, stale_after=3.0), clock=Scaled())
        assert await next_of(ws) == seq(1)
        started = time.monotonic()
        assert await next_of(ws) == seq(2)  # 3 s of a clock ten times faster: 0.3 real seconds
        assert 0.25 <= time.monotonic() - started < 0.9
        await ws.close()


# -- the handshake --------------------------------------------------------------------------------------------


async def test_retried_handshakes_count_their_attempts_and_reset_per_connection() -> None:
    refusals = (refuse(503, **{"Retry-After": "1"}), None, refuse(503, **{"Retry-After": "2"}), None)
    async with upstream(after("bye", closing(1012), seq(1)), sends(seq(2)), refusals=refusals) as up:
        clock, recorder = ManualClock(), Recorder()
        ws = ResilientWebSocket(cfg(up.url), clock=clock, hooks=[recorder])
        assert await next_of(ws) == seq(1)
        await ws.send("bye")
        assert await next_of(ws) == seq(2)
        await ws.close()
    attempts = [(a.connection, a.attempt) for a in only(recorder, WsConnectAttempt)]
    assert attempts == [(1, 1), (1, 2), (2, 1), (2, 2)]
    connected = [(c.connection, c.attempts, c.down_for) for c in only(recorder, WsConnected)]
    assert connected == [(1, 2, 0.0), (2, 2, 2.5)]  # the first delay (0.5), then Retry-After (2)


async def test_a_refused_handshake_ends_the_stream_with_the_engines_error() -> None:
    async with upstream(sends(), refusals=(refuse(401),)) as up:
        ws = ResilientWebSocket(cfg(up.url), clock=ManualClock())
        with pytest.raises(AuthError) as caught:
            await next_of(ws)
        await ws.close()  # the stream failed: closing does not turn the failure into a clean end
        with pytest.raises(AuthError) as again:
            await ws.__anext__()
        with pytest.raises(AuthError) as on_send:
            await ws.send("x")
    assert again.value is caught.value
    assert on_send.value is caught.value
    assert len(up.headers) == 1


async def test_the_handshake_is_bounded_by_open_timeout_and_by_the_engines_deadline() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        await asyncio.sleep(30)

    class Scaled(ManualClock):
        time_scale = 20.0

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    once = ReconnectPolicy(max_attempts=1)
    try:
        bounded = ResilientWebSocket(cfg(url, open_timeout=0.2, reconnect=once), clock=ManualClock())
        started = time.monotonic()
        with pytest.raises((ConnectTimeout, RetriesExhausted)):
            await bounded.__anext__()
        assert 0.15 <= time.monotonic() - started < 1.0
        scaled = ResilientWebSocket(cfg(url, open_timeout=4.0, reconnect=once), clock=Scaled())
        started = time.monotonic()
        with pytest.raises((ConnectTimeout, RetriesExhausted)):
            await scaled.__anext__()
        assert 0.15 <= time.monotonic() - started < 1.0  # 4 s of a clock twenty times faster
        deadline = ResilientWebSocket(cfg(url, open_timeout=30.0, reconnect=once), clock=ManualClock())
        deadline.engine.deadline = 0.2
        started = time.monotonic()
        with pytest.raises((ConnectTimeout, RetriesExhausted)):
            await deadline.__anext__()
        assert 0.15 <= time.monotonic() - started < 1.0
    finally:
        server.close()


async def test_the_librarys_settings_are_the_configs_in_real_seconds() -> None:
    class Scaled(ManualClock):
        time_scale = 4.0

    async with upstream(sends(seq(1))) as up:
        config = cfg(up.url, ping_interval=8.0, ping_timeout=2.0, close_timeout=1.0, max_size=12345)
        ws = ResilientWebSocket(config, clock=Scaled())
        assert await next_of(ws) == seq(1)
        conn = ws._conn
        assert conn is not None
        assert (conn.ping_interval, conn.ping_timeout, conn.close_timeout) == (2.0, 0.5, 0.25)
        assert conn.protocol.max_message_size == 12345
        assert conn.protocol.logger.logger is ws._wire_logger
        await ws.close()
        unbounded = ResilientWebSocket(cfg(up.url, ping_interval=None, ping_timeout=None, max_size=None))
        assert await next_of(unbounded) == seq(1)
        conn = unbounded._conn
        assert conn is not None
        assert (conn.ping_interval, conn.ping_timeout, conn.protocol.max_message_size) == (None, None, None)
        await unbounded.close()


async def test_a_message_past_max_size_fails_the_connection_with_1009() -> None:
    async with upstream(sends("x" * 200), sends(seq(2))) as up:
        recorder = Recorder()
        ws = ResilientWebSocket(cfg(up.url, max_size=100), clock=ManualClock(), hooks=[recorder])
        assert await next_of(ws) == seq(2)
        await ws.close()
    (lost,) = only(recorder, WsDisconnected)
    assert lost.code == 1009


async def test_credentials_are_read_at_every_handshake_and_kept_out_of_the_wire_log(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []

    def credentials() -> dict[str, str]:
        calls.append(1)
        return {"X-Api-Key": f"key-from-callable-{len(calls)}", "X-Other": "plain-value"}

    async def echo(conn: ServerConnection, up: Upstream) -> None:
        await sends(seq(len(up.received)), then=closing(1012))(conn, up)

    def process_response(conn: ServerConnection, request: Request, response: Response) -> Response:
        # echo the credentials where no header rule applies: only the known secret forms mask them
        response.headers["X-Echo"] = f"{request.headers.get('Authorization')} {request.headers.get('X-Api-Key')}"
        response.headers["X-Query"] = "query-secret-777"
        return response

    caplog.set_level(logging.DEBUG, logger="integration_kit.websocket.wire.creds")
    monkeypatch.setenv("CREDS_TOKEN", "env-token-first")
    async with upstream(echo, process_response=process_response) as up:
        config = cfg(
            up.url + "?sig=query-secret-777",
            name="creds",
            auth=BearerAuth("CREDS_TOKEN"),
            credentials=credentials,
            secret_query_params=("sig",),
        )
        ws = ResilientWebSocket(config, clock=ManualClock())
        assert await next_of(ws) == seq(1)
        monkeypatch.setenv("CREDS_TOKEN", "env-token-second")
        assert await next_of(ws) == seq(2)
        await ws.close()
    assert [h["Authorization"] for h in up.headers] == ["Bearer env-token-first", "Bearer env-token-second"]
    assert [h["X-Api-Key"] for h in up.headers] == ["key-from-callable-1", "key-from-callable-2"]
    assert [h["X-Other"] for h in up.headers] == ["plain-value", "plain-value"]
    assert up.paths[0] == "/feed?sig=query-secret-777"
    lines = [r.getMessage() for r in caplog.records if r.name == "integration_kit.websocket.wire.creds"]
    for line in lines:
        for secret in ("env-token-first", "env-token-second", "key-from-callable-1", "key-from-callable-2"):
            assert secret not in line
        assert "query-secret-777" not in line
    assert lines.count("< X-Echo: *** ***") == 2  # the token without its scheme and the key, as known forms
    assert lines.count("< X-Query: ***") == 2
    assert lines.count("> X-Other: ***") == 2  # whatever the callable returns counts as a credential


# -- the outgoing queue ---------------------------------------------------------------------------------------


async def test_a_full_queue_fails_or_waits_as_configured() -> None:
    ws = ResilientWebSocket(cfg("ws://127.0.0.1:9/", outgoing_limit=2, outgoing="fail", name="q"))
    await ws.send("a")
    await ws.send("b")
    with pytest.raises(OutgoingQueueFull) as full:
        await ws.send("c")
    assert str(full.value) == "[q] outgoing queue full (2 messages) while disconnected"
    assert (full.value.limit, full.value.integration, ws.unsent) == (2, "q", 2)

    waiting = ResilientWebSocket(cfg("ws://127.0.0.1:9/", outgoing_limit=1))
    await waiting.send("a")
    blocked = asyncio.ensure_future(waiting.send("b"))
    await asyncio.sleep(0.02)
    assert not blocked.done()
    assert waiting.unsent == 1
    await waiting.close()
    with pytest.raises(StreamClosed, match="ended") as ended:
        await asyncio.wait_for(blocked, 5)
    assert ended.value.unsent == 1  # what the closed stream never sent


async def test_a_send_that_waited_for_room_is_delivered_once_the_queue_drains() -> None:
    async with upstream(sends(seq(1), seq(2))) as up:
        ws = ResilientWebSocket(cfg(up.url, outgoing_limit=1), clock=ManualClock())
        await ws.send("early")
        blocked = asyncio.ensure_future(ws.send("waited"))
        await asyncio.sleep(0.01)
        assert not blocked.done()
        assert await next_of(ws) == seq(1)  # connects: the queue drains, the waiting send goes out
        await asyncio.wait_for(blocked, 5)
        assert ws.unsent == 0  # was: stranded in the queue while connected, and every later send waited forever
        await asyncio.wait_for(ws.send("after"), 5)
        assert await next_of(ws) == seq(2)
        for _ in range(100):
            if len(up.received[0]) >= 4:
                break
            await asyncio.sleep(0.01)
        assert ws.unsent == 0
        await ws.close()
    assert up.received[0] == ["sub", "early", "waited", "after"]


async def test_a_send_while_connected_goes_out_at_once() -> None:
    async with upstream(sends(seq(1))) as up:
        ws = ResilientWebSocket(cfg(up.url), clock=ManualClock())
        assert await next_of(ws) == seq(1)
        await ws.send("now")
        assert ws.unsent == 0
        assert await asyncio.wait_for(up.inbox.get(), 5) == "sub"
        assert await asyncio.wait_for(up.inbox.get(), 5) == "now"
        await ws.close()


# -- sequences ------------------------------------------------------------------------------------------------


async def test_duplicates_are_dropped_and_a_gap_is_filled_by_resync_in_order() -> None:
    asked: list[tuple[int, int]] = []

    async def resync(first: int, last: int) -> list[str]:
        asked.append((first, last))
        return [seq(n) for n in range(first, last)] + ["no-seq"]

    async with upstream(sends(seq(1), seq(2), seq(2), seq(5), seq(6))) as up:
        clock, recorder = ManualClock(3.0), Recorder()
        ws = ResilientWebSocket(cfg(up.url), clock=clock, hooks=[recorder], resync=resync)
        got = [await next_of(ws) for _ in range(6)]
        await ws.close()
    assert got == [seq(1), seq(2), seq(3), seq(4), "no-seq", seq(5)]
    assert asked == [(3, 5)]
    (duplicate,) = only(recorder, WsDuplicate)
    assert (duplicate.time, duplicate.seq, duplicate.connection, duplicate.integration, duplicate.call_id) == (
        3.0,
        2,
        1,
        "feed",
        0,
    )
    (gap,) = only(recorder, WsGap)
    assert (gap.time, gap.expected, gap.received, gap.connection, gap.integration, gap.call_id) == (
        3.0,
        3,
        5,
        1,
        "feed",
        0,
    )
    (resynced,) = only(recorder, WsResync)
    assert (resynced.time, resynced.expected, resynced.received, resynced.messages) == (3.0, 3, 5, 3)
    assert (resynced.connection, resynced.integration, resynced.call_id) == (1, "feed", 0)
    assert [(m.seq, m.size) for m in only(recorder, WsMessage)] == [
        (1, len(seq(1))),
        (2, len(seq(2))),
        (3, len(seq(3))),
        (4, len(seq(4))),
        (None, 6),
        (5, len(seq(5))),
    ]
    assert ws.tracker.last == 5


async def test_without_resync_a_gap_is_reported_and_the_message_delivered() -> None:
    async with upstream(sends(seq(4), seq(7), bytes(3))) as up:
        recorder = Recorder()
        ws = ResilientWebSocket(cfg(up.url), clock=ManualClock(), hooks=[recorder])
        got = [await next_of(ws) for _ in range(3)]
        await ws.close()
    assert got == [seq(4), seq(7), bytes(3)]  # the first message's number is no gap
    assert [(g.expected, g.received) for g in only(recorder, WsGap)] == [(5, 7)]
    assert [(m.seq, m.size) for m in only(recorder, WsMessage)] == [(4, len(seq(4))), (7, len(seq(7))), (None, 3)]


async def test_without_a_sequence_nothing_is_judged() -> None:
    async def resync(first: int, last: int) -> list[str]:
        raise AssertionError("no gap without a sequence")

    async with upstream(sends(seq(2), seq(2), seq(9))) as up:
        recorder = Recorder()
        ws = ResilientWebSocket(cfg(up.url, sequence=None), clock=ManualClock(), hooks=[recorder], resync=resync)
        got = [await next_of(ws) for _ in range(3)]
        await ws.close()
    assert got == [seq(2), seq(2), seq(9)]
    assert [m.seq for m in only(recorder, WsMessage)] == [None, None, None]
    assert not only(recorder, WsDuplicate)
    assert not only(recorder, WsGap)


async def test_resync_fillers_without_a_sequence_function_are_reported_without_numbers() -> None:
    async def resync(first: int, last: int) -> list[str]:
        return [seq(2)]

    async with upstream(sends(seq(1), seq(3))) as up:
        recorder = Recorder()
        ws = ResilientWebSocket(cfg(up.url), clock=ManualClock(), hooks=[recorder], resync=resync)
        got = [await next_of(ws) for _ in range(3)]
        await ws.close()
    assert got == [seq(1), seq(2), seq(3)]
    assert [m.seq for m in only(recorder, WsMessage)] == [1, 2, 3]
