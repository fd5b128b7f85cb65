"""A secret canary in the credential header and in the URL's query must not reach events, errors, reprs or log
records (the ``websockets`` library's DEBUG trace of the handshake included), over a real connection."""

from __future__ import annotations

import logging

import pytest
from ws_kit import FAST, SUBSCRIBE, seq_of

from integration_kit.errors import AuthError
from integration_kit.events import Recorder
from integration_kit.http.auth import BearerAuth
from integration_kit.sim.ws_upstream import ConnectionFault, FeedScript, FlakyFeed
from integration_kit.websocket import ResilientWebSocket, WebSocketConfig

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

TOKEN = "canary-ws-token-5d1e8b"
QUERY_SECRET = "canary-ws-query-0c77aa"


async def test_no_secret_leaks_through_a_live_run(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("FEED_TOKEN", TOKEN)
    caplog.set_level(logging.DEBUG)
    recorder = Recorder()
    script = FeedScript(rate=200, token=TOKEN, connections=(ConnectionFault(after=3, code=1012),))
    with FlakyFeed(script) as feed:
        config = WebSocketConfig(
            url=f"{feed.url}?token={QUERY_SECRET}&channel=prices",
            auth=BearerAuth("FEED_TOKEN"),
            reconnect=FAST,
            subscribe=(SUBSCRIBE,),
            sequence="seq",
        )
        async with ResilientWebSocket(config, hooks=[recorder]) as ws:
            seen = []
            async for message in ws:
                seen.append(seq_of(message))
                if len(seen) == 6:
                    break
            shown = repr(ws) + repr(config)
    with FlakyFeed(FeedScript(token="other")) as feed:
        refused = WebSocketConfig(url=f"{feed.url}?access_token={QUERY_SECRET}", auth=BearerAuth("FEED_TOKEN"))
        async with ResilientWebSocket(refused, hooks=[recorder]) as ws:
            with pytest.raises(AuthError) as caught:
                await ws.__anext__()
    error = caught.value
    texts = [
        shown,
        str(error),
        repr(error),
        repr(error.__dict__),
        *(repr(e) for e in recorder.events),
        recorder.to_frame().to_csv(),
        *(record.getMessage() for record in caplog.records),
    ]
    assert any("Authorization" in r.getMessage() for r in caplog.records)  # the trace was really logged
    assert any("token=***" in t for t in texts)
    for text in texts:
        assert TOKEN not in text
        assert QUERY_SECRET not in text
