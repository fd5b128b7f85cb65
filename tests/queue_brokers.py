"""One fixture that yields a broker factory for each adapter, so one suite runs against RabbitMQ and JetStream.

``broker_kind`` is parametrised over ``rabbitmq`` and ``jetstream``; ``make_broker(topology, url=None)`` builds the
adapter (``url`` lets a test go through a :class:`~integration_kit.queues.proxy.FaultProxy`). Every name is
unique; :func:`session` declares the topology and deletes it afterwards, so nothing is left on the shared broker.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import pytest
from queue_servers import amqp_available, nats_storage, nats_url, unique_name

from integration_kit.queues.broker import Broker, Topology
from integration_kit.queues.jetstream import JetStreamBroker
from integration_kit.queues.proxy import FaultProxy
from integration_kit.queues.rabbitmq import RabbitMQBroker

__all__ = ["BrokerEnv", "amqp_available", "broker_env", "nats_url", "session", "until"]


@dataclass
class BrokerEnv:
    """Which broker, where it listens, and how to build an adapter for a topology."""

    kind: str
    url: str

    def topology(self, **settings: object) -> Topology:
        """A topology with a unique name (fast retries unless told otherwise)."""
        settings.setdefault("retry_delays", (0.3, 0.6))
        settings.setdefault("max_attempts", 3)
        return Topology(unique_name("ikq"), **settings)  # type: ignore[arg-type]

    def make(self, topology: Topology, *, url: str | None = None, prefetch: int = 32, **options: object) -> Broker:
        """An adapter for ``topology`` (through ``url`` when given)."""
        if self.kind == "rabbitmq":
            return RabbitMQBroker(topology, url or self.url, prefetch=prefetch, **options)  # type: ignore[arg-type]
        options.setdefault("ack_wait", 5.0)
        options.setdefault("storage", nats_storage())
        return JetStreamBroker(topology, url or self.url, prefetch=prefetch, **options)  # type: ignore[arg-type]

    def proxy(self) -> FaultProxy:
        """A started fault proxy in front of this broker (close it after)."""
        parts = urlsplit(self.url)
        return FaultProxy(parts.hostname or "127.0.0.1", parts.port or 5672).start()

    def via(self, proxy: FaultProxy) -> str:
        """This broker's URL, pointed at ``proxy``."""
        parts = urlsplit(self.url)
        netloc = parts.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{proxy.port}"
        return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


@pytest.fixture(params=["rabbitmq", "jetstream"])
def broker_env(request: pytest.FixtureRequest) -> BrokerEnv:
    """The broker under test (the contract suite runs once per adapter)."""
    if request.param == "rabbitmq":
        return BrokerEnv("rabbitmq", request.getfixturevalue("amqp_available"))
    return BrokerEnv("jetstream", request.getfixturevalue("nats_url"))


@contextlib.asynccontextmanager
async def session(env: BrokerEnv, topology: Topology, **options: object) -> AsyncIterator[Broker]:
    """Declare ``topology`` through a direct adapter, yield that adapter, then delete the topology."""
    admin = env.make(topology, **options)
    try:
        await admin.declare()
        yield admin
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
            await admin.delete()
        with contextlib.suppress(Exception):
            await admin.close()


def run(body: Callable[[], object]) -> None:
    """Run an async test body on a fresh event loop."""
    asyncio.run(body())  # type: ignore[arg-type]


async def until(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    """Wait (polling the consumer's progress, bounded by ``timeout`` seconds) until ``predicate()`` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)
