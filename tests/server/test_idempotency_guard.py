"""The idempotency guard's records and rules, pinned by the mutation sweep of issue 29 (``server/idempotency.py``).

What another process sharing the store relies on (the stored key layout, each record's key, owner and expiry, a
round trip of any record and any stored response), what a caller is told (the errors' messages and fields, the
validation of the guard's settings), the key parser's edges (RFC 8941 escapes, OWS only), the claim retried when
the record expires between two store calls, and where :func:`store_call` runs an operation.

A real :class:`~integration_kit.stores.memory.MemoryStore` on a :class:`~integration_kit.clock.ManualClock`; a
subclass only to make a record expire between two store calls, which no clock step can place.
"""

from __future__ import annotations

import threading

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from integration_kit.clock import ManualClock
from integration_kit.errors import StoreUnavailable
from integration_kit.server.errors import IdempotencyKeyReused, RequestInFlight
from integration_kit.server.idempotency import (
    Claim,
    IdempotencyGuard,
    IdempotencyRecord,
    RecordState,
    StoredResponse,
    parse_idempotency_key,
    store_call,
)
from integration_kit.stores.memory import MemoryStore
from integration_kit.stores.sqlite import SQLiteStore


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1000.0)


def _stored(store: MemoryStore, key: str) -> IdempotencyRecord:
    raw = store.get(key)
    assert raw is not None
    return IdempotencyRecord.decode(raw)


def test_a_claim_is_stored_under_the_namespace_with_its_key_owner_and_lease(clock: ManualClock) -> None:
    store = MemoryStore(clock=clock)
    guard = IdempotencyGuard(store, lease=30.0, ttl=600.0, clock=clock)
    claim = guard.begin("order-1", "POST /orders sha256:ab")
    assert isinstance(claim, Claim)
    assert claim.key == "idempotency:order-1"  # the layout every process sharing the store reads
    record = _stored(store, "idempotency:order-1")
    assert (record.key, record.state, record.created, record.expires) == ("order-1", RecordState.IN_FLIGHT, 1000, 1030)
    assert len(record.owner) == 32
    int(record.owner, 16)
    clock.advance(5)
    assert guard.complete(claim, b"result")
    done = _stored(store, "idempotency:order-1")
    assert (done.key, done.owner, done.state, done.expires) == ("order-1", record.owner, RecordState.COMPLETED, 1605)
    assert guard.begin("order-1", "POST /orders sha256:ab") == done


def test_the_errors_say_which_key_and_when_to_come_back(clock: ManualClock) -> None:
    guard = IdempotencyGuard(MemoryStore(clock=clock), retry_after=3.0, clock=clock)
    guard.begin("k-1", "POST /a sha256:1")
    with pytest.raises(RequestInFlight) as flight:
        guard.begin("k-1", "POST /a sha256:1")
    assert (flight.value.message, flight.value.key) == ("a request with idempotency key 'k-1' is in flight", "k-1")
    assert flight.value.retry_after == 3.0
    with pytest.raises(IdempotencyKeyReused) as reused:
        guard.begin("k-1", "POST /b sha256:2")
    assert reused.value.message == "idempotency key 'k-1' was used with a different request"
    assert reused.value.key == "k-1"


class ExpiringBetweenCalls(MemoryStore):
    """A store where the record that made ``add`` fail has expired by the ``get`` that follows, ``lapses`` times."""

    def __init__(self, clock: ManualClock, lapses: int) -> None:
        super().__init__(clock=clock)
        self.lapses = lapses
        self.adds = 0

    def add(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        self.adds += 1
        if self.lapses > 0:
            self.lapses -= 1
            super().set(key, b"someone else's claim", ttl=ttl)
            return False
        if super().get(key) == b"someone else's claim":
            super().delete(key)  # it has expired for good
        return super().add(key, value, ttl=ttl)

    def get(self, key: str) -> bytes | None:
        value = super().get(key)
        return None if value == b"someone else's claim" else value


def test_a_record_that_expires_between_the_failed_claim_and_the_read_is_claimed_again(clock: ManualClock) -> None:
    store = ExpiringBetweenCalls(clock, lapses=2)
    guard = IdempotencyGuard(store, clock=clock)
    assert isinstance(guard.begin("k", "fp"), Claim)
    assert store.adds == 3


def test_a_key_that_keeps_expiring_is_given_up_after_three_claims(clock: ManualClock) -> None:
    store = ExpiringBetweenCalls(clock, lapses=10)
    guard = IdempotencyGuard(store, clock=clock)
    with pytest.raises(StoreUnavailable) as caught:
        guard.begin("k", "fp")
    assert store.adds == 3
    error = caught.value
    assert (error.message, error.store, error.operation) == (
        "store memory unavailable during begin: the key kept expiring while it was claimed",
        store.name,
        "begin",
    )


@pytest.mark.parametrize("name", ["ttl", "lease", "retry_after"])
@pytest.mark.parametrize("value", [0, -1.0, True, "5"])
def test_each_setting_must_be_positive_seconds_and_says_which(name: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"^IdempotencyGuard: {name} must be a positive number of seconds, got "):
        IdempotencyGuard(MemoryStore(), **{name: value})  # type: ignore[arg-type]


def test_the_store_must_be_a_store() -> None:
    with pytest.raises(TypeError, match=r"^IdempotencyGuard: store must be a Store, got dict$"):
        IdempotencyGuard({})  # type: ignore[arg-type]


# -- records round-trip, whatever they hold ---------------------------------------------------------------------

texts = st.text(max_size=40)


@given(texts, texts, st.sampled_from(RecordState), texts, st.floats(0, 1e12), st.floats(0, 1e12), st.binary())
def test_any_record_round_trips(
    key: str, fingerprint: str, state: RecordState, owner: str, created: float, expires: float, result: bytes
) -> None:
    record = IdempotencyRecord(key, fingerprint, state, owner, created, expires, result)
    assert IdempotencyRecord.decode(record.encode()) == record


@given(
    st.integers(100, 599),
    st.lists(st.tuples(st.text(max_size=20), st.text(max_size=20)), max_size=5),
    st.binary(max_size=200) | st.just(b"line one\nline two\n"),
)
def test_any_stored_response_round_trips(status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    response = StoredResponse(status, tuple(headers), body)
    assert StoredResponse.decode(response.encode()) == response


# -- the key parser's edges ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "key"),
    [
        (' \t"a~b"\t ', "a~b"),  # optional white space is spaces and tabs; ~ is printable
        ("XkeyX", "XkeyX"),
        ('"say \\"hi\\" \\\\"', 'say "hi" \\'),
        ('"abc\\', None),  # a backslash with nothing after it
        ('"a\\Xb"', None),  # only \" and \\ are escapes
        ('"abc\\"', None),  # the closing quote escaped: unterminated
        ("\x0bkey", None),  # a vertical tab is not optional white space
        ("key\n", None),
    ],
)
def test_key_parser_edges(value: str, key: str | None) -> None:
    assert parse_idempotency_key(value) == key


# -- store_call: blocking stores in a worker thread, the others inline ----------------------------------------------


def test_store_call_runs_blocking_stores_in_a_worker_thread_and_others_inline(tmp_path: object) -> None:
    async def where(store: object) -> int:
        return await store_call(store, threading.get_ident)  # type: ignore[arg-type]

    here = threading.get_ident()
    assert anyio.run(where, MemoryStore()) == here
    sqlite = SQLiteStore(f"{tmp_path}/s.db")
    try:
        assert anyio.run(where, sqlite) != here
    finally:
        sqlite.close()


def test_a_renewed_claim_holds_the_key_for_another_lease(clock: ManualClock) -> None:
    store = MemoryStore(clock=clock)
    guard = IdempotencyGuard(store, lease=30.0, ttl=600.0, clock=clock)
    claim = guard.begin("long-job", "POST /jobs sha256:1")
    assert isinstance(claim, Claim)
    clock.advance(25)
    renewed = guard.renew(claim)
    assert renewed is not None
    assert renewed.key == claim.key
    record = _stored(store, "idempotency:long-job")
    first = IdempotencyRecord.decode(claim.record)
    assert (record.key, record.fingerprint, record.state, record.owner) == (
        "long-job",
        "POST /jobs sha256:1",
        RecordState.IN_FLIGHT,
        first.owner,
    )
    assert (record.created, record.expires) == (1000, 1055)
    assert renewed.record == record.encode()
    clock.advance(25)  # past the first lease, inside the renewed one: still held
    with pytest.raises(RequestInFlight):
        guard.begin("long-job", "POST /jobs sha256:1")
    assert not guard.complete(claim, b"stale")  # the old claim no longer matches
    assert guard.complete(renewed, b"done")
    assert _stored(store, "idempotency:long-job").result == b"done"


def test_a_lapsed_claim_is_not_renewed(clock: ManualClock) -> None:
    store = MemoryStore(clock=clock)
    guard = IdempotencyGuard(store, lease=30.0, clock=clock)
    claim = guard.begin("k", "fp")
    assert isinstance(claim, Claim)
    clock.advance(31)
    assert guard.renew(claim) is None
    assert store.get("idempotency:k") is None
    clock.advance(1)
    assert isinstance(guard.begin("k", "fp"), Claim)


def test_a_renewed_claim_still_lapses_one_lease_after_its_renewal(clock: ManualClock) -> None:
    """An executor that renewed and then died does not hold its key for ever."""
    guard = IdempotencyGuard(MemoryStore(clock=clock), lease=30.0, clock=clock)
    claim = guard.begin("k", "fp")
    assert isinstance(claim, Claim)
    clock.advance(20)
    assert guard.renew(claim) is not None
    clock.advance(29)
    with pytest.raises(RequestInFlight):
        guard.begin("k", "fp")
    clock.advance(2)
    assert isinstance(guard.begin("k", "fp"), Claim)
