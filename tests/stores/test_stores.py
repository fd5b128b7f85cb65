"""One contract suite for every Store backend (memory, SQLite, a private Redis), plus cross-process atomicity."""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis_server import free_port, redis_url

from integration_kit import ManualClock, MemoryStore, RedisStore, SQLiteStore
from integration_kit.errors import StoreUnavailable
from integration_kit.stores import Store

__all__ = ["redis_url"]  # the fixture, re-exported so pytest finds it here


@dataclass
class Backend:
    """A store under test, a short TTL for it (seconds) and a way to let that TTL pass for its expiry.

    ``short`` is 50 ms on a ManualClock; on Redis, whose own timers expire keys, it is a real second, so that a
    stalled test process (a loaded 2-core machine) cannot see a key expire between two steps meant to be inside
    its TTL.
    """

    store: Store
    wait: Callable[[float], object]
    short: float = 0.05

    def advance(self) -> None:
        """Let more than ``short`` seconds pass."""
        self.wait(self.short * 1.2)


def _make_backend(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Backend:
    clock = ManualClock(1000.0)
    if kind == "memory":
        return Backend(MemoryStore(clock=clock), clock.advance)
    if kind == "sqlite":
        return Backend(SQLiteStore(tmp_path / "state.db", clock=clock), clock.advance)
    url = request.getfixturevalue("redis_url")
    # Redis expires keys on its own timers: real time has to pass.
    return Backend(RedisStore(url, prefix=f"test:{uuid.uuid4().hex}:"), lambda s: time.sleep(s + 0.02), short=1.0)


@pytest.fixture(params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    made = _make_backend(request.param, tmp_path, request)
    with made.store:
        yield made


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.store


def test_get_set_and_replace(store: Store) -> None:
    assert store.get("k") is None
    store.set("k", b"one")
    assert store.get("k") == b"one"
    store.set("k", b"two")
    assert store.get("k") == b"two"


def test_add_claims_only_once(store: Store) -> None:
    assert store.add("k", b"first")
    assert not store.add("k", b"second")
    assert store.get("k") == b"first"


def test_ttl_expires_a_key_and_frees_the_claim(backend: Backend) -> None:
    store = backend.store
    assert store.add("k", b"lease", ttl=backend.short)
    store.set("forever", b"x")
    backend.advance()
    assert store.get("k") is None
    assert store.get("forever") == b"x"
    assert store.add("k", b"again", ttl=10)
    assert store.get("k") == b"again"


def test_compare_and_set(store: Store) -> None:
    assert not store.compare_and_set("k", b"nope", b"x")
    assert store.compare_and_set("k", None, b"a")  # None: only if absent
    assert not store.compare_and_set("k", None, b"b")
    assert not store.compare_and_set("k", b"b", b"c")
    assert store.compare_and_set("k", b"a", b"c")
    assert store.get("k") == b"c"
    assert store.compare_and_set("k", b"c", None)  # None value: delete
    assert store.get("k") is None


def test_compare_and_set_sets_a_ttl_and_sees_expired_keys_as_absent(backend: Backend) -> None:
    store = backend.store
    assert store.compare_and_set("k", None, b"a", ttl=backend.short)
    backend.advance()
    assert not store.compare_and_set("k", b"a", b"b")
    assert store.compare_and_set("k", None, b"b")


def test_delete(store: Store) -> None:
    assert not store.delete("k")
    store.set("k", b"v")
    assert store.delete("k")
    assert store.get("k") is None


def test_expire(backend: Backend) -> None:
    store = backend.store
    assert not store.expire("missing", 1)
    store.set("k", b"v", ttl=backend.short)
    assert store.expire("k", None)  # persist
    store.set("j", b"v")
    assert store.expire("j", backend.short)
    backend.advance()
    assert store.get("k") == b"v"
    assert store.get("j") is None


def test_increment_clamps_and_reads_back_as_digits(backend: Backend) -> None:
    store = backend.store
    assert store.increment("n", 1) == 1
    assert store.increment("n", 5) == 6
    assert store.get("n") == b"6"
    assert store.increment("tokens", -3, initial=10, minimum=0, maximum=10) == 7
    assert store.increment("tokens", 100, minimum=0, maximum=10) == 10
    assert store.increment("tokens", -100, minimum=0, maximum=10) == 0
    assert store.increment("short", 1, ttl=backend.short) == 1
    assert store.increment("short", 1, ttl=100) == 2  # the ttl of creation stays
    backend.advance()
    assert store.get("short") is None
    assert store.increment("short", 1) == 1


def test_invalid_ttl_is_refused(store: Store) -> None:
    for bad in (0, -1, float("inf"), float("nan"), True):
        with pytest.raises(ValueError, match="ttl"):
            store.set("k", b"v", ttl=bad)


def test_concurrent_claims_have_one_winner(store: Store) -> None:
    winners: list[int] = []
    barrier = threading.Barrier(8)

    def claim(i: int) -> None:
        barrier.wait()
        if store.add("contested", str(i).encode(), ttl=10):
            winners.append(i)
        store.increment("total", 1)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(winners) == 1
    assert store.get("contested") == str(winners[0]).encode()
    assert store.get("total") == b"8"


def test_store_repr_names_the_backend(store: Store) -> None:
    assert store.name in repr(store)


# -- across processes ------------------------------------------------------------------------------------------


def _race(spec: tuple[str, str, str], keys: int) -> int:
    kind, where, prefix = spec
    store: Store = SQLiteStore(where) if kind == "sqlite" else RedisStore(where, prefix=prefix)
    won = 0
    with store:
        for k in range(keys):
            if store.add(f"key{k}", b"x", ttl=60):
                won += 1
                store.increment("winners", 1)
            store.increment("total", 1)
    return won


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
@pytest.mark.timeout(120)  # a process pool, waited for up to 60 s
def test_claims_are_atomic_across_processes(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    where = str(tmp_path / "race.db") if kind == "sqlite" else request.getfixturevalue("redis_url")
    prefix = f"race:{uuid.uuid4().hex}:"
    processes, keys = 4, 100
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes) as pool:
        won = pool.starmap_async(_race, [((kind, where, prefix), keys)] * processes).get(timeout=60)
    assert sum(won) == keys
    store: Store = SQLiteStore(where) if kind == "sqlite" else RedisStore(where, prefix=prefix)
    with store:
        assert store.get("winners") == str(keys).encode()
        assert store.get("total") == str(keys * processes).encode()


# -- unreachable stores --------------------------------------------------------------------------------------


def test_unreachable_redis_raises_store_unavailable() -> None:
    store = RedisStore(f"redis://:hunter2@127.0.0.1:{free_port()}/0", timeout=0.2)
    with pytest.raises(StoreUnavailable) as info:
        store.get("k")
    assert info.value.operation == "get"
    assert "hunter2" not in str(info.value)
    assert "hunter2" not in store.name
    assert isinstance(info.value.__cause__, Exception)


def test_unopenable_sqlite_raises_store_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="open"):
        SQLiteStore(tmp_path / "missing-dir" / "state.db")


def test_sqlite_uses_wal_mode(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "wal.db") as store:
        store.set("k", b"v")
        mode = store._connection().execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_sqlite_purge_removes_expired_rows(tmp_path: Path) -> None:
    clock = ManualClock()
    with SQLiteStore(tmp_path / "p.db", clock=clock) as store:
        store.set("a", b"1", ttl=1)
        store.set("b", b"2")
        clock.advance(2)
        assert store.purge() == 1
        assert store.get("b") == b"2"
