"""Queue throughput on the real brokers: the outbox relay with confirms, and the kit's consumer against a bare one.

    python3 dev.py bench bench/queues.py          (or: .venv/bin/python bench/queues.py [messages])

For RabbitMQ (``INTEGRATION_KIT_AMQP_URL`` or the local server) and JetStream (a private ``nats-server -js`` on a
free port, file storage):

- relay: messages per second from a SQLite outbox to the broker, batches of 200, every message confirmed;
- consumer: messages per second drained with manual acks at prefetch 64, by a bare client loop (aio-pika
  ``queue.iterator`` / nats-py pull ``fetch``, ack after a no-op handler) and by the kit's ``Consumer`` (no inbox,
  concurrency 64), on the same backlog size, alternating for ``rounds`` rounds (default 3). The ratio is kit / bare
  (target >= 0.9): the median of the rounds' ratios, each round's two runs side by side (a loaded machine swings
  single runs by 2x both ways).

Every queue and stream has a unique name and is deleted after. Each load is bounded (``messages``, default 5,000).

    .venv/bin/python bench/queues.py [messages] [rounds]
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aio_pika
import nats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from queue_servers import nats_storage, running_nats
from redis_server import stop

from integration_kit.queues.broker import Broker, Topology
from integration_kit.queues.consumer import Consumer
from integration_kit.queues.jetstream import JetStreamBroker
from integration_kit.queues.message import Message
from integration_kit.queues.outbox import SQLiteOutbox
from integration_kit.queues.publisher import Publisher
from integration_kit.queues.rabbitmq import RabbitMQBroker, amqp_url
from integration_kit.queues.relay import OutboxRelay

PREFETCH = 64


async def relay_rate(broker: Broker, n: int, folder: Path) -> float:
    """Messages per second relayed from a fresh SQLite outbox (batches of 200, confirmed)."""
    outbox = SQLiteOutbox(folder / f"{uuid.uuid4().hex}.db")
    db = sqlite3.connect(outbox.path, isolation_level=None)
    db.execute("BEGIN")
    for i in range(n):
        outbox.add(db, Message(b'{"n": %d}' % i, key=f"k{i % 16}"))
    db.execute("COMMIT")
    db.close()
    relay = OutboxRelay(outbox, Publisher(broker), batch_size=200)
    start = time.perf_counter()
    stats = await relay.run(until_empty=True)
    elapsed = time.perf_counter() - start
    outbox.close()
    assert stats.published == n, stats
    return n / elapsed


async def kit_consumer_rate(broker: Broker, n: int) -> float:
    """Messages per second drained by the kit's Consumer (no-op handler, no inbox)."""

    async def handler(message: Message) -> None:
        return None

    consumer = Consumer(broker, handler, concurrency=PREFETCH, fetch_timeout=0.5)
    start = time.perf_counter()
    stats = await consumer.run(max_messages=n)
    elapsed = time.perf_counter() - start
    assert stats.handled == n, stats
    return n / elapsed


async def bare_rabbitmq_rate(url: str, queue_name: str, n: int) -> float:
    """Messages per second drained by a bare aio-pika consumer with manual acks."""
    connection = await aio_pika.connect(url)
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=PREFETCH)
    queue = await channel.get_queue(queue_name)
    start = time.perf_counter()
    seen = 0
    async with queue.iterator() as messages:
        async for message in messages:
            await message.ack()
            seen += 1
            if seen == n:
                break
    elapsed = time.perf_counter() - start
    await connection.close()
    return n / elapsed


async def bare_jetstream_rate(url: str, broker: JetStreamBroker, n: int) -> float:
    """Messages per second drained by a bare nats-py pull consumer (fetch a batch, ack each)."""
    nc = await nats.connect(url)
    sub = await nc.jetstream().pull_subscribe_bind(broker.durable, stream=broker.stream)
    start = time.perf_counter()
    seen = 0
    while seen < n:
        try:
            batch = await sub.fetch(batch=min(PREFETCH, n - seen), timeout=0.5)
        except (TimeoutError, nats.errors.TimeoutError):
            continue
        for message in batch:
            await message.ack()
        seen += len(batch)
    elapsed = time.perf_counter() - start
    await nc.close()
    return n / elapsed


async def bench_broker(kind: str, url: str, n: int, folder: Path, rounds: int = 3) -> dict[str, float]:
    """The figures for one broker: relay rate, median bare and kit consumer rates, median kit/bare ratio."""
    topology = Topology(f"ikbench{uuid.uuid4().hex[:10]}")
    broker: Broker
    if kind == "rabbitmq":
        broker = RabbitMQBroker(topology, url, prefetch=PREFETCH)
    else:
        broker = JetStreamBroker(topology, url, prefetch=PREFETCH, storage=nats_storage())  # type: ignore[arg-type]
    await broker.declare()
    bares: list[float] = []
    kits: list[float] = []
    try:
        relay = await relay_rate(broker, n, folder)  # leaves n messages queued for the first consumer
        for round_ in range(rounds):
            if round_:
                await backlog(broker, n)
            if kind == "rabbitmq":
                bares.append(await bare_rabbitmq_rate(url, topology.name, n))
            else:
                assert isinstance(broker, JetStreamBroker)
                bares.append(await bare_jetstream_rate(url, broker, n))
            await backlog(broker, n)
            kits.append(await kit_consumer_rate(broker, n))
            await broker.close()  # cancels its consumer: RabbitMQ would keep pushing it the next round's messages
    finally:
        await broker.close()
        await broker.delete()
        await broker.close()
    ratio = statistics.median(k / b for k, b in zip(kits, bares, strict=True))
    return {"relay": relay, "bare": statistics.median(bares), "kit": statistics.median(kits), "ratio": ratio}


async def backlog(broker: Broker, n: int) -> None:
    """Queue ``n`` messages (as the relay does: the kit's headers, a key) for the next consumer."""
    publisher = Publisher(broker)
    for start in range(0, n, 500):
        batch = [Message(b'{"n": %d}' % i, key=f"k{i % 16}") for i in range(start, min(n, start + 500))]
        await publisher.publish(batch)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        process, url, _ = running_nats(folder / "nats")
        try:
            rows = {
                "rabbitmq": asyncio.run(bench_broker("rabbitmq", amqp_url(), n, folder, rounds)),
                "jetstream": asyncio.run(bench_broker("jetstream", url, n, folder, rounds)),
            }
        finally:
            stop(process)
    print(f"{n:,} messages per run, prefetch {PREFETCH}, consumers: median of {rounds} alternating rounds")
    print(f"{'broker':<10} {'relay msg/s':>12} {'bare consumer':>14} {'kit consumer':>13} {'kit/bare':>9}")
    for kind, r in rows.items():
        print(f"{kind:<10} {r['relay']:>12,.0f} {r['bare']:>14,.0f} {r['kit']:>13,.0f} {r['ratio']:>9.2f}")


if __name__ == "__main__":
    main()
