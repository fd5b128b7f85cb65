"""What only the async client has: the hard deadline bound, cancellation, and many tasks at once, on asyncio and
trio. The scenarios it shares with the sync client run in tests/http/test_client.py (parametrised over both)."""

from __future__ import annotations

import time

import anyio
import httpx
import pytest
from builders import client_config
from scripted_upstream import Reply, Upstream

from integration_kit import AsyncResilientClient, ManualClock, Recorder
from integration_kit.errors import BulkheadFull, DeadlineExceeded, ServerError
from integration_kit.policies.breaker import CircuitState
from integration_kit.policies.config import BreakerPolicy, Limits, RetryPolicy, Timeouts

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Stalling(httpx.AsyncBaseTransport):
    """A transport that ignores every timeout: it sets ``entered`` and waits forever, except for calls allowed
    through, which get a 200. It stands for a misbehaving proxy or transport; no socket is opened."""

    def __init__(self) -> None:
        self.entered = anyio.Event()
        self.stall = True
        self.status = 200

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not self.stall:
            return httpx.Response(self.status, json={"ok": True})
        self.entered.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")


config = client_config


async def test_the_deadline_is_a_hard_bound_even_when_the_transport_ignores_timeouts() -> None:
    deadline = 0.3
    async with AsyncResilientClient(config(deadline=deadline, timeouts=30.0), transport=Stalling()) as client:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            await client.get("/x")
        # Without the clipping it would take the 10 s (30 s) timeouts. A bound that holds on a loaded 2-core machine;
    # the overshoot itself (milliseconds) is measured by bench/deadline.py.
    assert time.monotonic() - started < deadline + 1.0


async def test_cancelling_a_call_frees_its_bulkhead_slot_and_breaker_probe() -> None:
    transport = Stalling()
    clock = ManualClock()
    cfg = config(
        limits=Limits(max_concurrent=1),
        breaker=BreakerPolicy(failure_threshold=1, failure_rate_threshold=None, wait_in_open=5, half_open_max_calls=1),
        retry=RetryPolicy.disabled(),
    )
    async with AsyncResilientClient(cfg, transport=transport, clock=clock) as client:
        assert client.breaker is not None
        transport.stall, transport.status = False, 503
        with pytest.raises(ServerError):
            await client.get("/x")  # trips the breaker
        clock.advance(5)
        assert client.breaker.state is CircuitState.HALF_OPEN
        transport.stall = True
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.get, "/stalls")  # the one probe, and the one bulkhead slot
            await transport.entered.wait()
            with pytest.raises(BulkheadFull):
                await client.get("/x")
            tg.cancel_scope.cancel()
        transport.stall, transport.status = False, 200
        response = await client.get("/x")  # both came back: this call is the new probe
        assert response.json() == {"ok": True}
        assert client.breaker.state is CircuitState.CLOSED


async def test_many_concurrent_calls_share_one_client(upstream: Upstream) -> None:
    recorder = Recorder()
    cfg = config(base_url=upstream.base_url, timeouts=Timeouts(connect=2, read=5, write=5, pool=5))
    async with AsyncResilientClient(cfg, hooks=[recorder]) as client:
        statuses: list[int] = []

        async def one(i: int) -> None:
            statuses.append((await client.get(f"/item/{i}")).status_code)

        async with anyio.create_task_group() as tg:
            for i in range(64):
                tg.start_soon(one, i)
    assert statuses == [200] * 64
    assert upstream.count == 64
    assert recorder.summary().calls == 64


async def test_backoff_waits_on_the_injected_clock(upstream: Upstream) -> None:
    clock = ManualClock()
    policy = RetryPolicy(max_attempts=4, base_delay=1.0, multiplier=2.0, jitter="none")
    async with AsyncResilientClient(config(base_url=upstream.base_url, retry=policy), clock=clock) as client:
        upstream.script(Reply(503), Reply(502), Reply(504), Reply(200))
        started = time.monotonic()
        assert (await client.get("/x")).status_code == 200
        assert clock.now() == pytest.approx(1.0 + 2.0 + 4.0)  # seven virtual seconds
        assert time.monotonic() - started < 2.0
