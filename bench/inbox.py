"""The transactional SQLite inbox with slow handlers: what its transaction spans decides the throughput.

    .venv/bin/python bench/inbox.py [messages] [handler seconds] [concurrency]

``messages`` (default 400) distinct messages go through ``SQLiteInbox.process`` with at most ``concurrency``
(default 16) at once, as the kit's ``Consumer`` would run them; each handler waits ``handler seconds`` (default
0.02) on its "downstream call", then writes one effect row. Side by side, in one run, on one SQLite file each:

- ``transaction="handler"``: the transaction spans the whole handler (the default);
- ``transaction="effect"``: only the handler's ``async with inbox.effect()`` block is the transaction.

The table gives messages per second and the ratio effect / handler (expected: close to ``concurrency``, since the
handler's wait dominates), and checks that every message's effect is in the database exactly once. No broker.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Literal

from integration_kit.queues.inbox import SQLiteInbox
from integration_kit.queues.message import Message


async def drain(path: Path, mode: Literal["handler", "effect"], messages: int, wait: float, concurrency: int) -> float:
    """Process ``messages`` messages with ``concurrency`` at once; return messages per second."""
    inbox = SQLiteInbox(path, transaction=mode)
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE effects (message_id TEXT NOT NULL)")
    db.commit()
    db.close()

    async def handler(message: Message) -> None:
        await asyncio.sleep(wait)  # the downstream call
        if mode == "effect":
            async with inbox.effect() as tx:
                tx.execute("INSERT INTO effects VALUES (?)", (message.message_id,))
        else:
            inbox.connection.execute("INSERT INTO effects VALUES (?)", (message.message_id,))

    gate = asyncio.Semaphore(concurrency)

    async def one(message: Message) -> None:
        async with gate:
            await inbox.process(message, handler)

    batch = [Message(f"m{i}".encode()) for i in range(messages)]
    start = time.perf_counter()
    await asyncio.gather(*(one(m) for m in batch))
    elapsed = time.perf_counter() - start
    inbox.close()
    with sqlite3.connect(path) as check:
        rows = check.execute("SELECT COUNT(*), COUNT(DISTINCT message_id) FROM effects").fetchone()
    if tuple(rows) != (messages, messages):
        raise SystemExit(f"{mode}: {rows[0]} effects for {rows[1]} messages, expected {messages} each")
    return messages / elapsed


def main(argv: list[str]) -> None:
    messages = int(argv[0]) if argv else 400
    wait = float(argv[1]) if len(argv) > 1 else 0.02
    concurrency = int(argv[2]) if len(argv) > 2 else 16
    with tempfile.TemporaryDirectory() as folder:
        handler = asyncio.run(drain(Path(folder) / "h.db", "handler", messages, wait, concurrency))
        effect = asyncio.run(drain(Path(folder) / "e.db", "effect", messages, wait, concurrency))
    print(f"{messages} messages, handlers waiting {wait * 1000:g} ms, concurrency {concurrency}")
    print(f"{'transaction':<12} {'messages/s':>12}")
    print(f"{'handler':<12} {handler:>12.0f}")
    print(f"{'effect':<12} {effect:>12.0f}")
    print(f"ratio effect / handler: {effect / handler:.1f}x (every effect applied exactly once in both)")


if __name__ == "__main__":
    main(sys.argv[1:])
