"""Queue scenarios played live on each broker through a FaultProxy: the scenario's faults really happen, and the
effects are counted in SQLite (lost and applied twice must be 0)."""

from __future__ import annotations

import asyncio
import gc
import json
from pathlib import Path

import aio_pika
import aio_pika.exceptions
import nats
import nats.js.errors
import pytest
from queue_brokers import BrokerEnv, amqp_available, broker_env, nats_url, session
from queue_servers import unique_name
from redis_server import free_port

from integration_kit.playbook.cli.app import main
from integration_kit.playbook.kinds.queue import live as queue_live
from integration_kit.playbook.kinds.queue.live import play_live
from integration_kit.playbook.run.stages import open_stage
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
    broker_env: BrokerEnv, tmp_path: Path, recwarn: pytest.WarningsRecorder
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
    gc.collect()
    unclosed = [w for w in recwarn if "never awaited" in str(w.message)]
    assert not unclosed, "a broker connection was left to the garbage collector"  # 5 runs in 7 before the fix


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


@pytest.mark.timeout(120)
def test_a_slow_consumer_builds_a_backlog_that_drains_losing_nothing(broker_env: BrokerEnv, tmp_path: Path) -> None:
    scenario = QueueScenario(
        "slow-consumer-backlog",
        duration=40,
        rate=5,
        backlog=40,  # drained in about a second at 40 a second
        processing_time=0.2,
        slow_consumer=(10, 25),  # 8 handlers at 4 s: 2 a second against 5 arriving, about 45 more waiting by t=25
        slow_processing_time=4.0,
    )
    result = play(broker_env, scenario, QueueSettings(concurrency=8), tmp_path)
    figures = result.figures()
    assert figures["messages"] == 240
    assert (figures["lost"], figures["applied_twice"], figures["applied"]) == (0, 0, 240)

    def during(start: float, end: float, column: str) -> float:
        return max(row[column] for row in result.series if start <= row["t"] < end)

    assert during(0, 1, "depth") + during(0, 1, "outbox") + during(0, 1, "in_flight") >= 30  # the backlog
    assert during(5, 10, "depth") <= 5  # drained before the slowdown
    assert during(22, 26, "depth") >= 20  # the backlog the slow minute built
    assert during(8, 28, "in_flight") >= 6  # slow handlers wait at once, outside the inbox's transaction
    assert during(33, 40, "depth") <= 5  # drained again once handlers are fast
    assert figures["max_lag"] >= 5


def test_thinning_keeps_the_consumers_utilisation() -> None:
    scenario = QueueScenario(
        "big", duration=180, rate=50, backlog=2000, slow_consumer=(30, 90), slow_processing_time=0.5
    )
    plan = queue_live.thin(scenario, 400)
    assert plan.arrivals + plan.backlog == pytest.approx(400, abs=1)
    assert plan.arrivals / plan.backlog == pytest.approx(9000 / 2000, rel=0.05)
    rate = plan.arrivals / scenario.duration
    assert rate * plan.scenario.slow_processing_time == pytest.approx(50 * 0.5, rel=0.01)  # busy handlers, slow
    assert rate * plan.scenario.processing_time == pytest.approx(50 * 0.05, rel=0.01)
    small = QueueScenario("small", duration=40, rate=5)
    assert queue_live.thin(small, 400) == queue_live.Thinned(small, 200, 0, 1.0)


SMALL_SPEC = """
kind = "queue"
name = "live-orders"
description = "A small queue integration played live."
owner = "tests"
role = "both"

[broker]
kind = "{kind}"

[queue]
name = "live-orders"
retry_delays = [2.0, 4.0]
max_attempts = 3

[consumer]
prefetch = 8
concurrency = 8
ack_wait = 30.0

[objectives]
dead_good = 0

[[scenario]]
name = "outage-and-poison"
duration = 40
rate = 5
failure_rate = 0.1
poison_rate = 0.1
broker_outage = [10, 20]
"""


@pytest.mark.timeout(120)
def test_a_queue_spec_runs_live_on_its_broker_and_deletes_its_topology(
    broker_env: BrokerEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "INTEGRATION_KIT_AMQP_URL" if broker_env.kind == "rabbitmq" else "INTEGRATION_KIT_NATS_URL", broker_env.url
    )
    path = tmp_path / "specs" / "live-orders.toml"
    path.parent.mkdir()
    path.write_text(SMALL_SPEC.format(kind=broker_env.kind))
    suffix = unique_name("t")[2:]
    monkeypatch.setattr(queue_live, "_unique", lambda: suffix)
    stage = open_stage(str(path), str(tmp_path / "run"))  # what the exercise notebook does, in this process
    stage.exercise(mode="live").save(stage.out_dir)
    summary = json.loads((stage.out_dir / "summary.json").read_text())
    assert summary["mode"] == "live"
    assert summary["live"] == {"broker": broker_env.kind, "time_scale": 20.0, "max_messages": 400}
    assert summary["scenarios"]["outage-and-poison"]["thinning"] == 1.0  # 200 messages: played whole
    figures = summary["scenarios"]["outage-and-poison"]
    assert figures["messages"] == 200
    assert figures["lost"] == 0
    assert figures["applied_twice"] == 0
    assert figures["dead_poison"] == figures["poison"] > 0
    assert figures["applied"] == 200 - figures["poison"]
    assert figures["redeliveries"] > 0
    bench = figures["bench"]  # the bench judged itself, as for every kind
    assert bench["scheduled"] == bench["offered"] > 0
    assert bench["time_scale"] == 20.0
    verdict = stage.judge()
    assert verdict.mode == "live"
    assert verdict.passed, [c.describe() for c in verdict.failures]
    assert verdict.valid, verdict.invalid
    assert verdict.load_model.startswith(f"on {broker_env.kind}, 20 times faster than real time")
    assert not asyncio.run(exists(broker_env, f"live_orders_live_{suffix}"))  # deleted by the run


async def exists(env: BrokerEnv, name: str) -> bool:
    """Whether the work queue (RabbitMQ) or stream (JetStream) ``name`` exists."""
    if env.kind == "rabbitmq":
        connection = await aio_pika.connect(env.url)
        try:
            channel = await connection.channel()
            await channel.declare_queue(name, passive=True)
            return True
        except aio_pika.exceptions.ChannelNotFoundEntity:
            return False
        finally:
            await connection.close()
    nc = await nats.connect(env.url)
    try:
        await nc.jetstream().stream_info(name)
        return True
    except nats.js.errors.NotFoundError:
        return False
    finally:
        await nc.close()


def test_live_mode_without_its_broker_is_a_clear_error_without_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("INTEGRATION_KIT_AMQP_URL", f"amqp://guest:s3cret@127.0.0.1:{free_port()}/")
    path = tmp_path / "specs" / "live-orders.toml"
    path.parent.mkdir()
    path.write_text(SMALL_SPEC.format(kind="rabbitmq"))
    assert main(["run", str(path), "--mode", "live", "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "live mode needs its rabbitmq broker" in err
    assert "s3cret" not in err
