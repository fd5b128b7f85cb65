"""The SQLite webhook inbox's own rules, on real database files and a :class:`ManualClock`: what each row holds,
the namespaces that share one file, the claim's order, lease and poison limit, the purge's boundaries, the
durability of each write, and who closes the file.

The behaviour every inbox shares (SQLite and Redis) is in ``test_inbox_contract.py``; this file pins what that
suite leaves open.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from store_operations import inbox_operations

from integration_kit.clock import ManualClock
from integration_kit.errors import StoreUnavailable
from integration_kit.server.inbox import DEFAULT_DEDUP_WINDOW, InboxEvent, InboxState, SQLiteInbox
from integration_kit.stores import SQLiteStore

T0 = 1_700_000_000.0


def event(event_id: str, at: float, body: bytes = b"{}", **meta: str) -> InboxEvent:
    return InboxEvent(event_id, "shop", at, body, meta=dict(meta))


def rows(path: Path) -> dict[str, tuple[object, ...]]:
    with sqlite3.connect(path) as db:
        found = db.execute("SELECT id, state, claimed_until, claims, finished_at, last_error FROM webhook_inbox")
        return {str(row[0]): row[1:] for row in found}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


def test_an_event_is_stored_and_read_back_whole(tmp_path: Path, clock: ManualClock) -> None:
    inbox = SQLiteInbox(tmp_path / "inbox.db", clock=clock)
    assert inbox.put(event("e1", T0 - 5, b'{"n": 1}', **{"content-type": "application/json", "x-event": "paid"}))
    got = inbox.get("e1")
    assert got == InboxEvent(
        "e1",
        "shop",
        T0 - 5,
        b'{"n": 1}',
        InboxState.PENDING,
        {"content-type": "application/json", "x-event": "paid"},
        claims=0,
        deliveries=1,
        last_error=None,
    )
    assert got is not None
    assert got.json() == {"n": 1}
    assert rows(tmp_path / "inbox.db")["e1"] == ("pending", 0, 0, None, None)
    assert inbox.name == f"sqlite:{tmp_path / 'inbox.db'}"
    assert repr(inbox) == f"SQLiteInbox('sqlite:{tmp_path / 'inbox.db'}', namespace='')"
    inbox.close()


def test_namespaces_share_a_file_without_seeing_each_other(tmp_path: Path, clock: ManualClock) -> None:
    store = SQLiteStore(tmp_path / "shared.db")
    orders = SQLiteInbox(store, namespace="orders:", clock=clock, dedup_window=10)
    refunds = SQLiteInbox(store, namespace="refunds:", clock=clock, dedup_window=10)
    for inbox in (orders, refunds):
        assert inbox.put_many([event("a", T0), event("b", T0 + 1), event("c", T0 + 2)]) == [True, True, True]
    assert repr(orders) == f"SQLiteInbox('sqlite:{tmp_path / 'shared.db'}', namespace='orders:')"
    assert sorted(rows(tmp_path / "shared.db")) == [f"{n}:{e}" for n in ("orders", "refunds") for e in "abc"]
    [first] = orders.claim(lease=30)
    assert first.id == "a"
    assert first.claims == 1
    orders.finish("a", InboxState.DONE)
    orders.finish("b", InboxState.DEAD, "gave up")
    assert refunds.get("a") is not None
    assert refunds.get("a").state is InboxState.PENDING
    assert orders.get("b").state is InboxState.DEAD  # type: ignore[union-attr]
    assert [e.id for e in orders.dead_letters()] == ["b"]
    assert refunds.dead_letters() == []
    assert refunds.counts() == {InboxState.PENDING: 3, InboxState.DONE: 0, InboxState.DEAD: 0, InboxState.STALE: 0}
    assert orders.counts() == {InboxState.PENDING: 1, InboxState.DONE: 1, InboxState.DEAD: 1, InboxState.STALE: 0}
    refunds.finish("b", InboxState.DEAD, "gave up too")
    assert orders.replay() == 1  # only its own dead event
    assert refunds.counts()[InboxState.DEAD] == 1
    clock.advance(20)
    refunds.finish("a", InboxState.DONE)
    assert orders.purge() == 2  # purge is not namespaced: done and stale rows of every receiver go
    assert refunds.get("a") is None
    assert orders.get("a") is None
    orders.close()  # the store is the caller's: still open
    assert refunds.claim(lease=30, limit=5)[0].id == "c"
    store.close()


def test_claims_take_the_oldest_first_one_at_a_time_until_the_lease_lapses(tmp_path: Path, clock: ManualClock) -> None:
    inbox = SQLiteInbox(tmp_path / "inbox.db", clock=clock)
    inbox.put_many([event("z", T0 - 30), event("a", T0 - 10), event("m", T0 - 20)])
    assert [e.id for e in inbox.claim(lease=30)] == ["z"]  # by arrival, not by id; limit 1 by default
    assert [e.id for e in inbox.claim(lease=30, limit=5)] == ["m", "a"]
    assert rows(tmp_path / "inbox.db")["z"][1:3] == (T0 + 30, 1)
    clock.advance(29.5)
    assert inbox.claim(lease=30, limit=5) == []
    clock.advance(0.5)  # exactly at the end of the lease: due again
    assert [(e.id, e.claims) for e in inbox.claim(lease=30, limit=5)] == [("z", 2), ("m", 2), ("a", 2)]
    inbox.close()


def test_an_event_claimed_ten_times_goes_dead(tmp_path: Path, clock: ManualClock) -> None:
    inbox = SQLiteInbox(tmp_path / "inbox.db", clock=clock)
    inbox.put(event("poison", T0))
    for n in range(1, 11):
        assert [(e.id, e.claims) for e in inbox.claim(lease=1)] == [("poison", n)]
        clock.advance(1)
    assert inbox.claim(lease=1) == []
    [dead] = inbox.dead_letters()
    assert (dead.state, dead.claims, dead.last_error) == (InboxState.DEAD, 10, "claimed 10 times without finishing")
    assert rows(tmp_path / "inbox.db")["poison"][3] == clock.now()  # finished_at
    inbox.close()


def test_finish_stamps_the_time_and_error_and_dead_letters_come_oldest_first(
    tmp_path: Path, clock: ManualClock
) -> None:
    inbox = SQLiteInbox(tmp_path / "inbox.db", clock=clock)
    inbox.put_many([event(f"e{i}", T0 - i) for i in range(103)])
    for i in range(103):
        inbox.finish(f"e{i}", InboxState.DEAD, f"error {i}")
    inbox.finish("e0", InboxState.DONE)
    done = rows(tmp_path / "inbox.db")["e0"]
    assert (done[0], done[4]) == ("done", None)
    assert rows(tmp_path / "inbox.db")["e1"][3:] == (T0, "error 1")
    dead = inbox.dead_letters()
    assert len(dead) == 100  # the default limit
    assert [e.id for e in dead[:2]] == ["e102", "e101"]
    assert [e.id for e in inbox.dead_letters(limit=2)] == ["e102", "e101"]
    inbox.close()


def test_replay_resets_the_claims_and_the_lease(tmp_path: Path, clock: ManualClock) -> None:
    inbox = SQLiteInbox(tmp_path / "inbox.db", clock=clock)
    inbox.put_many([event("a", T0), event("b", T0), event("c", T0)])
    inbox.claim(lease=600, limit=3)
    for name in ("a", "b", "c"):
        inbox.finish(name, InboxState.DEAD, "down")
    assert inbox.replay(["a", "b", "missing"]) == 2
    assert rows(tmp_path / "inbox.db")["a"] == ("pending", 0, 0, None, "down")
    claimed = inbox.claim(lease=600, limit=3)  # due at once, although the old lease had 600 s to run
    assert [(e.id, e.claims) for e in claimed] == [("a", 1), ("b", 1)]
    assert inbox.replay() == 1
    assert rows(tmp_path / "inbox.db")["c"][:2] == ("pending", 0)
    inbox.close()


def test_the_purge_keeps_the_window_and_unfinished_events(tmp_path: Path, clock: ManualClock) -> None:
    assert DEFAULT_DEDUP_WINDOW == 3 * 24 * 3600.0
    inbox = SQLiteInbox(tmp_path / "inbox.db", clock=clock)
    assert inbox.dedup_window == DEFAULT_DEDUP_WINDOW
    inbox.put_many([event(n, T0) for n in ("done", "stale", "dead", "pending")])
    inbox.finish("done", InboxState.DONE)
    inbox.finish("stale", InboxState.STALE)
    inbox.finish("dead", InboxState.DEAD, "x")
    clock.advance(DEFAULT_DEDUP_WINDOW)
    assert inbox.purge() == 0  # arrived exactly a window ago: still remembered
    clock.advance(1)
    assert inbox.purge() == 2
    assert sorted(rows(tmp_path / "inbox.db")) == ["dead", "pending"]
    inbox.close()


def test_arrivals_commit_with_a_full_sync_and_the_other_writes_with_a_normal_one(tmp_path: Path) -> None:
    inbox = SQLiteInbox(tmp_path / "inbox.db")

    def synchronous() -> int:
        return int(inbox.store._connection().execute("PRAGMA synchronous").fetchone()[0])

    inbox.put(event("a", T0))
    assert synchronous() == 2  # FULL
    inbox.claim(lease=1)
    assert synchronous() == 1  # NORMAL
    inbox.put_many([event("b", T0)])
    assert synchronous() == 2
    inbox.finish("a", InboxState.DONE)
    assert synchronous() == 1
    inbox.close()


def test_an_inbox_closes_the_file_it_opened(tmp_path: Path) -> None:
    inbox = SQLiteInbox(tmp_path / "inbox.db")
    inbox.put(event("a", T0))
    inbox.close()
    with pytest.raises(StoreUnavailable, match="closed"):
        inbox.get("a")


def test_each_operation_names_itself_when_the_database_fails(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "inbox.db")
    inbox = SQLiteInbox(store)
    store.close()  # every statement now fails as an unreachable database would
    calls = {**inbox_operations(inbox, event("a", T0)), "open": lambda: SQLiteInbox(store)}
    for operation, call in calls.items():
        with pytest.raises(StoreUnavailable) as caught:
            call()
        assert caught.value.operation == operation
        assert caught.value.store == f"sqlite:{tmp_path / 'inbox.db'}"
