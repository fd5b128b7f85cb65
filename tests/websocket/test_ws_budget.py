"""The retry budget bounds a storm of failing handshakes: over the live flaky feed refusing every upgrade with 503,
the handshakes stop when the budget is spent (well before the reconnect policy's attempts), the engine's
``budget_exhausted`` event says so, and the stream fails with :class:`BudgetExhausted`."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry
from ws_kit import SUBSCRIBE

from integration_kit.errors import BudgetExhausted, RetriesExhausted
from integration_kit.events import BudgetDepleted, Recorder
from integration_kit.policies.config import BudgetPolicy
from integration_kit.sim.ws_upstream import FeedScript, FlakyFeed
from integration_kit.telemetry.prometheus import PrometheusHook
from integration_kit.websocket import ReconnectPolicy, ResilientWebSocket, WebSocketConfig

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

#: Up to 12 handshake attempts, a few milliseconds apart.
QUICK = ReconnectPolicy(first_delay=0.01, base_delay=0.01, max_delay=0.02, max_attempts=12)
#: Every upgrade refused with 503 (no Retry-After): the partner is down.
DOWN = FeedScript(refusals=(503,) * 40, retry_after=None)


async def drain(ws: ResilientWebSocket) -> None:
    async with ws:
        async for _ in ws:
            pytest.fail("no handshake succeeds")


def config(feed: FlakyFeed, budget: BudgetPolicy | None) -> WebSocketConfig:
    return WebSocketConfig(url=feed.url, name="prices", subscribe=(SUBSCRIBE,), reconnect=QUICK, budget=budget)


async def test_the_budget_stops_failing_handshakes_and_says_so() -> None:
    # 10 tokens, one spent per failure, retries only while more than 5 remain: 5 handshakes, then no retry
    recorder = Recorder()
    registry = CollectorRegistry()
    with FlakyFeed(DOWN) as feed:
        ws = ResilientWebSocket(config(feed, BudgetPolicy(max_tokens=10, token_ratio=0.1)), hooks=[recorder])
        PrometheusHook(registry=registry).instrument(ws)
        with pytest.raises(BudgetExhausted):
            await drain(ws)
        stats = feed.stats()
    assert len(stats.handshakes) == 5
    assert stats.refused == {503: 5}
    (spent,) = recorder.of(BudgetDepleted)
    assert isinstance(spent, BudgetDepleted)
    assert (spent.attempt, spent.tokens) == (5, 5.0)
    assert len([e for e in recorder.events if e.kind == "ws_connect_attempt"]) == 5
    refused = registry.get_sample_value(
        "integration_kit_retries_refused_total",
        {"integration_kit_integration": "prices", "integration_kit_retry_refusal": "budget"},
    )
    assert refused is not None
    assert refused >= 1


async def test_without_a_budget_the_same_refusals_run_every_attempt() -> None:
    # the control: the reconnect policy's 12 attempts are all spent, so the budget above is what stopped at 5
    with FlakyFeed(DOWN) as feed:
        with pytest.raises(RetriesExhausted):
            await drain(ResilientWebSocket(config(feed, None)))
        assert len(feed.stats().handshakes) == QUICK.max_attempts
