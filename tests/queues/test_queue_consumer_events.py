"""The consumer's settlement events and counts on both brokers: the exact reasons of retries and dead letters
(an error with no message is named by its type alone), an ack's duration on the consumer's clock, ``call_id`` 0,
``run(max_messages=...)`` counting a suppressed duplicate as settled, and no lease extension sent for a delivery
whose handler returned while it is being acknowledged."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from queue_brokers import BrokerEnv, amqp_available, broker_env, nats_url, run, session, until

from integration_kit.clock import ManualClock
from integration_kit.events import Recorder
from integration_kit.queues.broker import Broker, Delivery
from integration_kit.queues.consumer import Consumer
from integration_kit.queues.events import MessageAcked, MessageDeadLettered, MessageRetried
from integration_kit.queues.inbox import StoreInbox
from integration_kit.queues.message import Message
from integration_kit.stores import MemoryStore

pytestmark = pytest.mark.queues
__all__ = ["amqp_available", "broker_env", "nats_url"]


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


class SlowAck:
    """A broker with a short ack deadline (0.3 s: a beat every 0.1 s) that records its lease extensions and holds
    each ack for half a second, or until a lease extension arrives during it."""

    def __init__(self, broker: Broker) -> None:
        self.inner = broker
        self.topology = broker.topology
        self.destination = broker.destination
        self.ack_deadline = 0.3
        self.beats: list[str] = []
        self.acking = False
        self.beat_while_acking = asyncio.Event()

    async def in_progress(self, delivery: Delivery) -> None:
        self.beats.append("acking" if self.acking else "running")
        if self.acking:
            self.beat_while_acking.set()

    async def ack(self, delivery: Delivery) -> None:
        self.acking = True
        with contextlib.suppress(TimeoutError):  # bounded: a beat, if one comes, comes within a period
            await asyncio.wait_for(self.beat_while_acking.wait(), 0.5)
        self.acking = False
        await self.inner.ack(delivery)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_no_lease_extension_once_the_handler_returned(broker_env: BrokerEnv) -> None:
    async def body() -> None:
        async with session(broker_env, broker_env.topology()) as broker:
            slow = SlowAck(broker)
            release = asyncio.Event()

            async def handler(message: Message) -> None:
                await release.wait()

            await broker.publish([Message(b"slow")], timeout=5)
            consumer = Consumer(slow, handler, fetch_timeout=0.2)  # type: ignore[arg-type]
            task = asyncio.create_task(consumer.run(max_messages=1))
            await until(lambda: len(slow.beats) >= 1)  # the handler ran past a third of the deadline
            release.set()
            stats = await asyncio.wait_for(task, 20)
            assert stats.handled == 1
            assert "acking" not in slow.beats
            assert stats.extended == len(slow.beats)

    run(body)
