"""Queue scenarios played live on each broker through a FaultProxy: the scenario's faults really happen, and the
effects are counted in SQLite (lost and applied twice must be 0)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from queue_brokers import BrokerEnv, amqp_available, broker_env, nats_url, session

from integration_kit.playbook.queue_live import play_live
from integration_kit.queues.broker import Broker
from integration_kit.queues.sim import QueueResult, QueueScenario, QueueSettings

pytestmark = [pytest.mark.queues, pytest.mark.slow]
__all__ = ["amqp_available", "broker_env", "nats_url"]

SCALE = 0.1  # real seconds per scenario second


def play(env: BrokerEnv, scenario: QueueScenario, settings: QueueSettings, folder: Path) -> QueueResult:
    """Declare a topology with scaled retry delays, play ``scenario`` through a proxy, delete the topology."""
    topology = env.topology(retry_delays=(0.2, 0.4), max_attempts=3)
    options: dict[str, object] = {"ack_wait": 2.0} if env.kind == "jetstream" else {}

    async def body() -> QueueResult:
        async with session(env, topology, **options) as admin:
            with env.proxy() as proxy:

                def connect() -> Broker:
                    return env.make(topology, url=env.via(proxy), connect_timeout=1.0, **options)

                return await play_live(
                    scenario, settings, proxy=proxy, connect=connect, admin=admin, folder=folder, time_scale=SCALE
                )

    return asyncio.run(body())


@pytest.mark.timeout(120)
def test_broker_outage_poison_duplicates_and_a_crash_lose_nothing_and_apply_nothing_twice(
    broker_env: BrokerEnv, tmp_path: Path
) -> None:
    scenario = QueueScenario(
        "everything-at-once",
        duration=60,
        rate=5,
        failure_rate=0.05,
        poison_rate=0.05,
        duplicate_rate=0.1,
        broker_outage=(15, 30),
        consumer_crash_at=40,
    )
    result = play(broker_env, scenario, QueueSettings(concurrency=8), tmp_path)
    figures = result.figures()
    assert figures["messages"] == 300
    assert figures["lost"] == 0
    assert figures["applied_twice"] == 0
    assert figures["applied"] == 300 - figures["poison"]
    assert figures["dead_poison"] == figures["poison"] > 0
    assert figures["dead_good"] == 0
    assert figures["redeliveries"] > 0  # the failed first attempts came back


@pytest.mark.timeout(120)
@pytest.mark.parametrize("pause", [True, False], ids=["pause", "drain"])
def test_a_downstream_outage_pauses_the_consumer_or_drains_the_queue_into_the_dlq(
    broker_env: BrokerEnv, tmp_path: Path, pause: bool
) -> None:
    scenario = QueueScenario("warehouse-outage", duration=40, rate=5, downstream_outage=(10, 25))
    settings = QueueSettings(concurrency=4, pause_on_open_breaker=pause, breaker_failures=3, breaker_wait=5.0)
    result = play(broker_env, scenario, settings, tmp_path)
    figures = result.figures()
    assert figures["lost"] == 0
    assert figures["applied_twice"] == 0
    if pause:
        assert figures["pauses"] >= 1
        assert figures["dead_good"] == 0  # the messages waited on the broker
    else:
        assert figures["pauses"] == 0
        assert figures["dead_good"] > 0  # their attempts were used up against the open breaker
