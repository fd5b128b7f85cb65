"""``integration-kit queues dead-letters list|redrive`` against both brokers."""

from __future__ import annotations

import asyncio
import json

import pytest
from queue_brokers import BrokerEnv, amqp_available, broker_env, nats_url, run, session
from test_queue_brokers import fetch_all

from integration_kit.playbook.cli.app import main
from integration_kit.queues.message import Message

pytestmark = pytest.mark.queues
__all__ = ["amqp_available", "broker_env", "nats_url"]


def test_list_then_redrive_dead_letters(broker_env: BrokerEnv, capsys: pytest.CaptureFixture[str]) -> None:
    topology = broker_env.topology()

    async def body() -> None:
        async with session(broker_env, topology) as broker:
            message = Message(b"secret body", key="orders")
            await broker.publish([message], timeout=5)
            [delivery] = await fetch_all(broker, 1)
            await broker.dead_letter(delivery, reason="poison: ValueError: bad", now=5.0)
            await broker.close()
            common = ["--broker", broker_env.kind, "--queue", topology.name, "--url", broker_env.url]
            assert await asyncio.to_thread(main, ["queues", "dead-letters", "list", *common, "--json"]) == 0
            [line] = capsys.readouterr().out.splitlines()
            listed = json.loads(line)
            assert listed["message_id"] == message.message_id
            assert listed["reason"] == "poison: ValueError: bad"
            assert listed["attempts"] == 1
            assert "secret body" not in line  # bodies are never printed
            assert await asyncio.to_thread(main, ["queues", "dead-letters", "redrive", *common]) == 0
            assert "re-drove 1 dead letter" in capsys.readouterr().out
            [back] = await fetch_all(broker, 1)
            assert back.message.message_id == message.message_id
            await broker.ack(back)
            assert await asyncio.to_thread(main, ["queues", "dead-letters", "list", *common]) == 0
            out = capsys.readouterr().out
            assert "0 dead letter(s)" in out
            assert broker_env.url not in out

    run(body)


def test_unreachable_broker_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    from redis_server import free_port

    url = f"amqp://guest:hunter2@127.0.0.1:{free_port()}/"
    assert main(["queues", "dead-letters", "list", "--broker", "rabbitmq", "--queue", "q", "--url", url]) == 2
    err = capsys.readouterr().err
    assert "hunter2" not in err
    assert "unavailable" in err or "cannot connect" in err
