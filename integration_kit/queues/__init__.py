"""Message queues: confirmed publishing, a transactional outbox, consumers with delayed retry, dead letters and
inbox deduplication, on RabbitMQ (aio-pika) and NATS JetStream (nats-py).

The pieces, one module each: ``message`` (the envelope), ``broker`` (the adapter contract), ``rabbitmq`` and
``jetstream`` (the adapters: import them only with the ``queues`` extra installed), ``publisher`` (publishing
under the engine), ``outbox`` and ``relay`` (the transactional outbox), ``inbox`` and ``consumer`` (consuming),
``proxy`` (a fault-injecting TCP proxy for outage tests), ``sim`` (the virtual-time model of a queue integration)
and ``cli`` (listing and re-driving dead letters).
"""

from integration_kit.queues.broker import Broker, Delivery, Topology
from integration_kit.queues.consumer import Consumer, ConsumerStats
from integration_kit.queues.inbox import SQLiteInbox, StoreInbox
from integration_kit.queues.message import Message
from integration_kit.queues.outbox import PostgresOutbox, SQLiteOutbox
from integration_kit.queues.proxy import FaultProxy
from integration_kit.queues.publisher import Publisher
from integration_kit.queues.relay import OutboxRelay

__all__ = [
    "Broker",
    "Consumer",
    "ConsumerStats",
    "Delivery",
    "FaultProxy",
    "Message",
    "OutboxRelay",
    "PostgresOutbox",
    "Publisher",
    "SQLiteInbox",
    "SQLiteOutbox",
    "StoreInbox",
    "Topology",
]
