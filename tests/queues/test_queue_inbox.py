"""The transactional SQLite inbox on its own (no broker): what its transaction spans, and exactly-once effects."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from integration_kit.clock import ManualClock
from integration_kit.queues.inbox import SQLiteInbox, StoreInbox
from integration_kit.queues.message import Message
from integration_kit.server.errors import RequestInFlight
from integration_kit.server.idempotency import Claim, IdempotencyGuard
from integration_kit.stores import MemoryStore

pytestmark = pytest.mark.queues


def effects(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute("SELECT message_id FROM effects ORDER BY rowid")]


def make(path: Path, transaction: str = "effect") -> SQLiteInbox:
    inbox = SQLiteInbox(path, transaction=transaction)  # type: ignore[arg-type]
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS effects (message_id TEXT NOT NULL)")
    return inbox


async def gather_with_barrier(inbox: SQLiteInbox, messages: list[Message], parties: int) -> list[bool]:
    """Process ``messages`` concurrently with handlers that all wait for each other before writing."""
    barrier = asyncio.Barrier(parties)

    async def handler(message: Message) -> None:
        await asyncio.wait_for(barrier.wait(), 0.5)  # the slow downstream call: every handler in it at once
        if inbox.transaction == "effect":
            async with inbox.effect() as db:
                db.execute("INSERT INTO effects VALUES (?)", (message.message_id,))
        else:
            inbox.connection.execute("INSERT INTO effects VALUES (?)", (message.message_id,))

    return list(await asyncio.gather(*(inbox.process(m, handler) for m in messages)))


def test_effect_mode_runs_slow_handlers_concurrently(tmp_path: Path) -> None:
    inbox = make(tmp_path / "inbox.db")
    messages = [Message(f"m{i}".encode()) for i in range(8)]
    assert asyncio.run(gather_with_barrier(inbox, messages, 8)) == [True] * 8
    assert sorted(effects(tmp_path / "inbox.db")) == sorted(m.message_id for m in messages)
    assert all(inbox.seen(m.message_id) for m in messages)


def test_handler_mode_runs_one_handler_at_a_time(tmp_path: Path) -> None:
    inbox = make(tmp_path / "inbox.db", "handler")
    messages = [Message(b"a"), Message(b"b")]
    with pytest.raises(TimeoutError):  # the second handler waits for the first's transaction: never both at once
        asyncio.run(gather_with_barrier(inbox, messages, 2))
    assert effects(tmp_path / "inbox.db") == []  # the failed handler's write rolled back with its id
    assert not any(inbox.seen(m.message_id) for m in messages)


def test_two_deliveries_of_one_message_racing_apply_the_effect_once(tmp_path: Path) -> None:
    inbox = make(tmp_path / "inbox.db")
    message = Message(b"twice")
    ran = asyncio.run(gather_with_barrier(inbox, [message, message], 2))  # both pass the early check
    assert sorted(ran) == [False, True]
    assert effects(tmp_path / "inbox.db") == [message.message_id]


def test_a_recorded_message_skips_its_handler(tmp_path: Path) -> None:
    inbox = make(tmp_path / "inbox.db")
    message = Message(b"once")
    calls: list[str] = []

    async def handler(m: Message) -> None:
        calls.append(m.message_id)

    async def body() -> list[bool]:
        return [await inbox.process(message, handler), await inbox.process(message, handler)]

    assert asyncio.run(body()) == [True, False]
    assert calls == [message.message_id]  # no effect() call: the id was recorded when the handler returned


def test_a_failure_inside_the_effect_commits_nothing_and_the_next_attempt_runs(tmp_path: Path) -> None:
    inbox = make(tmp_path / "inbox.db")
    message = Message(b"flaky")
    attempts: list[int] = []

    async def handler(m: Message) -> None:
        attempts.append(1)
        async with inbox.effect() as db:
            db.execute("INSERT INTO effects VALUES (?)", (m.message_id,))
            if len(attempts) == 1:
                raise ConnectionError("failed after writing")

    async def body() -> bool:
        with pytest.raises(ConnectionError):
            await inbox.process(message, handler)
        assert effects(tmp_path / "inbox.db") == []
        assert not inbox.seen(message.message_id)
        return await inbox.process(message, handler)

    assert asyncio.run(body()) is True
    assert effects(tmp_path / "inbox.db") == [message.message_id]


def test_a_handler_catching_exceptions_cannot_swallow_the_duplicate(tmp_path: Path) -> None:
    inbox = make(tmp_path / "inbox.db")
    message = Message(b"dup")
    reached: list[str] = []

    async def handler(m: Message) -> None:
        await asyncio.sleep(0)  # let the other delivery pass the early check too
        try:
            async with inbox.effect() as db:
                db.execute("INSERT INTO effects VALUES (?)", (m.message_id,))
        except Exception:  # the point: a broad except does not hide the duplicate
            reached.append("swallowed")
        reached.append("after")

    async def body() -> list[bool]:
        return list(await asyncio.gather(inbox.process(message, handler), inbox.process(message, handler)))

    assert sorted(asyncio.run(body())) == [False, True]
    assert reached == ["after"]  # the duplicate's handler stopped at effect()
    assert effects(tmp_path / "inbox.db") == [message.message_id]


def test_effect_misuse_is_a_clear_error(tmp_path: Path) -> None:
    inbox = make(tmp_path / "inbox.db")

    async def outside() -> None:
        async with inbox.effect():
            pass

    with pytest.raises(RuntimeError, match="transaction='effect'"):
        asyncio.run(outside())

    async def twice(m: Message) -> None:
        async with inbox.effect():
            pass
        async with inbox.effect():
            pass

    with pytest.raises(RuntimeError, match="once per handler run"):
        asyncio.run(inbox.process(Message(b"x"), twice))
    with pytest.raises(ValueError, match="'handler' or 'effect'"):
        SQLiteInbox(tmp_path / "other.db", transaction="both")  # type: ignore[arg-type]
    handler_mode = make(tmp_path / "h.db", "handler")

    async def wrong_mode(m: Message) -> None:
        async with handler_mode.effect():
            pass

    with pytest.raises(RuntimeError, match="transaction='effect'"):
        asyncio.run(handler_mode.process(Message(b"y"), wrong_mode))


def test_a_store_inbox_keeps_its_claim_while_a_handler_runs_past_the_lease() -> None:
    inbox = StoreInbox(MemoryStore(), lease=0.6)  # renewed every 0.2 s
    message = Message(b"slow")
    runs: list[str] = []
    release = asyncio.Event()

    async def slow(m: Message) -> None:
        runs.append("first")
        await release.wait()

    async def second(m: Message) -> None:
        runs.append("second")

    async def body() -> None:
        first = asyncio.create_task(inbox.process(message, slow))
        await asyncio.sleep(1.2)  # twice the lease: without renewal the claim would have lapsed
        with pytest.raises(RequestInFlight):
            await inbox.process(message, second)
        release.set()
        assert await first is True
        assert await inbox.process(message, second) is False  # recorded: a duplicate now

    asyncio.run(body())
    assert runs == ["first"]


def test_renew_refuses_a_lapsed_claim() -> None:
    clock = ManualClock()
    store = MemoryStore(clock=clock)
    guard = IdempotencyGuard(store, lease=1.0, clock=clock)
    claim = guard.begin("k", "fp")
    assert isinstance(claim, Claim)
    clock.advance(0.9)
    renewed = guard.renew(claim)
    assert renewed is not None
    clock.advance(0.9)  # 1.8 s after the claim: alive only because it was renewed
    assert guard.renew(claim) is None  # the old claim is not the one stored any more
    with pytest.raises(RequestInFlight):
        guard.begin("k", "fp")
    clock.advance(1.1)  # past the renewed lease
    assert guard.renew(renewed) is None
    assert isinstance(guard.begin("k", "fp"), Claim)  # lapsed: another executor may claim it
