"""What the Redis webhook inbox writes and reads, on a private redis-server: the keys and scores of each step.

The contract suite (``test_inbox_contract.py``) proves the behaviour shared with SQLite; this file pins what only
the Redis layout decides: the key names under the store prefix and the namespace, the pending scores (arrival,
lease end, replay time), the poison limit's edge and its message, ``last_error`` set and cleared, the purge
cut-off (strict), ``dead_letters``' limit, the operation each failure names, and ``WAITAOF``'s arguments.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis_server import free_port, redis_url
from store_operations import inbox_operations

from integration_kit.clock import ManualClock, WallClock
from integration_kit.errors import StoreUnavailable
from integration_kit.server.inbox import DEFAULT_DEDUP_WINDOW, InboxEvent, InboxState
from integration_kit.server.redis_inbox import RedisInbox
from integration_kit.stores import RedisStore

__all__ = ["redis_url"]

pytestmark = pytest.mark.redis

T0 = 1_700_000_000.25


@pytest.fixture
def parts(redis_url: str) -> Iterator[tuple[RedisInbox, ManualClock, Any, str]]:
    """An inbox under a fresh prefix, its clock, a raw redis-py client on the same server, and the key base."""
    prefix = f"test:{uuid.uuid4().hex}:"
    store = RedisStore(redis_url, prefix=prefix)
    clock = ManualClock(T0)
    raw = redis.Redis.from_url(redis_url)
    yield RedisInbox(store, clock=clock, dedup_window=60), clock, raw, prefix + "webhooks:"
    for key in raw.scan_iter(match=prefix + "*"):
        raw.delete(key)
    raw.close()
    store.close()


def event(event_id: str, at: float, body: bytes = b"{}", source: str = "shop") -> InboxEvent:
    return InboxEvent(event_id, source, at, body, meta={"type": "order.paid"})


def test_defaults_name_and_repr(redis_url: str) -> None:
    store = RedisStore(redis_url, prefix="p:")
    inbox = RedisInbox(store)
    try:
        assert isinstance(inbox.clock, WallClock)
        assert inbox.dedup_window == DEFAULT_DEDUP_WINDOW
        assert inbox.wait_aof is False
        assert inbox.name == f"{redis_url} p:webhooks:"
        assert repr(inbox) == f"RedisInbox('{redis_url} p:webhooks:')"
        named = RedisInbox(store, namespace="hooks/")
        assert named.name == f"{redis_url} p:hooks/"
    finally:
        store.close()


def test_put_writes_the_hash_and_the_pending_score(parts: tuple[RedisInbox, ManualClock, Any, str]) -> None:
    inbox, _, raw, base = parts
    body = b"\x00\xff binary"
    assert inbox.put(event("e1", T0 + 0.123456789, body, source="billing"))
    stored = raw.hgetall(base + "ev:e1")
    assert stored == {
        b"source": b"billing",
        b"received_at": repr(T0 + 0.123456789).encode(),
        b"body": body,
        b"meta": b'{"type": "order.paid"}',
        b"state": b"pending",
        b"claims": b"0",
        b"deliveries": b"1",
    }
    assert raw.zrange(base + "pending", 0, -1, withscores=True) == [(b"e1", T0 + 0.123456789)]
    assert not inbox.put(event("e1", T0 + 5, b"other"))
    assert raw.hget(base + "ev:e1", "deliveries") == b"2"
    assert raw.hget(base + "ev:e1", "body") == body
    got = inbox.get("e1")
    assert got is not None
    assert (got.source, got.received_at, got.body, got.meta, got.last_error) == (
        "billing",
        T0 + 0.123456789,
        body,
        {"type": "order.paid"},
        None,
    )


def test_claim_leases_by_score_and_respects_the_limit(parts: tuple[RedisInbox, ManualClock, Any, str]) -> None:
    inbox, clock, raw, base = parts
    for i, name in enumerate(("a", "b", "c")):
        inbox.put(event(name, T0 + i))
    assert [e.id for e in inbox.claim(lease=30)] == ["a"]  # limit 1 by default; "b" has not arrived yet
    assert raw.zscore(base + "pending", "a") == T0 + 30
    assert inbox.claim(lease=30) == []
    clock.advance(2)
    claimed = inbox.claim(lease=7.5, limit=2)
    assert [(e.id, e.claims, e.state) for e in claimed] == [("b", 1, InboxState.PENDING), ("c", 1, InboxState.PENDING)]
    assert raw.zscore(base + "pending", "b") == T0 + 2 + 7.5
    clock.advance(7)
    assert inbox.claim(lease=1, limit=5) == []
    clock.advance(0.5)  # the lease's end itself is claimable
    assert [e.id for e in inbox.claim(lease=1, limit=5)] == ["b", "c"]
    assert raw.hget(base + "ev:b", "claims") == b"2"


def test_poison_limit_edge_and_message(parts: tuple[RedisInbox, ManualClock, Any, str]) -> None:
    inbox, clock, raw, base = parts
    inbox.put(event("p", T0 - 100))
    for n in (1, 2, 3):
        [got] = inbox.claim(lease=10, max_claims=3)
        assert got.claims == n
        clock.advance(10)
    assert inbox.claim(lease=10, max_claims=3) == []
    dead = inbox.get("p")
    assert dead is not None
    assert (dead.state, dead.claims, dead.last_error) == (InboxState.DEAD, 3, "claimed 3 times without finishing")
    assert raw.zrange(base + "dead", 0, -1, withscores=True) == [(b"p", T0 - 100)]
    assert raw.zcard(base + "pending") == 0
    assert inbox.counts() == {InboxState.PENDING: 0, InboxState.DONE: 0, InboxState.DEAD: 1, InboxState.STALE: 0}


def test_finish_sets_and_clears_the_error(parts: tuple[RedisInbox, ManualClock, Any, str]) -> None:
    inbox, _, raw, base = parts
    inbox.put(event("x", T0 - 5))
    inbox.claim(lease=10)
    inbox.finish("x", InboxState.DEAD, "boom")
    assert raw.zrange(base + "dead", 0, -1, withscores=True) == [(b"x", T0 - 5)]
    assert raw.zcard(base + "pending") == 0
    assert raw.hget(base + "ev:x", "last_error") == b"boom"
    assert inbox.replay(["x"]) == 1
    assert raw.hget(base + "ev:x", "claims") == b"0"
    assert raw.hget(base + "ev:x", "state") == b"pending"
    assert raw.zrange(base + "pending", 0, -1, withscores=True) == [(b"x", T0)]  # claimable now, not at arrival
    inbox.finish("x", InboxState.DONE)
    stored = inbox.get("x")
    assert stored is not None
    assert (stored.state, stored.last_error) == (InboxState.DONE, None)
    assert b"last_error" not in raw.hgetall(base + "ev:x")
    assert raw.zrange(base + "done", 0, -1, withscores=True) == [(b"x", T0 - 5)]
    inbox.finish("ghost", InboxState.DONE, "nothing")
    assert not raw.exists(base + "ev:ghost")
    assert raw.zcard(base + "done") == 1
    inbox.finish("x", InboxState.STALE, "")
    assert raw.zrange(base + "stale", 0, -1) == [b"x"]


def test_dead_letters_limit_and_replay_of_some(parts: tuple[RedisInbox, ManualClock, Any, str]) -> None:
    inbox, _, raw, base = parts
    for i, name in enumerate(("d1", "d2", "d3")):
        inbox.put(event(name, T0 - 10 + i))
    inbox.claim(lease=10, limit=3)
    for name in ("d3", "d1", "d2"):
        inbox.finish(name, InboxState.DEAD, "e-" + name)
    assert [e.id for e in inbox.dead_letters(limit=2)] == ["d1", "d2"]
    assert [(e.id, e.last_error) for e in inbox.dead_letters()] == [("d1", "e-d1"), ("d2", "e-d2"), ("d3", "e-d3")]
    assert inbox.replay([]) == 0
    assert raw.zcard(base + "dead") == 3
    assert inbox.replay(["d2", "nope", "d2"]) == 1
    assert [e.id for e in inbox.dead_letters()] == ["d1", "d3"]
    assert inbox.replay() == 2
    assert inbox.dead_letters() == []
    assert inbox.replay() == 0
    assert [e.id for e in inbox.claim(lease=1, limit=5)] == ["d1", "d2", "d3"]


def test_purge_cutoff_is_strict_and_spares_dead(parts: tuple[RedisInbox, ManualClock, Any, str]) -> None:
    inbox, clock, raw, base = parts
    inbox.put(event("old", T0 - 61))
    inbox.put(event("edge", T0 - 60))
    inbox.put(event("gone", T0 - 90))
    inbox.put(event("dead", T0 - 90))
    inbox.claim(lease=10, limit=4)
    inbox.finish("old", InboxState.DONE)
    inbox.finish("edge", InboxState.DONE)
    inbox.finish("gone", InboxState.STALE)
    inbox.finish("dead", InboxState.DEAD, "x")
    assert inbox.purge() == 2
    assert raw.zrange(base + "done", 0, -1) == [b"edge"]
    assert raw.zcard(base + "stale") == 0
    assert not raw.exists(base + "ev:old")
    assert not raw.exists(base + "ev:gone")
    assert inbox.get("dead") is not None
    assert inbox.purge() == 0
    clock.advance(0.5)
    assert inbox.purge() == 1
    assert inbox.get("edge") is None


def test_namespaces_share_nothing(parts: tuple[RedisInbox, ManualClock, Any, str]) -> None:
    inbox, clock, _, _ = parts
    other = RedisInbox(inbox.store, namespace="other:", clock=clock)
    inbox.put(event("same", T0))
    assert other.get("same") is None
    assert other.put(event("same", T0))
    assert other.counts()[InboxState.PENDING] == 1


def test_wait_aof_sends_waitaof_after_the_write(
    parts: tuple[RedisInbox, ManualClock, Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server here may predate ``WAITAOF`` (Redis 7.2): the command is recorded and answered, the rest sent."""
    inbox, clock, raw, base = parts
    sent: list[str] = []
    real = inbox._client.execute_command

    def spy(*args: Any, **options: Any) -> Any:
        sent.append(" ".join(str(a) for a in args[:1] if a) if args[0] != "WAITAOF" else repr(args))
        return [1, 0] if args[0] == "WAITAOF" else real(*args, **options)

    monkeypatch.setattr(inbox._client, "execute_command", spy)
    assert inbox.put(event("w", T0))
    assert "WAITAOF" not in " ".join(sent)
    sent.clear()
    waiting = RedisInbox(inbox.store, clock=clock, wait_aof=True)
    assert waiting.put(event("w2", T0))
    assert sent[-1] == repr(("WAITAOF", 1, 0, 1000))
    assert sent[:-1]
    assert all(s.startswith("EVAL") for s in sent[:-1])
    assert raw.exists(base + "ev:w2")


def test_each_step_names_its_operation_when_redis_is_down() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    store = RedisStore(url, prefix="down:", timeout=0.5)
    inbox = RedisInbox(store, clock=ManualClock(T0))
    steps = inbox_operations(inbox, event("a", T0))
    try:
        for operation, step in steps.items():
            with pytest.raises(StoreUnavailable) as caught:
                step()
            assert caught.value.operation == operation
            assert caught.value.store == url
    finally:
        store.close()


def test_the_defaults_of_claim_and_dead_letters(parts: tuple[RedisInbox, ManualClock, Any, str]) -> None:
    """One event per claim, ten claims before DEAD, a hundred dead letters, unless told otherwise."""
    inbox, clock, _, _ = parts
    inbox.put(event("x", T0 - 2))
    for n in range(1, 11):
        assert [(e.id, e.claims) for e in inbox.claim(lease=1)] == [("x", n)]
        clock.advance(1)
    assert inbox.claim(lease=1) == []  # "x" went DEAD on its eleventh claim
    assert [e.last_error for e in inbox.dead_letters()] == ["claimed 10 times without finishing"]
    inbox.put(event("y", T0))
    inbox.put(event("z", T0))
    assert len(inbox.claim(lease=1)) == 1
    names = [f"d{i:03d}" for i in range(101)]
    for i, name in enumerate(names):
        inbox.put(event(name, T0 + i))
    clock.advance(200)
    inbox.claim(lease=1, limit=200)
    for name in names:
        inbox.finish(name, InboxState.DEAD, "e")
    letters = inbox.dead_letters()
    assert len(letters) == 100
    assert [e.id for e in letters] == ["x", *names[:99]]
