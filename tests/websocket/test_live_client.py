"""The WebSocket client against the live flaky feed on 127.0.0.1: drops, resume, gaps, stalls, keepalive, close
codes, refusals, credentials and the outgoing queue, over real sockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence

import pytest
from ws_kit import FAST, SUBSCRIBE, resume_after, seq_of

from integration_kit.clock import ManualClock
from integration_kit.errors import AuthError, RetriesExhausted
from integration_kit.events import AttemptFinished, Recorder, RetryScheduled
from integration_kit.http.auth import BearerAuth
from integration_kit.sim.ws_upstream import ConnectionFault, FeedScript, FlakyFeed
from integration_kit.websocket import (
    CloseClass,
    OutgoingQueueFull,
    ReconnectPolicy,
    ResilientWebSocket,
    StreamClosed,
    WebSocketConfig,
)
from integration_kit.websocket.events import (
    WsConnected,
    WsDisconnected,
    WsDuplicate,
    WsGap,
    WsReconnectScheduled,
    WsResync,
    WsStale,
)

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


def config(feed: FlakyFeed, **overrides: object) -> WebSocketConfig:
    settings: dict[str, object] = {
        "url": feed.url,
        "name": "prices",
        "reconnect": FAST,
        "subscribe": (SUBSCRIBE,),
        "sequence": "seq",
        "resume": resume_after,
        "open_timeout": 2.0,
    }
    settings.update(overrides)
    return WebSocketConfig(**settings)  # type: ignore[arg-type]


async def take(feed: AsyncIterator[str | bytes], count: int) -> list[int]:
    seqs: list[int] = []
    async for message in feed:
        seqs.append(seq_of(message))
        if len(seqs) == count:
            break
    return seqs


def consecutive(seqs: Sequence[int]) -> bool:
    return list(seqs) == list(range(seqs[0], seqs[0] + len(seqs)))


async def test_a_steady_feed_arrives_in_order() -> None:
    with FlakyFeed(FeedScript(rate=200)) as feed:
        recorder = Recorder()
        async with ResilientWebSocket(config(feed), hooks=[recorder]) as ws:
            seqs = await take(ws, 30)
        assert consecutive(seqs)
        assert len(recorder.of(WsConnected)) == 1
    assert feed.stats().client_closes == (1000,)  # the close handshake on leaving the block


@pytest.mark.parametrize("code", [None, 1011, 1012, 1013])
async def test_a_drop_resumes_with_no_message_lost_and_none_twice(code: int | None) -> None:
    script = FeedScript(rate=200, connections=(ConnectionFault(after=10, code=code),))
    with FlakyFeed(script) as feed:
        recorder = Recorder()
        async with ResilientWebSocket(config(feed), hooks=[recorder], clock=ManualClock()) as ws:
            seqs = await take(ws, 40)
        assert consecutive(seqs), seqs
        (lost,) = recorder.of(WsDisconnected)
        assert isinstance(lost, WsDisconnected)
        assert (lost.code, lost.verdict) == (code, "reconnect")
        assert len(recorder.of(WsConnected)) == 2
        assert not recorder.of(WsGap)
        assert any(json.loads(r) == {"op": "resume", "after": seqs[9]} for r in feed.stats().received)


async def test_without_resume_a_drop_is_a_gap_that_resync_fills() -> None:
    script = FeedScript(rate=200, resume=False, connections=(ConnectionFault(after=10, code=1012),))
    asked: list[tuple[int, int]] = []

    async def resync(expected: int, received: int) -> list[str]:
        asked.append((expected, received))
        return [json.dumps({"seq": n}) for n in range(expected, received)]

    with FlakyFeed(script) as feed:
        recorder = Recorder()
        # a reconnect waits 0.1-0.3 s of real time, so messages are due meanwhile and the gap is certain
        slow = ReconnectPolicy(first_delay=0.2, base_delay=0.1, jitter="none")
        async with ResilientWebSocket(config(feed, reconnect=slow), hooks=[recorder], resync=resync) as ws:
            seqs = await take(ws, 80)
    assert consecutive(seqs), seqs
    (gap,) = recorder.of(WsGap)
    assert isinstance(gap, WsGap)
    assert asked == [(gap.expected, gap.received)]
    assert gap.received - gap.expected >= 10  # 0.2 s at 200 messages/s were missed
    (resynced,) = recorder.of(WsResync)
    assert isinstance(resynced, WsResync)
    assert resynced.messages == gap.received - gap.expected


async def test_without_resume_or_resync_the_gap_is_reported() -> None:
    script = FeedScript(rate=200, resume=False, connections=(ConnectionFault(after=5, code=1012),))
    slow = ReconnectPolicy(first_delay=0.2, jitter="none")
    with FlakyFeed(script) as feed:
        recorder = Recorder()
        async with ResilientWebSocket(config(feed, reconnect=slow), hooks=[recorder]) as ws:
            seqs = await take(ws, 20)
    assert not consecutive(seqs)
    assert len(recorder.of(WsGap)) == 1


async def test_duplicates_replayed_by_a_resume_are_dropped() -> None:
    # the feed replays from the resume point; a client that asks for an earlier point gets repeats
    script = FeedScript(rate=200, connections=(ConnectionFault(after=10, code=1012),))
    with FlakyFeed(script) as feed:
        recorder = Recorder()
        cfg = config(feed, resume=lambda last: resume_after(last - 5))
        async with ResilientWebSocket(cfg, hooks=[recorder], clock=ManualClock()) as ws:
            seqs = await take(ws, 30)
    assert consecutive(seqs)
    assert len(recorder.of(WsDuplicate)) == 5


async def test_a_silent_socket_is_caught_by_staleness_and_replaced() -> None:
    script = FeedScript(rate=100, connections=(ConnectionFault(after=5, stall=True),))
    with FlakyFeed(script) as feed:
        recorder = Recorder()
        async with ResilientWebSocket(config(feed, stale_after=0.3), hooks=[recorder]) as ws:
            seqs = await take(ws, 15)
    assert consecutive(seqs)
    (stale,) = recorder.of(WsStale)
    assert isinstance(stale, WsStale)
    assert 0.25 <= stale.silent_for < 1.0
    assert [e.verdict for e in recorder.of(WsDisconnected) if isinstance(e, WsDisconnected)] == ["stale"]


async def test_a_peer_that_stops_answering_pings_is_dropped_by_keepalive() -> None:
    script = FeedScript(rate=100, connections=(ConnectionFault(after=5, freeze=True),))
    with FlakyFeed(script, close_timeout=0.5) as feed:  # the frozen connection never answers the server's close
        recorder = Recorder()
        cfg = config(feed, ping_interval=0.1, ping_timeout=0.2, close_timeout=0.2)
        async with ResilientWebSocket(cfg, hooks=[recorder]) as ws:
            seqs = await take(ws, 15)
    assert consecutive(seqs)
    assert not recorder.of(WsStale)
    assert len(recorder.of(WsConnected)) == 2


@pytest.mark.parametrize("code", [1008, 1003, 4001])
async def test_a_permanent_close_ends_the_stream_with_its_code(code: int) -> None:
    script = FeedScript(rate=200, connections=(ConnectionFault(after=3, code=code),))
    with FlakyFeed(script) as feed:
        recorder = Recorder()
        async with ResilientWebSocket(config(feed), hooks=[recorder]) as ws:
            with pytest.raises(StreamClosed) as caught:
                await take(ws, 10)
            with pytest.raises(StreamClosed):  # the stream stays ended
                await ws.send("late")
        assert feed.stats().accepted == 1
    assert caught.value.code == code
    assert not recorder.of(WsReconnectScheduled)


async def test_the_users_mapping_makes_a_permanent_code_reconnect() -> None:
    script = FeedScript(rate=200, connections=(ConnectionFault(after=3, code=4001),))
    policy = ReconnectPolicy(first_delay=0.05, base_delay=0.05, close_codes={4001: "reconnect"})
    with FlakyFeed(script) as feed:
        async with ResilientWebSocket(config(feed, reconnect=policy)) as ws:
            seqs = await take(ws, 10)
    assert consecutive(seqs)
    assert policy.close_codes[4001] is CloseClass.RECONNECT


async def test_a_clean_close_ends_the_iteration() -> None:
    script = FeedScript(rate=200, connections=(ConnectionFault(after=4, code=1000),))
    with FlakyFeed(script) as feed:
        async with ResilientWebSocket(config(feed)) as ws:
            seqs = [seq_of(m) async for m in ws]
            with pytest.raises(StreamClosed, match="ended"):
                await ws.send("too late")
    assert len(seqs) == 4


async def test_503_and_429_refusals_are_retried_after_their_retry_after() -> None:
    script = FeedScript(rate=200, refusals=(503, 429), retry_after=2)
    with FlakyFeed(script) as feed:
        recorder = Recorder()
        clock = ManualClock()
        async with ResilientWebSocket(config(feed), hooks=[recorder], clock=clock) as ws:
            seqs = await take(ws, 5)
        assert feed.stats().refused == {503: 1, 429: 1}
    assert consecutive(seqs)
    waits = [e for e in recorder.of(RetryScheduled) if isinstance(e, RetryScheduled)]
    assert [(w.delay, w.reason) for w in waits] == [(2.0, "retry_after"), (2.0, "retry_after")]
    assert clock.now() == pytest.approx(4.0)  # waited on the injected clock, not in real time
    (connected,) = recorder.of(WsConnected)
    assert isinstance(connected, WsConnected)
    assert connected.attempts == 3


async def test_401_is_permanent_one_handshake_only() -> None:
    with FlakyFeed(FeedScript(refusals=(401,))) as feed:
        recorder = Recorder()
        async with ResilientWebSocket(config(feed), hooks=[recorder]) as ws:
            with pytest.raises(AuthError):
                await take(ws, 1)
        assert len(feed.stats().handshakes) == 1
    assert [e.status for e in recorder.of(AttemptFinished) if isinstance(e, AttemptFinished)] == [401]


async def test_refusals_past_max_attempts_give_up() -> None:
    with FlakyFeed(FeedScript(refusals=(503,) * 5, retry_after=0)) as feed:
        policy = ReconnectPolicy(max_attempts=3, base_delay=0.01)
        async with ResilientWebSocket(config(feed, reconnect=policy), clock=ManualClock()) as ws:
            with pytest.raises(RetriesExhausted):
                await take(ws, 1)
        assert len(feed.stats().handshakes) == 3


async def test_credentials_come_from_the_named_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRICES_TOKEN", "s3cret-token")
    with FlakyFeed(FeedScript(rate=200, token="s3cret-token")) as feed:
        async with ResilientWebSocket(config(feed, auth=BearerAuth("PRICES_TOKEN"))) as ws:
            assert len(await take(ws, 3)) == 3


async def test_a_credentials_callable_is_called_at_every_handshake() -> None:
    calls: list[int] = []

    def credentials() -> dict[str, str]:
        calls.append(len(calls) + 1)
        return {"Authorization": "Bearer fresh"}

    script = FeedScript(rate=200, token="fresh", connections=(ConnectionFault(after=3, code=1012),))
    with FlakyFeed(script) as feed:
        async with ResilientWebSocket(config(feed, credentials=credentials), clock=ManualClock()) as ws:
            seqs = await take(ws, 10)
        handshakes = len(feed.stats().handshakes)
    assert consecutive(seqs)
    assert calls == [1, 2]
    assert handshakes == 2


async def test_messages_sent_while_disconnected_are_queued_then_flushed_in_order() -> None:
    with FlakyFeed(FeedScript(rate=200)) as feed:
        async with ResilientWebSocket(config(feed, outgoing_limit=2, outgoing="fail")) as ws:
            await ws.send("one")
            await ws.send("two")
            with pytest.raises(OutgoingQueueFull) as full:
                await ws.send("three")
            assert ws.unsent == 2
            await take(ws, 3)
            assert ws.unsent == 0
            await ws.send("four")  # connected: sent at once
            await take(ws, 3)
        received = feed.stats().received
    assert full.value.limit == 2
    assert received == (SUBSCRIBE, "one", "two", "four")


async def test_cancelling_the_reader_closes_with_the_close_handshake() -> None:
    """What a SIGTERM handler does (``loop.add_signal_handler(SIGTERM, task.cancel)``): the task is cancelled, and
    leaving the ``async with`` block sends a 1000 close frame the partner receives."""
    with FlakyFeed(FeedScript(rate=50)) as feed:
        started = asyncio.Event()

        async def reader() -> None:
            async with ResilientWebSocket(config(feed)) as ws:
                async for _ in ws:
                    started.set()

        task = asyncio.create_task(reader())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):
            if feed.stats().client_closes:
                break
            await asyncio.sleep(0.01)
        assert feed.stats().client_closes == (1000,)
