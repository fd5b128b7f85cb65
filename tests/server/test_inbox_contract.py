"""One behaviour suite for every webhook inbox: SQLite (a file) and Redis (a private server)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from asgi_server import serve_in_thread
from redis_server import redis_url

from integration_kit.clock import ManualClock
from integration_kit.server.inbox import Inbox, InboxEvent, InboxState, SQLiteInbox
from integration_kit.server.redis_inbox import RedisInbox
from integration_kit.server.signatures import StandardWebhooks
from integration_kit.server.webhook_processor import WebhookProcessor
from integration_kit.server.webhook_receiver import WebhookReceiver
from integration_kit.stores import RedisStore

__all__ = ["redis_url"]

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def made(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Inbox, ManualClock]]:
    clock = ManualClock(1_700_000_000.0)
    if request.param == "sqlite":
        inbox: Inbox = SQLiteInbox(tmp_path / "inbox.db", clock=clock, dedup_window=60)
        yield inbox, clock
        inbox.close()
        return
    url = request.getfixturevalue("redis_url")
    store = RedisStore(url, prefix=f"test:{uuid.uuid4().hex}:")
    yield RedisInbox(store, clock=clock, dedup_window=60), clock
    store.close()


def event(event_id: str, clock: ManualClock, body: bytes = b"{}") -> InboxEvent:
    return InboxEvent(event_id, "shop", clock.now(), body, meta={"content-type": "application/json"})


def test_put_is_durable_once_per_id(made: tuple[Inbox, ManualClock]) -> None:
    inbox, clock = made
    assert inbox.put(event("a", clock, b'{"n":1}'))
    assert not inbox.put(event("a", clock, b'{"n":2}'))
    stored = inbox.get("a")
    assert stored is not None
    assert (stored.body, stored.deliveries, stored.state, stored.meta) == (
        b'{"n":1}',
        2,
        InboxState.PENDING,
        {"content-type": "application/json"},
    )
    assert inbox.get("missing") is None
    assert inbox.put_many([event("b", clock), event("a", clock)]) == [True, False]


def test_claims_lease_and_poison(made: tuple[Inbox, ManualClock]) -> None:
    inbox, clock = made
    inbox.put(event("a", clock))
    clock.advance(1)
    inbox.put(event("b", clock))
    assert [e.id for e in inbox.claim(lease=30, limit=5)] == ["a", "b"]
    assert inbox.claim(lease=30) == []
    clock.advance(30)
    again = inbox.claim(lease=30, limit=5, max_claims=2)
    assert [(e.id, e.claims) for e in again] == [("a", 2), ("b", 2)]
    clock.advance(30)
    assert inbox.claim(lease=30, limit=5, max_claims=2) == []  # a third claim: they keep killing their process
    assert inbox.counts()[InboxState.DEAD] == 2


def test_finish_dead_letters_replay_purge(made: tuple[Inbox, ManualClock]) -> None:
    inbox, clock = made
    for name in ("a", "b", "c"):
        inbox.put(event(name, clock))
    inbox.claim(lease=10, limit=3)
    inbox.finish("a", InboxState.DONE)
    inbox.finish("b", InboxState.DEAD, "RetriesExhausted: RuntimeError: down")
    inbox.finish("c", InboxState.STALE)
    counts = inbox.counts()
    assert (counts[InboxState.PENDING], counts[InboxState.DONE], counts[InboxState.DEAD]) == (0, 1, 1)
    assert counts[InboxState.STALE] == 1
    [dead] = inbox.dead_letters()
    assert (dead.id, dead.last_error) == ("b", "RetriesExhausted: RuntimeError: down")
    assert inbox.replay(["nope"]) == 0
    assert inbox.replay() == 1
    assert [(e.id, e.claims) for e in inbox.claim(lease=10)] == [("b", 1)]
    assert not inbox.put(event("a", clock))  # still remembered within the window
    clock.advance(61)
    assert inbox.purge() == 2
    assert inbox.put(event("a", clock))


def test_processor_and_receiver_over_the_inbox(made: tuple[Inbox, ManualClock]) -> None:
    inbox, clock = made
    receiver = WebhookReceiver(StandardWebhooks(SECRET, clock=clock), inbox, clock=clock)
    signer = StandardWebhooks(SECRET, clock=clock)
    with serve_in_thread(receiver) as url:
        answers = [
            httpx.post(url, content=b"{}", headers=signer.sign(b"{}", msg_id=i), timeout=10).json()["status"]
            for i in ("m1", "m2", "m1")
        ]
    assert answers == ["accepted", "accepted", "duplicate"]
    seen: list[str] = []
    WebhookProcessor(inbox, lambda e: seen.append(e.id), clock=clock).process_due()
    assert seen == ["m1", "m2"]
    assert inbox.counts()[InboxState.DONE] == 2
