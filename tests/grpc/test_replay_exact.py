"""``grpc.replay.Replay`` to the letter, pure (no gRPC call, no socket): the sync-only guard and its message; the
default limit (grpc-core's 256 KiB); each attempt's messages, the buffered ones first, then the rest of the source,
and a source never read again once it ended (async and sync); the size of a message (``ByteSize()``, the length of
bytes or text, else 0); the buffer kept while it holds at most ``limit`` bytes and dropped (committing) the moment
a message passes it, never buffering again; a committed call's failures not retried, an uncommitted one's left
as they were."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest

from integration_kit.grpc import replay as replay_module
from integration_kit.grpc.replay import BUFFER_LIMIT, Replay
from integration_kit.policies.outcome import Outcome, OutcomeKind

MESSAGE = "Replay: a sync channel needs an iterable of requests, not an async iterable"


class Once:
    """A sync iterator that counts the times it is asked again after it ended (``late``)."""

    def __init__(self, items: list[Any]) -> None:
        self.items = list(items)
        self.ended = False
        self.late = 0

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        if self.ended:
            self.late += 1
            raise StopIteration
        if not self.items:
            self.ended = True
            raise StopIteration
        return self.items.pop(0)


class AsyncOnce:
    """An async iterator that fails the test if it is asked again after it ended."""

    def __init__(self, items: list[Any]) -> None:
        self.items = list(items)
        self.ended = False

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        assert not self.ended, "the source was read after it ended"
        if not self.items:
            self.ended = True
            raise StopAsyncIteration
        return self.items.pop(0)


class Sized:
    def __init__(self, size: int) -> None:
        self.size = size

    def ByteSize(self) -> int:
        return self.size


class NotCallable:
    ByteSize = 7


async def collect(replay: Replay, most: int = 20) -> list[Any]:
    """The attempt's messages, at most ``most`` of them (a stream that never ends fails, not hangs)."""
    out: list[Any] = []
    async for m in replay.messages():
        out.append(m)
        if len(out) == most:
            break
    return out


def run(coro: Any) -> Any:
    async def main() -> Any:
        return await coro

    return anyio.run(main)


def test_defaults() -> None:
    assert BUFFER_LIMIT == 262144
    replay = Replay([])
    assert replay.limit == BUFFER_LIMIT
    assert replay.committed is False
    assert Replay([], 5).limit == 5


def test_sync_refuses_an_async_source_with_its_message() -> None:
    with pytest.raises(TypeError) as info:
        Replay(AsyncOnce([b"a"]), sync=True)
    assert str(info.value) == MESSAGE
    replay = Replay(AsyncOnce([b"a"]))  # the async channel takes it
    with pytest.raises(TypeError) as info:
        next(replay.iter_messages())
    assert str(info.value) == MESSAGE
    assert run(collect(replay)) == [b"a"]


def test_sync_takes_a_sync_source() -> None:
    replay = Replay([b"a", b"b"], sync=True)
    assert list(replay.iter_messages()) == [b"a", b"b"]
    assert list(replay.iter_messages()) == [b"a", b"b"]


@pytest.mark.parametrize("source", [Once, AsyncOnce])
def test_async_attempts_replay_the_buffer_then_the_rest(source: Any) -> None:
    src = source([b"a", b"bb", b"c"])
    replay = Replay(src, 100)

    async def attempts() -> list[list[Any]]:
        first = []
        async for m in replay.messages():
            first.append(m)
            if len(first) == 2:
                break
        second = await collect(replay)
        third = await collect(replay)
        return [first, second, third]

    assert run(attempts()) == [[b"a", b"bb"], [b"a", b"bb", b"c"], [b"a", b"bb", b"c"]]
    assert src.ended
    assert getattr(src, "late", 0) == 0
    assert replay.committed is False


def test_sync_attempts_replay_the_buffer_then_the_rest_and_end() -> None:
    src = Once([b"a", b"bb", b"c"])
    replay = Replay(src, 100, sync=True)
    first = []
    for m in replay.iter_messages():
        first.append(m)
        if len(first) == 2:
            break
    assert first == [b"a", b"bb"]
    assert list(replay.iter_messages()) == [b"a", b"bb", b"c"]
    assert list(replay.iter_messages()) == [b"a", b"bb", b"c"]
    late = src.late
    # ended: the async path does not ask the source again
    assert run(collect(replay)) == [b"a", b"bb", b"c"]
    assert src.late == late


def test_sync_source_ended_is_not_read_again_by_messages() -> None:
    src = Once([b"a"])
    replay = Replay(src, 100, sync=True)
    assert list(replay.iter_messages()) == [b"a"]
    assert src.ended
    assert run(collect(replay)) == [b"a"]
    assert src.late == 0


def test_size_of_a_message() -> None:
    size = replay_module._size
    assert size(Sized(12)) == 12
    assert type(size(Sized(True))) is int
    assert size(b"abcd") == 4
    assert size("abc") == 3
    assert size("é") == 1
    assert size(123) == 0
    assert size(object()) == 0
    assert size(NotCallable()) == 0


def test_buffer_kept_up_to_the_limit_exactly() -> None:
    replay = Replay(Once([b"aa", b"bbb", b"c"]), 6, sync=True)
    assert list(replay.iter_messages()) == [b"aa", b"bbb", b"c"]
    assert replay.committed is False  # 6 bytes: at the limit, kept
    assert replay._buffer == [b"aa", b"bbb", b"c"]
    assert replay._size == 6


def test_passing_the_limit_commits_and_drops_the_buffer() -> None:
    src = Once([b"aa", b"bbb", b"cc", b"d", b"e"])
    replay = Replay(src, 6, sync=True)
    out = []
    for m in replay.iter_messages():
        out.append(m)
        if m == b"cc":
            assert replay.committed is True
            assert replay._buffer == []
    assert out == [b"aa", b"bbb", b"cc", b"d", b"e"]  # the attempt goes on streaming
    assert replay.committed is True
    assert replay._buffer == []  # never buffers again
    assert replay._size == 7
    assert list(replay.iter_messages()) == []


def test_a_single_message_past_the_limit_commits_at_once() -> None:
    replay = Replay([Sized(11)], 10)
    assert len(run(collect(replay))) == 1
    assert replay.committed is True
    replay = Replay([Sized(10)], 10)
    assert len(run(collect(replay))) == 1
    assert replay.committed is False
    replay = Replay([b""], 0)
    assert run(collect(replay)) == [b""]
    assert replay.committed is False


def test_keep_returns_the_message_in_both_cases() -> None:
    replay = Replay([], 1)
    kept, passed = Sized(1), Sized(5)
    assert replay._keep(kept) is kept
    assert replay._keep(passed) is passed
    assert replay.committed is True
    again = Sized(0)
    assert replay._keep(again) is again
    assert replay._buffer == []


def test_failed_only_stops_retries_once_committed() -> None:
    outcome = Outcome(OutcomeKind.STATUS, status=14, should_retry=True)
    replay = Replay([], 1)
    assert replay.failed(outcome) is outcome
    replay.committed = True
    stopped = replay.failed(outcome)
    assert stopped == Outcome(OutcomeKind.STATUS, status=14, should_retry=False)
    assert stopped.should_retry is False
    assert outcome.should_retry is True


def test_a_reiterable_source_is_read_once_whichever_path_reads_it() -> None:
    """A list (not an iterator) is iterated once: what the sync path read is not read again by the async one."""
    replay = Replay([b"a", b"b", b"c"], 100)
    first = replay.iter_messages()
    assert next(first) == b"a"
    assert next(first) == b"b"
    assert run(collect(replay)) == [b"a", b"b", b"c"]
    assert list(replay.iter_messages()) == [b"a", b"b", b"c"]
