"""The broker adapter contract, run against RabbitMQ (the shared server) and JetStream (a private nats-server).

Each test declares a uniquely named topology and deletes it. Outages go through a FaultProxy, never by stopping
a broker.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from queue_brokers import BrokerEnv, amqp_available, broker_env, nats_url, run, session
from redis_server import free_port

from integration_kit.errors import RetriesExhausted
from integration_kit.queues.broker import Broker, Delivery
from integration_kit.queues.errors import BrokerUnavailable, MessageUnroutable
from integration_kit.queues.jetstream import JetStreamBroker
from integration_kit.queues.message import Message
from integration_kit.queues.publisher import Publisher

pytestmark = pytest.mark.queues
__all__ = ["amqp_available", "broker_env", "nats_url"]


async def fetch_all(broker: Broker, count: int, timeout: float = 5.0) -> list[Delivery]:
    """Fetch until ``count`` deliveries arrived or ``timeout`` seconds passed."""
    deliveries: list[Delivery] = []
    deadline = time.monotonic() + timeout
    while len(deliveries) < count and time.monotonic() < deadline:
        deliveries += await broker.fetch(count - len(deliveries), timeout=0.3)
    return deliveries


def test_publish_then_fetch_keeps_id_key_headers_and_order(broker_env: BrokerEnv) -> None:
    async def body() -> None:
        async with session(broker_env, broker_env.topology()) as broker:
            sent = [Message(f"m{i}".encode(), key="orders", headers={"tenant": "acme"}) for i in range(10)]
            await broker.publish(sent, timeout=5)
            got = await fetch_all(broker, 10)
            assert [d.message.body for d in got] == [m.body for m in sent]
            first = got[0].message
            assert (first.message_id, first.key, first.attempt) == (sent[0].message_id, "orders", 1)
            assert first.headers == {"tenant": "acme"}
            for d in got:
                await broker.ack(d)
            assert await broker.fetch(5, timeout=0.3) == []

    run(body)


def test_retry_redelivers_after_the_delay_with_the_next_attempt_and_history(broker_env: BrokerEnv) -> None:
    async def body() -> None:
        async with session(broker_env, broker_env.topology(retry_delays=(1.0,))) as broker:
            message = Message(b"x")
            await broker.publish([message], timeout=5)
            [delivery] = await fetch_all(broker, 1)
            started = time.monotonic()
            await broker.retry(delivery, delay=1.0, reason="ReadTimeout: slow", now=100.0)
            assert await broker.fetch(1, timeout=0.5) == []  # not before the delay
            [again] = await fetch_all(broker, 1)
            assert time.monotonic() - started >= 0.9
            assert again.message.message_id == message.message_id
            assert again.message.attempt == 2
            assert [(h.attempt, h.reason) for h in again.message.history] == [(1, "ReadTimeout: slow")]
            await broker.ack(again)

    run(body)


def test_dead_letter_keeps_reason_and_history_and_redrive_returns_it(broker_env: BrokerEnv) -> None:
    async def body() -> None:
        async with session(broker_env, broker_env.topology(retry_delays=(0.2,))) as broker:
            message = Message(b"bad", key="k")
            await broker.publish([message], timeout=5)
            [delivery] = await fetch_all(broker, 1)
            await broker.retry(delivery, delay=0.2, reason="first", now=1.0)
            [delivery] = await fetch_all(broker, 1)
            await broker.dead_letter(delivery, reason="poison: ValueError", now=2.0)
            assert await broker.fetch(1, timeout=0.5) == []
            letters = await broker.dead_letters()
            assert len(letters) == 1
            dead = letters[0]
            assert (dead.message_id, dead.dead_reason, dead.body) == (message.message_id, "poison: ValueError", b"bad")
            assert [h.reason for h in dead.history] == ["first", "poison: ValueError"]
            assert len(await broker.dead_letters()) == 1  # listing leaves them in place
            assert await broker.redrive() == 1
            assert await broker.dead_letters() == []
            [back] = await fetch_all(broker, 1)
            assert (back.message.message_id, back.message.attempt, back.message.key) == (message.message_id, 1, "k")
            await broker.ack(back)

    run(body)


def test_requeue_gives_the_message_back(broker_env: BrokerEnv) -> None:
    async def body() -> None:
        async with session(broker_env, broker_env.topology()) as broker:
            message = Message(b"x")
            await broker.publish([message], timeout=5)
            [delivery] = await fetch_all(broker, 1)
            await broker.requeue(delivery)
            [again] = await fetch_all(broker, 1)
            assert again.message.message_id == message.message_id
            assert again.redelivered
            assert again.message.attempt == 1  # a requeue uses no attempt (JetStream counts it as a delivery)
            await broker.ack(again)

    run(body)


def test_unsettled_deliveries_come_back_after_the_connection_closes(broker_env: BrokerEnv) -> None:
    async def body() -> None:
        topology = broker_env.topology()
        async with session(broker_env, topology) as admin:
            consumer = broker_env.make(topology, ack_wait=1.0) if broker_env.kind == "jetstream" else None
            consumer = consumer or broker_env.make(topology)
            await admin.publish([Message(b"a"), Message(b"b")], timeout=5)
            assert len(await fetch_all(consumer, 2)) == 2
            await consumer.close()  # a consumer crash: nothing acknowledged
            again = await fetch_all(admin, 2, timeout=10)
            assert sorted(d.message.body for d in again) == [b"a", b"b"]
            for d in again:
                await admin.ack(d)

    run(body)


def test_publish_to_an_undeclared_destination_is_unroutable(broker_env: BrokerEnv) -> None:
    async def body() -> None:
        broker = broker_env.make(broker_env.topology())
        try:
            with pytest.raises(MessageUnroutable):
                await broker.publish([Message(b"x")], timeout=5)
        finally:
            await broker.close()

    run(body)


def test_unreachable_broker_is_broker_unavailable(broker_env: BrokerEnv) -> None:
    async def body() -> None:
        scheme = "amqp://guest:guest@" if broker_env.kind == "rabbitmq" else "nats://"
        broker = broker_env.make(broker_env.topology(), url=f"{scheme}127.0.0.1:{free_port()}/", connect_timeout=0.5)
        with pytest.raises(BrokerUnavailable):
            await broker.publish([Message(b"x")], timeout=1)
        await broker.close()

    run(body)


def test_publisher_rides_out_a_cut_connection_with_the_same_message_id(broker_env: BrokerEnv) -> None:
    async def body() -> None:
        topology = broker_env.topology()
        async with session(broker_env, topology) as admin:
            with broker_env.proxy() as proxy:
                broker = broker_env.make(topology, url=broker_env.via(proxy))
                publisher = Publisher(broker, confirm_timeout=2.0)
                await publisher.publish(Message(b"before"))
                proxy.cut()
                message = Message(b"after")
                await publisher.publish(message)  # the first attempt fails on the dead connection; a retry lands
                await broker.close()
            got = await fetch_all(admin, 2)
            assert [d.message.body for d in got] == [b"before", b"after"]
            assert got[1].message.message_id == message.message_id
            for d in got:
                await admin.ack(d)

    run(body)


def test_publisher_gives_up_while_the_broker_refuses_connections(broker_env: BrokerEnv) -> None:
    async def body() -> None:
        topology = broker_env.topology()
        async with session(broker_env, topology):
            with broker_env.proxy() as proxy:
                broker = broker_env.make(topology, url=broker_env.via(proxy), connect_timeout=0.5)
                publisher = Publisher(broker, confirm_timeout=0.5)
                proxy.refuse()
                with pytest.raises(RetriesExhausted) as info:
                    await publisher.publish(Message(b"x"))
                assert isinstance(info.value.last_error, BrokerUnavailable)
                await broker.close()

    run(body)


def test_fetch_never_returns_more_than_asked_even_after_late_deliveries(broker_env: BrokerEnv) -> None:
    """JetStream: a pull answered after its fetch timed out lands in the subscription and nats-py's next ``fetch``
    returns it on top of what was asked. The adapter keeps the extra for later calls (the consumer's concurrency
    relies on the bound; exceeding it once starved the event loop, the JetStream proof's stall)."""

    async def body() -> None:
        async with session(broker_env, broker_env.topology()) as broker:
            await broker.publish([Message(f"m{i}".encode()) for i in range(10)], timeout=5)
            if isinstance(broker, JetStreamBroker):
                assert await broker.fetch(1, timeout=1) != []  # binds the pull subscription
                sub = broker._sub
                assert sub is not None
                # A pull request nobody waits for, as a fetch that timed out leaves behind (nats-py internals).
                await sub._nc.publish(sub._nms, json.dumps({"batch": 9, "no_wait": True}).encode(), sub._deliver)
                deadline = time.monotonic() + 5
                while sub.pending_msgs < 9 and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)  # the messages are in flight on loopback: nothing to step
                assert sub.pending_msgs == 9
            seen: list[bytes] = []
            deadline = time.monotonic() + 10
            while len(seen) < 10 and time.monotonic() < deadline:
                batch = await broker.fetch(2, timeout=0.3)
                assert len(batch) <= 2
                for delivery in batch:
                    seen.append(delivery.message.body)
                    await broker.ack(delivery)
            assert sorted(seen) == sorted(f"m{i}".encode() for i in range(10))

    run(body)


def test_a_fetch_cancelled_as_its_connection_closes_is_cancelled(broker_env: BrokerEnv) -> None:
    """A consumer loop cancelled while its connection is closed (a crash) must stop. nats-py turns that
    cancellation into ``ConnectionClosedError``; passed on as a broker error, the loop retried, reconnected and went
    on as a zombie (after the live crash scenario the dead letters could no longer be read)."""

    async def body() -> None:
        async with session(broker_env, broker_env.topology()) as admin:
            broker = broker_env.make(admin.topology)
            try:
                assert await broker.fetch(1, timeout=0.2) == []  # connected, the pull subscription bound
                fetching = asyncio.create_task(broker.fetch(1, timeout=30))
                for _ in range(20):
                    await asyncio.sleep(0)  # let the fetch reach its wait for a message (no real time passes)
                fetching.cancel()
                await broker.close()
                with pytest.raises(asyncio.CancelledError):
                    await fetching
            finally:
                await broker.close()

    run(body)


def test_in_progress_holds_a_delivery_past_the_ack_deadline(broker_env: BrokerEnv) -> None:
    """JetStream redelivers what stays unsettled for ``ack_wait`` (1 s here); ``in_progress`` restarts that timer,
    so of two deliveries held 2.5 s only the one not kept in progress comes back. RabbitMQ has no per-delivery
    deadline (``ack_deadline`` is ``None``, ``in_progress`` does nothing): neither comes back."""
    jetstream = broker_env.kind == "jetstream"
    options: dict[str, object] = {"ack_wait": 1.0} if jetstream else {}

    async def body() -> None:
        async with session(broker_env, broker_env.topology(), **options) as broker:
            assert broker.ack_deadline == (1.0 if jetstream else None)
            await broker.publish([Message(b"kept"), Message(b"left")], timeout=5)
            kept, left = await fetch_all(broker, 2)
            assert (kept.message.body, left.message.body) == (b"kept", b"left")
            back: list[Delivery] = []
            hold_until = time.monotonic() + (2.5 if jetstream else 0.6)
            while time.monotonic() < hold_until:
                await broker.in_progress(kept)
                came = await broker.fetch(2, timeout=0.3)  # also the wait between two progress acks
                for delivery in came:
                    await broker.ack(delivery)
                back += came
            assert [d.message.body for d in back] == ([b"left"] if jetstream else [])
            await broker.ack(kept)
            await broker.in_progress(kept)  # settled: nothing to extend, no error
            assert await broker.fetch(1, timeout=1.5 if jetstream else 0.3) == []

    run(body)
