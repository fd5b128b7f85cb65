"""Proof that an acknowledged webhook is never lost: the receiver process is killed (SIGKILL) mid-stream, restarted,
and every event the sender got a 2xx for is processed, exactly once past the handler's idempotency.

A real sender (4 threads, like a provider's delivery workers) posts 300 signed events, each until it gets a 2xx,
re-signing on every retry with the same ``webhook-id``; 60 of them are sent twice more on purpose. The receiver
(uvicorn, a separate process) writes each event to its SQLite inbox before answering, and a processing thread runs
the handler behind it. When a third of the events are acknowledged the receiver is killed with events still
pending in its inbox; a new process is started on the same inbox and the sender carries on.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
from redis_server import free_port, redis_url, stop
from webhook_app import SECRET

from integration_kit.server.inbox import Inbox, InboxState, SQLiteInbox
from integration_kit.server.redis_inbox import RedisInbox
from integration_kit.server.signatures import StandardWebhooks
from integration_kit.stores import RedisStore, SQLiteStore

__all__ = ["redis_url"]

TESTS = Path(__file__).resolve().parents[1]
EVENTS = 300
SENDERS = 4
RESENT = 60


def start_receiver(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "--factory", "webhook_app:create_app", "--app-dir", str(TESTS)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return process, f"http://127.0.0.1:{port}"
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the receiver did not start")
        time.sleep(0.05)  # waiting for a real process to bind: no clock to step


class Sender:
    """Delivers each event until it is acknowledged, against whichever receiver is current."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.scheme = StandardWebhooks(SECRET)
        self.answers: Counter[str] = Counter()
        self.acked: set[str] = set()
        self.failed_attempts = 0
        self.lock = threading.Lock()

    def deliver(self, event_id: str, client: httpx.Client) -> str:
        body = f'{{"type":"order.created","id":"{event_id}"}}'.encode()
        give_up = time.monotonic() + 60
        while time.monotonic() < give_up:
            headers = self.scheme.sign(body, msg_id=event_id)  # a retry is signed afresh, with the same id
            try:
                response = client.post(self.url + "/", content=body, headers=headers)
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code == 200:
                status = str(response.json()["status"])
                with self.lock:
                    self.answers[status] += 1
                    self.acked.add(event_id)
                return status
            with self.lock:
                self.failed_attempts += 1
            time.sleep(0.05)  # the sender's own backoff while the receiver is down
        raise AssertionError(f"{event_id} was never acknowledged")

    def run(self, ids: list[str]) -> None:
        with httpx.Client(timeout=5) as client:
            for event_id in ids:
                self.deliver(event_id, client)


@pytest.mark.slow
def test_receiver_killed_mid_stream_loses_nothing(tmp_path: Path) -> None:
    env = {"IK_INBOX": str(tmp_path / "inbox.db"), "IK_EFFECTS": str(tmp_path / "effects.db"), "IK_WORK": "0.01"}
    prove_no_loss(env, SQLiteInbox(env["IK_INBOX"]))


@pytest.mark.slow
@pytest.mark.redis
def test_receiver_killed_mid_stream_loses_nothing_with_redis(tmp_path: Path, redis_url: str) -> None:
    prefix = f"proof:{uuid.uuid4().hex}:"
    env = {"IK_INBOX": redis_url, "IK_PREFIX": prefix, "IK_EFFECTS": str(tmp_path / "effects.db"), "IK_WORK": "0.01"}
    prove_no_loss(env, RedisInbox(RedisStore(redis_url, prefix=prefix)))


def prove_no_loss(env: dict[str, str], inbox: Inbox) -> None:
    """Send the stream, kill the receiver a third of the way in, restart it, and check every count."""
    rng = random.Random(14)
    ids = [f"msg_{i:04d}" for i in range(EVENTS)]
    resent = rng.sample(ids, RESENT)
    stream = ids + resent + resent
    rng.shuffle(stream)
    first_seen: dict[str, int] = {}
    for position, event_id in enumerate(stream):
        first_seen.setdefault(event_id, position)
    process, url = start_receiver(env)
    sender = Sender(url)
    threads = [threading.Thread(target=sender.run, args=(stream[i::SENDERS],)) for i in range(SENDERS)]
    for thread in threads:
        thread.start()
    try:
        while len(sender.acked) < EVENTS // 3:
            time.sleep(0.01)  # watching real traffic: no clock to step
        process.kill()  # SIGKILL: no shutdown, no flush
        process.wait()
        pending_at_kill = inbox.counts()[InboxState.PENDING]
        acked_at_kill = len(sender.acked)
        process, sender.url = start_receiver(env)
        for thread in threads:
            thread.join(timeout=120)
        deadline = time.monotonic() + 30
        while inbox.counts()[InboxState.PENDING] and time.monotonic() < deadline:
            time.sleep(0.05)  # the restarted process drains its inbox (leases of the killed one lapse after 2 s)
        counts = inbox.counts()
    finally:
        stop(process)
    effects = SQLiteStore(env["IK_EFFECTS"])
    runs = {i: int(effects.get(f"runs:{i}") or 0) for i in ids}
    assert pending_at_kill > 0, "the kill must leave acknowledged events unprocessed"
    assert acked_at_kill < EVENTS
    assert sender.acked == set(ids)
    assert all(effects.get(f"effect:{i}") == b"1" for i in ids), "an acknowledged event was lost"
    assert counts[InboxState.DONE] == EVENTS
    assert counts[InboxState.PENDING] == counts[InboxState.DEAD] == 0
    assert min(runs.values()) >= 1
    # Every delivery got exactly one 2xx. An event stored just before the kill, whose 2xx never left, was answered
    # "duplicate" on its retry: at most one such event per sender thread.
    lost_acks = EVENTS - sender.answers["accepted"]
    assert 0 <= lost_acks <= SENDERS
    assert sender.answers["accepted"] + sender.answers["duplicate"] == len(stream)
    # Deliveries the inbox counted: every one in the stream, plus the retry of each lost ack, plus at most one more
    # per sender thread: a request in flight at the kill (a duplicate, or an event answered "duplicate" whose answer
    # never left) reaches the inbox and is counted again when the sender retries it.
    delivered = sum(e.deliveries for e in map(inbox.get, ids) if e is not None)
    assert len(stream) + lost_acks <= delivered <= len(stream) + lost_acks + SENDERS
    reruns = sum(runs.values()) - EVENTS
    print(
        f"loss proof ({type(inbox).__name__}): {EVENTS} events, {len(stream) - EVENTS} duplicate deliveries "
        "suppressed, killed with "
        f"{pending_at_kill} acknowledged events pending after {acked_at_kill} acks, {sender.failed_attempts} "
        f"failed deliveries while down, {lost_acks} stored but unacknowledged, 0 lost, {reruns} handler re-runs "
        "absorbed by its idempotency"
    )
    inbox.close()
    effects.close()
