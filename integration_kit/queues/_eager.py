"""Eager start: run a coroutine at once, and give it a task only if it has to wait (Python 3.12's eager tasks).

The consumer starts one handler per delivery. Most handlers that do their work synchronously (a SQLite write
through the transactional inbox, a computation) finish without ever waiting; a task for each costs more than the
handler itself (creating it, a turn of the event loop, a done callback). :func:`start_eagerly` runs the coroutine's
first step in a copy of the current context, as a task would; if the coroutine finishes there, no task is made;
if it waits on a future, a task takes over from that very point, in the same context, and the future's result or
a cancellation reaches the coroutine exactly as if the task had run it from the start (``asyncio.Task`` only ever
sends ``None`` into a coroutine, or throws the cancellation).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine, Generator
from typing import Any

__all__ = ["start_eagerly"]


def start_eagerly(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
    """Run ``coro`` until it first waits; return the task that finishes it, or ``None`` if it already finished.

    Must be called from a running event loop. An exception raised by the first step propagates to the caller.
    """
    context = contextvars.copy_context()
    try:
        yielded = context.run(coro.send, None)
    except StopIteration:
        return None
    return asyncio.get_running_loop().create_task(_finish(_Rest(coro, yielded)), context=context)


class _Rest:
    """The rest of a started coroutine, awaitable once: first the future it waits on, then its own steps."""

    __slots__ = ("coro", "yielded")

    def __init__(self, coro: Coroutine[Any, Any, None], yielded: Any) -> None:
        self.coro = coro
        self.yielded = yielded

    def __await__(self) -> Generator[Any, None, None]:
        coro, yielded = self.coro, self.yielded
        while True:
            try:
                yield yielded  # the task waits on what the coroutine waits on
            except (asyncio.CancelledError, Exception) as exc:  # thrown in by the task: the coroutine's to handle
                try:
                    yielded = coro.throw(exc)
                except StopIteration:
                    return
                continue
            try:
                yielded = coro.send(None)
            except StopIteration:
                return


async def _finish(rest: _Rest) -> None:
    await rest
