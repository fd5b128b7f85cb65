"""``@idempotent`` (``integration_kit.server.keyed``), exactly: the store key it claims (namespace, function,
key), the TTL and lease it passes on, how a key is taken from the first argument, what is stored and replayed,
and that a failure releases the key in the sync and the async wrapper alike.

A :class:`~integration_kit.stores.memory.MemoryStore` on a :class:`~integration_kit.clock.ManualClock` (the TTLs
are the store's, on the store's clock) and a real SQLite file for the blocking-store path of the async wrapper.
Each assertion pins one behaviour the mutation sweep of issue 29 found unguarded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from integration_kit import ManualClock, MemoryStore, SQLiteStore, idempotent
from integration_kit.server.errors import IdempotencyKeyReused, RequestInFlight
from integration_kit.server.idempotency import IdempotencyRecord, RecordState
from integration_kit.stores import Store

PREFIX = f"idempotent:{__name__}."


@dataclass
class Message:
    message_id: str
    amount: int = 1


def _record(store: Store, key: str) -> IdempotencyRecord:
    raw = store.get(key)
    assert raw is not None, f"nothing stored under {key!r}"
    return IdempotencyRecord.decode(raw)


def test_the_stored_key_is_the_namespace_the_function_and_the_key() -> None:
    store = MemoryStore()

    @idempotent(store, key="message_id")
    def consume(message: Message) -> int:
        return message.amount

    assert consume(Message("m-1", 3)) == 3
    record = _record(
        store, f"{PREFIX}test_the_stored_key_is_the_namespace_the_function_and_the_key.<locals>.consume:m-1"
    )
    assert record.state is RecordState.COMPLETED
    assert record.fingerprint == ""
    assert record.result == b"3"


def test_two_functions_with_one_key_do_not_share_a_record() -> None:
    store = MemoryStore()

    @idempotent(store, key="message_id")
    def first(message: Message) -> str:
        return "first"

    @idempotent(store, key="message_id")
    def second(message: Message) -> str:
        return "second"

    assert (first(Message("k")), second(Message("k"))) == ("first", "second")


def test_a_key_from_a_mapping_item_an_attribute_or_a_callable() -> None:
    store = MemoryStore()
    runs: list[Any] = []

    @idempotent(store, key="id")
    def by_item(message: dict[str, Any]) -> None:
        runs.append(message)

    by_item({"id": 7})
    by_item({"id": 7, "other": 1})  # same key: replayed
    assert runs == [{"id": 7}]
    assert store.get(f"{PREFIX}test_a_key_from_a_mapping_item_an_attribute_or_a_callable.<locals>.by_item:7")

    @idempotent(store, key=lambda m, *, suffix: f"{m.message_id}/{suffix}")
    def by_callable(message: Message, *, suffix: str) -> str:
        runs.append(suffix)
        return suffix

    assert by_callable(Message("a"), suffix="x") == "x"
    assert by_callable(Message("a"), suffix="x") == "x"
    assert by_callable(Message("a"), suffix="y") == "y"
    assert runs[1:] == ["x", "y"]


def test_a_named_key_needs_the_message_as_the_first_positional_argument() -> None:
    @idempotent(MemoryStore(), key="message_id")
    def consume(message: Message | None = None) -> None:
        return None

    with pytest.raises(TypeError) as caught:
        consume(message=Message("m"))
    assert str(caught.value) == "idempotent(key='message_id') needs the message as the first positional argument"


def test_the_fingerprint_gets_every_argument() -> None:
    store = MemoryStore()

    @idempotent(store, key="message_id", fingerprint=lambda m, *, region: f"{m.amount}@{region}")
    def charge(message: Message, *, region: str) -> int:
        return message.amount

    assert charge(Message("m", 5), region="eu") == 5
    assert charge(Message("m", 5), region="eu") == 5
    with pytest.raises(IdempotencyKeyReused):
        charge(Message("m", 5), region="us")
    assert _record(store, f"{PREFIX}test_the_fingerprint_gets_every_argument.<locals>.charge:m").fingerprint == "5@eu"


def test_results_are_stored_with_dumps_as_bytes_and_replayed_with_loads() -> None:
    store = MemoryStore()
    loaded: list[bytes] = []

    def loads(raw: bytes) -> Any:
        loaded.append(raw)
        return json.loads(raw)

    @idempotent(store, key="message_id", dumps=lambda r: json.dumps(r, sort_keys=True), loads=loads)
    def as_text(message: Message) -> dict[str, int]:
        return {"b": 2, "a": message.amount}

    @idempotent(store, key="message_id", dumps=lambda r: bytes([r]), loads=lambda raw: raw[0])
    def as_bytes(message: Message) -> int:
        return message.amount

    assert as_text(Message("t", 1)) == {"b": 2, "a": 1}
    assert as_text(Message("t", 1)) == {"a": 1, "b": 2}
    assert loaded == [b'{"a": 1, "b": 2}']
    assert as_bytes(Message("b", 200)) == 200
    assert as_bytes(Message("b", 200)) == 200
    key = f"{PREFIX}test_results_are_stored_with_dumps_as_bytes_and_replayed_with_loads.<locals>.as_bytes:b"
    assert _record(store, key).result == bytes([200])


def test_the_ttl_and_the_lease_reach_the_store() -> None:
    clock = ManualClock(1000.0)
    store = MemoryStore(clock=clock)
    runs: list[str] = []

    @idempotent(store, key="message_id", ttl=50, lease=5, clock=clock)
    def consume(message: Message) -> str:
        runs.append(message.message_id)
        return message.message_id

    assert consume(Message("a")) == "a"
    clock.advance(49.9)
    assert consume(Message("a")) == "a"
    assert runs == ["a"]  # still within the ttl: replayed
    clock.advance(0.2)
    consume(Message("a"))
    assert runs == ["a", "a"]  # past the ttl: runs again
    key = f"{PREFIX}test_the_ttl_and_the_lease_reach_the_store.<locals>.consume:a"
    assert _record(store, key).expires == pytest.approx(clock.now() + 50)


def test_a_claim_lapses_after_the_lease() -> None:
    clock = ManualClock(1000.0)
    store = MemoryStore(clock=clock)
    seen: list[str] = []

    @idempotent(store, key="message_id", ttl=50, lease=5, clock=clock)
    def consume(message: Message) -> str:
        seen.append(message.message_id)
        if message.amount == 0:
            clock.advance(4.9)
            with pytest.raises(RequestInFlight):  # the claim is still held
                consume(Message(message.message_id, 1))
            clock.advance(0.2)
            assert consume(Message(message.message_id, 1)) == "nested"  # the lease lapsed: another run takes it
            return "outer"
        return "nested"

    assert consume(Message("k", 0)) == "outer"
    assert seen == ["k", "k"]  # the refused duplicate never ran


def test_a_failure_releases_the_key_and_leaves_nothing_stored() -> None:
    store = MemoryStore()
    attempts: list[int] = []

    @idempotent(store, key="message_id")
    def consume(message: Message) -> int:
        attempts.append(message.amount)
        if len(attempts) == 1:
            raise RuntimeError("boom")
        return len(attempts)

    with pytest.raises(RuntimeError, match="boom"):
        consume(Message("f"))
    assert len(store) == 0
    assert consume(Message("f")) == 2
    assert consume(Message("f")) == 2


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_the_async_wrapper_stores_replays_and_releases(kind: str, tmp_path: Path) -> None:
    store: Store = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "keyed.db")
    runs: list[int] = []

    @idempotent(store, key="message_id", dumps=lambda r: json.dumps(r).encode(), loads=lambda raw: ("loaded", raw))
    async def consume(message: Message) -> Any:
        runs.append(message.amount)
        await anyio.lowlevel.checkpoint()
        if message.amount < 0:
            raise ValueError("negative")
        return message.amount

    async def main() -> None:
        assert await consume(Message("a", 4)) == 4
        assert await consume(Message("a", 4)) == ("loaded", b"4")
        with pytest.raises(ValueError, match="negative"):
            await consume(Message("n", -1))
        assert store.get(f"{PREFIX}test_the_async_wrapper_stores_replays_and_releases.<locals>.consume:n") is None
        with pytest.raises(ValueError, match="negative"):
            await consume(Message("n", -1))

    anyio.run(main)
    assert runs == [4, -1, -1]
    assert consume.__name__ == "consume"
    assert (
        _record(store, f"{PREFIX}test_the_async_wrapper_stores_replays_and_releases.<locals>.consume:a").result == b"4"
    )
