"""The deadline transports' pools never leak a connection slot when pool waits time out under contention.

httpcore 1.0's pool can hand a new connection to a request whose pool wait has just timed out (or been cancelled);
that connection is never connected nor freed, and once every slot is one of them every request fails with a pool
timeout against a healthy server (encode/httpcore#1093). A stalling partner makes exactly those pool timeouts: the
live ``supplier-stalls`` scenario wedged the catalog client's 100 connections for good. Here a real server answers
half the requests too late for the read timeout (their connections are closed, so new ones are created for the
queue) while 24 callers share 4 connections with a 20 ms pool timeout; afterwards the pool must hold no connection
that serves nothing, and a request to the healthy server must succeed. With httpx's own transport this wedges the
pool within a second.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest

from integration_kit.http.transport import AsyncDeadlineTransport, DeadlineTransport

#: Real seconds of contention (bounded; the leak shows within a second on a 2-core machine).
CHURN = 1.5
CALLERS = 24
LIMITS = httpx.Limits(max_connections=4, max_keepalive_connections=4)
TIGHT = httpx.Timeout(connect=1.0, read=0.05, write=1.0, pool=0.02)
AFTER = httpx.Timeout(2.0, pool=1.0)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """``/slow`` answers after 0.2 s (past the 50 ms read timeout), anything else at once."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/slow":
        await anyio.sleep(0.2)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    from asgi_server import serve_in_thread

    with serve_in_thread(app) as url:
        yield url


def stranded(pool: Any) -> list[Any]:
    """Connections that are neither idle, available nor closed (nothing is in flight when this is asked)."""
    return [c for c in pool.connections if not (c.is_idle() or c.is_available() or c.is_closed())]


@pytest.mark.timeout(60)
def test_the_sync_pool_keeps_its_slots_through_pool_timeouts(server: str) -> None:
    transport = DeadlineTransport(limits=LIMITS)
    with httpx.Client(transport=transport, base_url=server, timeout=TIGHT) as client:
        stop = time.monotonic() + CHURN

        def caller(seed: int) -> None:
            rng = random.Random(seed)
            while time.monotonic() < stop:
                with contextlib.suppress(httpx.TransportError):
                    client.get("/slow" if rng.random() < 0.5 else "/fast")

        threads = [threading.Thread(target=caller, args=(i,)) for i in range(CALLERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert stranded(transport._pool) == []
        assert client.get("/fast", timeout=AFTER).text == "ok"


@pytest.mark.timeout(60)
def test_the_async_pool_keeps_its_slots_through_pool_timeouts(server: str) -> None:
    transport = AsyncDeadlineTransport(limits=LIMITS)

    async def main() -> str:
        async with httpx.AsyncClient(transport=transport, base_url=server, timeout=TIGHT) as client:
            stop = time.monotonic() + CHURN

            async def caller(seed: int) -> None:
                rng = random.Random(seed)
                while time.monotonic() < stop:
                    with contextlib.suppress(httpx.TransportError):
                        await client.get("/slow" if rng.random() < 0.5 else "/fast")

            async with anyio.create_task_group() as group:
                for i in range(CALLERS):
                    group.start_soon(caller, i)
            assert stranded(transport._pool) == []
            response = await client.get("/fast", timeout=AFTER)
            return response.text

    assert anyio.run(main) == "ok"
