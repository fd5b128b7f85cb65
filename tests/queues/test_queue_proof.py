"""Proof: every good message's effect happens exactly once, and exactly the poison ones are dead-lettered.

Messages are written to a SQLite outbox in application transactions; a relay process publishes them through a
fault proxy and is SIGKILLed twice (between publish and mark, whatever it was doing); the proxy cuts every broker
connection twice; a consumer process (transactional SQLite inbox, effects counted in a table) is SIGKILLed mid-batch
and restarted; 1% of the messages are poison (not JSON). On RabbitMQ and on JetStream.

The CI form sends 2,000 messages (``INTEGRATION_KIT_QUEUE_PROOF_MESSAGES`` changes it; bench/queues.py runs 10,000).
``INTEGRATION_KIT_QUEUE_PROOF_LOGS=<folder>`` keeps each worker's log there (stderr, the kit's logging at INFO).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from queue_brokers import BrokerEnv, amqp_available, broker_env, nats_url, session
from queue_proof_worker import TOPOLOGY_SETTINGS
from queue_servers import nats_storage

from integration_kit.queues.broker import Topology
from integration_kit.queues.message import Message
from integration_kit.queues.outbox import SQLiteOutbox

pytestmark = [pytest.mark.queues, pytest.mark.slow]
__all__ = ["amqp_available", "broker_env", "nats_url"]

TESTS = Path(__file__).parents[1]
MESSAGES = int(os.environ.get("INTEGRATION_KIT_QUEUE_PROOF_MESSAGES", "2000"))
TIMEOUT = 90.0
LOGS = os.environ.get("INTEGRATION_KIT_QUEUE_PROOF_LOGS")


def spawn(role: str, env: BrokerEnv, url: str, name: str, path: Path) -> subprocess.Popen[bytes]:
    """Start a relay or consumer process."""
    environ = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        "IK_PROOF_NATS_STORAGE": nats_storage(),
    }
    log_path = os.devnull
    if LOGS:
        environ["IK_PROOF_LOGGING"] = "1"
        log_path = str(Path(LOGS) / f"{env.kind}-{role}-{time.time():.3f}.log")
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, str(TESTS / "queue_proof_worker.py"), role, env.kind, url, name, str(path)],
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL: no cleanup, no acknowledgement, no mark."""
    process.kill()
    process.wait()


def count(path: Path, sql: str) -> int:
    """One number from a database another process writes."""
    if not path.exists():
        return 0
    with sqlite3.connect(path, timeout=30) as db:
        try:
            return int(db.execute(sql).fetchone()[0])
        except sqlite3.OperationalError:
            return 0  # the table is not created yet


def wait_for(predicate: object, timeout: float = TIMEOUT) -> None:
    """Poll ``predicate()`` (state in other processes: there is no clock to step)."""
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("the proof did not finish in time")
        time.sleep(0.05)


@pytest.mark.timeout(600)  # four waits of up to TIMEOUT each, the dead letters, the shutdown
def test_exactly_once_through_relay_kills_connection_cuts_and_a_consumer_crash(
    broker_env: BrokerEnv, tmp_path: Path
) -> None:
    outbox_db, effects_db = tmp_path / "app.db", tmp_path / "effects.db"
    outbox = SQLiteOutbox(outbox_db)
    good: set[str] = set()
    poison: set[str] = set()
    app = sqlite3.connect(outbox_db, isolation_level=None)
    app.execute("CREATE TABLE orders (n INTEGER PRIMARY KEY)")
    for start in range(0, MESSAGES, 100):
        app.execute("BEGIN")
        for n in range(start, min(start + 100, MESSAGES)):
            bad = n % 100 == 37
            message = Message(b"\xff not json" if bad else json.dumps({"n": n}).encode(), key=f"customer-{n % 7}")
            (poison if bad else good).add(message.message_id)
            app.execute("INSERT INTO orders (n) VALUES (?)", (n,))
            outbox.add(app, message)
        app.execute("COMMIT")
    app.close()
    topology = Topology(f"ikproof{os.getpid()}{int(time.time() * 1000) % 10**9}", **TOPOLOGY_SETTINGS)  # type: ignore[arg-type]

    with broker_env.proxy() as proxy:
        url = broker_env.via(proxy)

        async def body() -> list[Message]:
            async with session(broker_env, topology) as admin:
                relay = spawn("relay", broker_env, url, topology.name, outbox_db)
                consumer = spawn("consumer", broker_env, url, topology.name, effects_db)
                processes = [relay, consumer]
                try:
                    sent = lambda: MESSAGES - outbox.pending()  # noqa: E731
                    done = lambda: count(effects_db, "SELECT COUNT(DISTINCT message_id) FROM effects")  # noqa: E731
                    await asyncio.to_thread(wait_for, lambda: sent() >= MESSAGES * 0.2)
                    kill(relay)  # killed mid-stream: rows leased, maybe published, not marked
                    proxy.cut()
                    relay = spawn("relay", broker_env, url, topology.name, outbox_db)
                    processes.append(relay)
                    await asyncio.to_thread(wait_for, lambda: done() >= len(good) * 0.3)
                    kill(consumer)  # mid-batch: handlers in flight, deliveries unacknowledged
                    consumer = spawn("consumer", broker_env, url, topology.name, effects_db)
                    processes.append(consumer)
                    await asyncio.to_thread(wait_for, lambda: sent() >= MESSAGES * 0.6)
                    kill(relay)
                    proxy.cut()
                    relay = spawn("relay", broker_env, url, topology.name, outbox_db)
                    processes.append(relay)
                    with contextlib.suppress(AssertionError):  # the assertions below say what is missing
                        await asyncio.to_thread(wait_for, lambda: outbox.pending() == 0 and done() >= len(good))
                    letters: list[Message] = []
                    deadline = time.monotonic() + 30
                    while len({m.message_id for m in letters}) < len(poison) and time.monotonic() < deadline:
                        letters = await admin.dead_letters(limit=10 * len(poison))
                        await asyncio.sleep(0.2)
                    await asyncio.sleep(1.0)  # any straggling duplicate would show up in the effects now
                    return await admin.dead_letters(limit=10 * len(poison))
                finally:
                    for process in processes:
                        if process.poll() is None:
                            process.send_signal(signal.SIGTERM)
                    for process in processes:
                        try:
                            process.wait(timeout=15)
                        except subprocess.TimeoutExpired:
                            kill(process)

        letters = asyncio.run(body())
    unsent = outbox.pending()
    outbox.close()
    with sqlite3.connect(effects_db) as db:
        rows = db.execute("SELECT message_id, COUNT(*) FROM effects GROUP BY message_id").fetchall()
    applied = dict(rows)
    missing, unexpected = len(good - set(applied)), len(set(applied) - good)
    assert set(applied) == good, f"missing {missing}, unexpected {unexpected}, unsent in the outbox {unsent}"
    assert max(applied.values()) == 1, f"{sum(1 for v in applied.values() if v > 1)} effects applied twice"
    assert {m.message_id for m in letters} == poison
    assert all(m.dead_reason and m.dead_reason.startswith("poison: ") for m in letters), letters[0].dead_reason
