"""A dropped broker connection is one WARNING line from the adapter, with the client library's traceback at DEBUG.

aiormq logs a lost connection with two chained tracebacks and nats-py's default error callback with one; a live
queue run printed them while meeting its objectives. Run against RabbitMQ (the shared server) and JetStream (a
private nats-server), the connection cut by a FaultProxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator

import pytest
from queue_brokers import BrokerEnv, amqp_available, broker_env, nats_url, run, session
from queue_servers import unique_name

from integration_kit.queues._client_log import owned
from integration_kit.queues.broker import Topology
from integration_kit.queues.jetstream import JetStreamBroker
from integration_kit.queues.message import Message

__all__ = ["amqp_available", "broker_env", "nats_url"]

CLIENT_LIBRARIES = ("aiormq", "aio_pika", "nats")


class _Seen(logging.Handler):
    """Sets ``event`` once a record on the adapter's logger matches ``wanted`` (what the client noticed)."""

    def __init__(self, wanted: Callable[[logging.LogRecord], bool]) -> None:
        super().__init__(logging.DEBUG)
        self.wanted = wanted
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.wanted(record):
            self.event.set()


@contextlib.contextmanager
def _watching(logger: str, wanted: Callable[[logging.LogRecord], bool]) -> Iterator[_Seen]:
    seen = _Seen(wanted)
    logging.getLogger(logger).addHandler(seen)
    try:
        yield seen
    finally:
        logging.getLogger(logger).removeHandler(seen)


def _loud(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.queues
def test_a_dropped_connection_is_one_warning_line_and_the_traceback_at_debug(
    broker_env: BrokerEnv, caplog: pytest.LogCaptureFixture
) -> None:
    adapter = f"integration_kit.queues.{broker_env.kind}"
    caplog.set_level(logging.DEBUG)
    topology = broker_env.topology()
    destination = broker_env.make(topology).destination  # amqp:<queue> or nats:<stream>

    async def body() -> None:
        with _watching(adapter, lambda r: r.levelno == logging.WARNING) as seen:
            async with session(broker_env, topology):
                with broker_env.proxy() as proxy:
                    broker = broker_env.make(topology, url=broker_env.via(proxy))
                    await broker.publish([Message(b"x")], timeout=5)
                    assert await broker.fetch(1, timeout=5)  # a consumer is attached on that connection too
                    caplog.clear()
                    proxy.cut()
                    await asyncio.wait_for(seen.event.wait(), timeout=15)
                    await broker.close()

    run(body)
    loud = _loud(caplog)
    assert [r.name for r in loud] == [adapter], [(r.name, r.getMessage()) for r in loud]
    [line] = loud
    assert line.exc_info is None  # no traceback at WARNING
    assert "\n" not in line.getMessage()
    assert line.getMessage().startswith(f"{destination}: ")
    detail = [r for r in caplog.records if r.name == adapter and r.levelno == logging.DEBUG and r.exc_info]
    assert detail, "the traceback went missing: it belongs at DEBUG"


@pytest.mark.queues
def test_jetstream_reconnect_attempts_while_the_broker_is_away_are_info_not_warnings(
    nats_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """nats-py reports each failed reconnect attempt to the error callback; the drop is the one warning."""
    adapter = "integration_kit.queues.jetstream"
    caplog.set_level(logging.DEBUG)
    topology = Topology(unique_name("ikq"), retry_delays=(0.3,), max_attempts=3)
    env = BrokerEnv("jetstream", nats_url)

    def attempt(record: logging.LogRecord) -> bool:
        return record.levelno == logging.INFO and "connection attempt" in record.getMessage()

    async def body() -> None:
        async with session(env, topology):
            with env.proxy() as proxy:
                broker = env.make(topology, url=env.via(proxy))
                assert isinstance(broker, JetStreamBroker)
                await broker.publish([Message(b"x")], timeout=5)
                caplog.clear()
                with _watching(adapter, attempt) as failed, _watching(adapter, _reconnected) as back:
                    proxy.refuse()
                    await asyncio.wait_for(failed.event.wait(), timeout=15)
                    proxy.heal()
                    await asyncio.wait_for(back.event.wait(), timeout=15)
                await broker.close()

    run(body)
    assert [(r.name, r.exc_info) for r in _loud(caplog)] == [(adapter, None)]
    assert any(attempt(r) for r in caplog.records)


def _reconnected(record: logging.LogRecord) -> bool:
    return record.getMessage().endswith(": reconnected")


def test_records_for_other_connections_pass_through_untouched(caplog: pytest.LogCaptureFixture) -> None:
    """Only the adapter's own connections are rewritten: aiormq records made elsewhere keep their traceback."""
    caplog.set_level(logging.DEBUG)
    import integration_kit.queues.rabbitmq  # noqa: F401 - installs the filter on aiormq's loggers

    library = logging.getLogger("aiormq.connection")
    try:
        raise ConnectionError("peer went away")
    except ConnectionError as exc:
        error = exc
    library.warning("someone else's connection", exc_info=error)
    with owned("amqp:orders", logging.getLogger("integration_kit.queues.rabbitmq")):
        library.warning("Reader exited abnormally", exc_info=error)
    records = [(r.name, r.levelname, r.getMessage(), r.exc_info is not None) for r in caplog.records]
    assert records == [
        ("aiormq.connection", "WARNING", "someone else's connection", True),
        (
            "integration_kit.queues.rabbitmq",
            "WARNING",
            "amqp:orders: aiormq.connection: Reader exited abnormally: ConnectionError: peer went away",
            False,
        ),
        (
            "integration_kit.queues.rabbitmq",
            "DEBUG",
            "amqp:orders: aiormq.connection: Reader exited abnormally: ConnectionError: peer went away, in detail",
            True,
        ),
    ]
