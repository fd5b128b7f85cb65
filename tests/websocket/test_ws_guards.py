"""The handshake's breaker, and a resync fetched through the kit's HTTP client from a real HTTP server."""

from __future__ import annotations

import json

import pytest
from asgi_server import serve_in_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from ws_kit import SUBSCRIBE, seq_of

from integration_kit import AsyncResilientClient, ClientConfig
from integration_kit.clock import ManualClock
from integration_kit.errors import CircuitOpenError
from integration_kit.events import Recorder
from integration_kit.policies.config import BreakerPolicy
from integration_kit.sim.ws_upstream import ConnectionFault, FeedScript, FlakyFeed
from integration_kit.websocket import ReconnectPolicy, ResilientWebSocket, WebSocketConfig, http_resync
from integration_kit.websocket.events import WsResync

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


async def test_the_breaker_opens_on_refused_handshakes_and_stops_the_reconnect() -> None:
    breaker = BreakerPolicy(failure_threshold=2, failure_rate_threshold=None, wait_in_open=60.0)
    policy = ReconnectPolicy(first_delay=0.0, base_delay=0.01, max_attempts=5)
    recorder = Recorder()
    with FlakyFeed(FeedScript(rate=200, connections=(ConnectionFault(after=3, code=1012),))) as feed:
        config = WebSocketConfig(url=feed.url, subscribe=(SUBSCRIBE,), reconnect=policy, breaker=breaker)
        async with ResilientWebSocket(config, clock=ManualClock(), hooks=[recorder]) as ws:
            assert len([seq_of(await ws.__anext__()) for _ in range(3)]) == 3
            # from the next handshake on, every one is refused with 503 (the first handshake was number 0)
            feed.script = FeedScript(rate=200, refusals=(0,) + (503,) * 50, retry_after=None)
            with pytest.raises(CircuitOpenError):
                await ws.__anext__()
        refused = feed.stats().refused
    assert refused == {503: 2}  # the breaker stopped the third attempt before it reached the server


async def test_a_gap_is_filled_by_a_snapshot_through_the_kits_http_client() -> None:
    async def prices(request: Request) -> JSONResponse:
        first, last = int(request.query_params["from"]), int(request.query_params["to"])
        return JSONResponse([{"seq": n, "price": 1.0} for n in range(first, last + 1)])

    app = Starlette(routes=[Route("/prices", prices)])
    script = FeedScript(rate=200, resume=False, connections=(ConnectionFault(after=10, code=1012),))
    recorder = Recorder()
    with serve_in_thread(app) as base_url, FlakyFeed(script) as feed:
        async with AsyncResilientClient(ClientConfig(name="prices-http", base_url=base_url)) as http:
            config = WebSocketConfig(
                url=feed.url,
                subscribe=(SUBSCRIBE,),
                sequence="seq",
                reconnect=ReconnectPolicy(first_delay=0.2, jitter="none"),
            )
            async with ResilientWebSocket(config, hooks=[recorder], resync=http_resync(http, "/prices")) as ws:
                seqs = []
                async for message in ws:
                    seqs.append(json.loads(message)["seq"])
                    if len(seqs) == 60:
                        break
    assert seqs == list(range(seqs[0], seqs[0] + 60))
    (resync,) = recorder.of(WsResync)
    assert isinstance(resync, WsResync)
    assert resync.messages >= 10
