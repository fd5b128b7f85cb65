"""The consumer's settlement events and counts on both brokers: the exact reasons of retries and dead letters
(an error with no message is named by its type alone), an ack's duration on the consumer's clock, ``call_id`` 0,
and ``run(max_messages=...)`` counting a suppressed duplicate as settled."""

from __future__ import annotations

import asyncio

import pytest
from queue_brokers import BrokerEnv, amqp_available, broker_env, nats_url, run, session

from integration_kit.clock import ManualClock
from integration_kit.events import Recorder
from integration_kit.queues.consumer import Consumer
from integration_kit.queues.events import MessageAcked, MessageDeadLettered, MessageRetried
from integration_kit.queues.inbox import StoreInbox
from integration_kit.queues.message import Message
from integration_kit.stores import MemoryStore

pytestmark = pytest.mark.queues
__all__ = ["amqp_available", "broker_env", "nats_url"]


async def until(predicate: object, timeout: float = 10.0) -> None:
    """Wait (polling the consumer's progress) until ``predicate()`` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():  # type: ignore[operator]
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def test_retry_and_dead_letter_reasons_and_the_ack_duration(broker_env: BrokerEnv) -> None:
    async def body() -> None:
        async with session(broker_env, broker_env.topology(retry_delays=(0.05,), max_attempts=2)) as broker:

            async def handler(message: Message) -> None:
                if message.body == b"bare":
                    raise ConnectionError
                if message.body == b"text":
                    raise ConnectionError("reset")

            messages = [Message(b"ok"), Message(b"bare"), Message(b"text")]
            ids = {m.message_id: m.body for m in messages}
            await broker.publish(messages, timeout=5)
            recorder = Recorder()
            consumer = Consumer(broker, handler, fetch_timeout=0.2, clock=ManualClock(1000.0), hooks=[recorder])
            task = asyncio.create_task(consumer.run())
            await until(lambda: consumer.stats.dead_lettered == 2 and consumer.stats.handled == 1)
            consumer.stop()
            await task
            assert {e.call_id for e in recorder.events} == {0}
            assert [e.duration for e in recorder.of(MessageAcked)] == [0.0]  # type: ignore[attr-defined]
            retried = {ids[e.message_id]: e.reason for e in recorder.of(MessageRetried)}  # type: ignore[attr-defined]
            assert retried == {b"bare": "ConnectionError", b"text": "ConnectionError: reset"}
            dead = {ids[e.message_id]: e.reason for e in recorder.of(MessageDeadLettered)}  # type: ignore[attr-defined]
            assert dead == {
                b"bare": "attempts exhausted (2): ConnectionError",
                b"text": "attempts exhausted (2): ConnectionError: reset",
            }

    run(body)


def test_max_messages_counts_a_suppressed_duplicate(broker_env: BrokerEnv) -> None:
    if broker_env.kind != "rabbitmq":
        pytest.skip("JetStream drops the copy at publish (Nats-Msg-Id): the consumer never sees a duplicate")

    async def body() -> None:
        async with session(broker_env, broker_env.topology()) as broker:
            seen: list[bytes] = []

            async def handler(message: Message) -> None:
                seen.append(message.body)

            message = Message(b"once")
            await broker.publish([message], timeout=5)
            await broker.publish([message], timeout=5)
            await broker.publish([Message(b"other")], timeout=5)
            consumer = Consumer(broker, handler, inbox=StoreInbox(MemoryStore()), concurrency=1, fetch_timeout=0.2)
            stats = await asyncio.wait_for(consumer.run(max_messages=3), 20)
            assert (stats.handled, stats.duplicates) == (2, 1)
            assert sorted(seen) == [b"once", b"other"]

    run(body)
