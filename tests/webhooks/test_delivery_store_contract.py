"""One behaviour suite for the webhook sender's stores: SQLite (a file) and PostgreSQL (a schema created and
dropped by the test on the shared server), and several senders sharing one PostgreSQL queue."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from asgi_server import serve_in_thread
from postgres_server import DSN

from integration_kit.clock import ManualClock
from integration_kit.server.inbox import SQLiteInbox
from integration_kit.server.signatures import StandardWebhooks
from integration_kit.server.webhook_receiver import WebhookReceiver
from integration_kit.webhooks.delivery_store import AttemptLogEntry, DeliveryStore, SQLiteDeliveryStore
from integration_kit.webhooks.sender import Endpoint, WebhookSender

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture(params=["sqlite", "postgres"])
def made(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[DeliveryStore, ManualClock]]:
    clock = ManualClock(1_700_000_000.0)
    if request.param == "sqlite":
        store: DeliveryStore = SQLiteDeliveryStore(tmp_path / "outbox.db", clock=clock)
    else:
        from integration_kit.webhooks.postgres_store import PostgresDeliveryStore

        store = PostgresDeliveryStore(DSN, schema=request.getfixturevalue("schema"), clock=clock)
    yield store, clock
    store.close()


def test_enqueue_once_claim_and_lease(made: tuple[DeliveryStore, ManualClock]) -> None:
    store, clock = made
    assert store.enqueue("m1", "order.paid", b'{"n":1}', ["a", "b"])
    assert not store.enqueue("m1", "order.paid", b'{"n":2}', ["a"])
    clock.advance(1)
    store.enqueue("m2", "order.paid", b"{}", ["a"])
    due = store.claim_due(lease=30)
    assert [(d.message_id, d.endpoint_id, d.payload) for d in due][:2] == [
        ("m1", "a", b'{"n":1}'),
        ("m1", "b", b'{"n":1}'),
    ]
    assert len(due) == 3
    assert store.claim_due(lease=30) == []
    clock.advance(30)
    assert len(store.claim_due(lease=30)) == 3  # the lease lapsed: a dead worker's deliveries are taken again
    assert store.next_due() == pytest.approx(1_700_000_000.0, abs=1e-6)  # approx alone allows 1e-6 of an epoch: 28 min


def test_record_moves_a_delivery_along_its_schedule(made: tuple[DeliveryStore, ManualClock]) -> None:
    store, clock = made
    store.enqueue("m1", "t", b"{}", ["a"])
    now = clock.now()
    store.record(
        AttemptLogEntry("m1", "a", 1, now, 503, 0.1, "retry", "ServerError: HTTP 503"), next_attempt_at=now + 5
    )
    row = store.delivery("m1", "a")
    assert row is not None
    assert (row["state"], row["attempts"], row["last_status"]) == ("pending", 1, 503)
    assert store.next_due() == pytest.approx(now + 5, abs=1e-6)
    store.record(
        AttemptLogEntry("m1", "a", 1, now, None, 0.0, "refused", "CircuitOpenError"),
        next_attempt_at=now + 9,
        counted=False,
    )
    assert store.delivery("m1", "a")["attempts"] == 1  # type: ignore[index]
    clock.advance(9)
    store.record(AttemptLogEntry("m1", "a", 2, clock.now(), 200, 0.05, "delivered", None))
    assert store.counts() == {"pending": 0, "delivered": 1, "failed": 0, "disabled": 0}
    assert [(e.attempt, e.outcome) for e in store.log(message_id="m1")] == [(1, "retry"), (2, "delivered")]
    assert store.log(endpoint_id="other") == []
    assert store.next_due() is None


def test_endpoints_fail_disable_park_and_enable(made: tuple[DeliveryStore, ManualClock]) -> None:
    store, _ = made
    assert store.endpoint("a").enabled
    assert store.set_failing("a", 100.0) == 100.0
    assert store.set_failing("a", 200.0) == 100.0  # failing since the first failure
    assert store.set_failing("a", None) is None
    store.enqueue("m1", "t", b"{}", ["a"])
    assert store.disable("a", "gone")
    assert not store.disable("a", "gone")
    assert store.endpoint("a") == type(store.endpoint("a"))("a", False, "gone", None)
    store.enqueue("m2", "t", b"{}", ["a"])  # parked at once
    assert store.counts()["disabled"] == 2
    assert store.claim_due(lease=10) == []
    assert store.enable("a") == 2
    assert len(store.claim_due(lease=10)) == 2


def test_concurrent_workers_claim_disjoint_deliveries(made: tuple[DeliveryStore, ManualClock]) -> None:
    store, _ = made
    for i in range(60):
        store.enqueue(f"m{i}", "t", b"{}", ["a"])
    claimed: list[list[str]] = []
    lock = threading.Lock()

    def worker() -> None:
        mine: list[str] = []
        while batch := store.claim_due(lease=60, limit=3):
            mine += [d.message_id for d in batch]
        with lock:
            claimed.append(mine)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [m for mine in claimed for m in mine]
    assert sorted(every) == sorted(f"m{i}" for i in range(60))  # each exactly once


def test_two_senders_share_one_postgres_queue(schema: str, tmp_path: Path) -> None:
    from integration_kit.webhooks.postgres_store import PostgresDeliveryStore

    inbox = SQLiteInbox(tmp_path / "inbox.db")
    receiver = WebhookReceiver(StandardWebhooks(SECRET), inbox)
    with serve_in_thread(receiver) as url:
        endpoint = Endpoint("shop", url + "/hooks", (SECRET,), allow_private=True)
        stores = [PostgresDeliveryStore(DSN, schema=schema) for _ in range(2)]
        senders = [WebhookSender(store, [endpoint], workers=2) for store in stores]
        ids = [senders[i % 2].send("order.paid", {"order": i}) for i in range(40)]
        halts = [sender.start(poll=0.01, batch=2) for sender in senders]
        deadline = time.monotonic() + 60
        while stores[0].counts()["delivered"] < 40 and time.monotonic() < deadline:
            time.sleep(0.05)  # real workers on a real queue: no clock to step
        for halt in halts:
            halt()
    delivered = [inbox.get(i) for i in ids]
    assert all(e is not None and e.deliveries == 1 for e in delivered)  # every message sent once on the wire
    assert sum(s.stats["delivered"] for s in senders) == 40
    for sender, store in zip(senders, stores, strict=True):
        sender.close()
        store.close()
    inbox.close()
