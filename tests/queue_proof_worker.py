"""A relay or a consumer process for the exactly-once proof (``test_queue_proof.py``); killed and restarted there.

    python queue_proof_worker.py relay    KIND URL TOPOLOGY OUTBOX_DB
    python queue_proof_worker.py consumer KIND URL TOPOLOGY EFFECTS_DB

The consumer's handler decodes the JSON body (a poison message is not JSON: dead-lettered at once) and records its
effect in the ``effects`` table of EFFECTS_DB, in the same transaction as the inbox row.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import sys

from integration_kit.engine.call import CallEngine
from integration_kit.policies.config import RetryPolicy
from integration_kit.queues.broker import Broker, Topology
from integration_kit.queues.consumer import Consumer
from integration_kit.queues.inbox import SQLiteInbox
from integration_kit.queues.jetstream import JetStreamBroker
from integration_kit.queues.message import Message
from integration_kit.queues.outbox import SQLiteOutbox
from integration_kit.queues.publisher import Publisher
from integration_kit.queues.rabbitmq import RabbitMQBroker
from integration_kit.queues.relay import OutboxRelay

TOPOLOGY_SETTINGS = {"retry_delays": (0.2, 0.4), "max_attempts": 3}


def make_broker(kind: str, url: str, name: str) -> Broker:
    topology = Topology(name, **TOPOLOGY_SETTINGS)  # type: ignore[arg-type]
    if kind == "rabbitmq":
        return RabbitMQBroker(topology, url, prefetch=64, connect_timeout=1.0)
    storage = os.environ.get("IK_PROOF_NATS_STORAGE", "file")
    return JetStreamBroker(topology, url, prefetch=64, ack_wait=10.0, connect_timeout=1.0, storage=storage)  # type: ignore[arg-type]


async def relay(broker: Broker, path: str) -> None:
    engine = CallEngine(name="proof-relay", retry=RetryPolicy(max_attempts=4, base_delay=0.05, max_delay=0.5))
    fast = RetryPolicy(max_attempts=1_000_000, base_delay=0.05, max_delay=0.5)
    worker = OutboxRelay(
        SQLiteOutbox(path),
        Publisher(broker, engine=engine, confirm_timeout=2.0),
        lease=5.0,
        batch_size=100,
        backoff=fast,
        poll_interval=0.05,
    )
    asyncio.get_running_loop().add_signal_handler(15, worker.stop)
    await worker.run()


async def consume(broker: Broker, path: str) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS effects (message_id TEXT NOT NULL, n INTEGER NOT NULL)")
    inbox = SQLiteInbox(path, consumer="proof")

    async def handler(message: Message) -> None:
        payload = json.loads(message.body)  # a poison body raises JSONDecodeError: dead-lettered at once
        inbox.connection.execute(
            "INSERT INTO effects (message_id, n) VALUES (?, ?)", (message.message_id, payload["n"])
        )

    consumer = Consumer(broker, handler, inbox=inbox, concurrency=16, fetch_timeout=0.2, shutdown_grace=5.0)
    consumer.install_signal_handlers()
    await consumer.run()


def main() -> None:
    role, kind, url, name, path = sys.argv[1:6]
    if os.environ.get("IK_PROOF_LOGGING"):
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    broker = make_broker(kind, url, name)

    async def run() -> None:
        try:
            await (relay(broker, path) if role == "relay" else consume(broker, path))
        finally:
            await broker.close()

    asyncio.run(run())


if __name__ == "__main__":
    main()
