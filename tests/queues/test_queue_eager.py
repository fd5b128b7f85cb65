"""Eager start of handler coroutines: no task when they never wait, the same behaviour as a task when they do."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from integration_kit.queues._eager import start_eagerly

var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="outer")


def test_a_coroutine_that_never_waits_runs_at_once_without_a_task() -> None:
    async def body() -> None:
        done: list[int] = []

        async def quick() -> None:
            done.append(1)

        assert start_eagerly(quick()) is None
        assert done == [1]

    asyncio.run(body())


def test_a_coroutine_that_waits_is_finished_by_a_task_in_its_own_context() -> None:
    async def body() -> None:
        gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        seen: list[str] = []

        async def handler() -> None:
            token = var.set("inner")  # as the SQLite inbox sets its connection around the handler
            try:
                seen.append(await gate)
                await asyncio.sleep(0)  # a bare yield, then another wait
                seen.append(var.get())
            finally:
                var.reset(token)  # only valid in the context the token was made in

        task = start_eagerly(handler())
        assert task is not None
        assert seen == []
        assert var.get() == "outer"  # the first step ran in a copy of the context
        gate.set_result("result")
        await task
        assert seen == ["result", "inner"]

    asyncio.run(body())


def test_cancelling_the_task_reaches_the_coroutine_where_it_waits() -> None:
    async def body() -> None:
        cleaned: list[str] = []

        async def handler() -> None:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cleaned.append("requeued")
                raise

        task = start_eagerly(handler())
        assert task is not None
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert cleaned == ["requeued"]

    asyncio.run(body())


def test_an_error_after_a_wait_is_the_tasks_and_before_it_the_callers() -> None:
    async def body() -> None:
        async def late() -> None:
            await asyncio.sleep(0)
            raise ValueError("late")

        async def early() -> None:
            raise KeyError("early")

        task = start_eagerly(late())
        assert task is not None
        with pytest.raises(ValueError, match="late"):
            await task
        with pytest.raises(KeyError):
            start_eagerly(early())

    asyncio.run(body())
