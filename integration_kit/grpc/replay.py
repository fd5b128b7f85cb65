"""The request messages of a client-streaming call, buffered so a retry can send them again (gRFC A6's buffer).

:class:`Replay` wraps the caller's request iterator (sync or async). Each attempt iterates :meth:`Replay.messages`
(on the async channel) or :meth:`Replay.iter_messages` (on the sync one, given a sync iterable):
first the messages buffered by earlier attempts, then new ones from the caller's iterator, each kept while the
buffer holds at most ``limit`` bytes (their serialized size). Once a message would pass the limit the buffer is
dropped and the call *commits*: the attempt goes on streaming, and a failure after that is not retried
(:attr:`Replay.committed`, :meth:`Replay.failed`). The default limit is grpc-core's
``grpc.per_rpc_retry_buffer_size``, 256 KiB.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import Any

from integration_kit.policies.outcome import Outcome

__all__ = ["BUFFER_LIMIT", "Replay"]

#: The default buffer per call (bytes): grpc-core's ``grpc.per_rpc_retry_buffer_size``.
BUFFER_LIMIT = 256 * 1024


class Replay:
    """Request messages from ``source`` (an iterable or async iterable), replayable up to ``limit`` bytes.

    ``sync=True`` (the sync channel's) requires a sync iterable: an async one raises ``TypeError`` here, before
    grpcio's request thread would swallow it."""

    def __init__(
        self, source: Iterable[Any] | AsyncIterable[Any], limit: int = BUFFER_LIMIT, *, sync: bool = False
    ) -> None:
        if sync and isinstance(source, AsyncIterable):
            raise TypeError("Replay: a sync channel needs an iterable of requests, not an async iterable")
        self._sync: Iterator[Any] | None = None if isinstance(source, AsyncIterable) else iter(source)
        self._source: AsyncIterator[Any] = _aiter(source if self._sync is None else self._sync)
        self._buffer: list[Any] = []
        self._size = 0
        self.limit = limit
        self.committed = False
        self._exhausted = False

    async def messages(self) -> AsyncIterator[Any]:
        """Every message of the call, from the first: the buffered ones, then the rest of the source."""
        for message in list(self._buffer):
            yield message
        while not self._exhausted:
            try:
                message = await anext(self._source)
            except StopAsyncIteration:
                self._exhausted = True
                return
            yield self._keep(message)

    def iter_messages(self) -> Iterator[Any]:
        """:meth:`messages` for a sync channel; ``TypeError`` when the source is an async iterable."""
        if self._sync is None:
            raise TypeError("Replay: a sync channel needs an iterable of requests, not an async iterable")
        yield from list(self._buffer)
        for message in self._sync:
            yield self._keep(message)
        self._exhausted = True

    def failed(self, outcome: Outcome) -> Outcome:
        """An attempt's failed ``outcome``, not to be retried once the call has committed."""
        return dataclasses.replace(outcome, should_retry=False) if self.committed else outcome

    def _keep(self, message: Any) -> Any:
        """Buffer ``message`` while the buffer holds at most ``limit`` bytes; past that, commit."""
        if not self.committed:
            self._size += _size(message)
            if self._size > self.limit:
                self.committed, self._buffer = True, []  # past the buffer: this attempt is the last
            else:
                self._buffer.append(message)
        return message


def _size(message: Any) -> int:
    size = getattr(message, "ByteSize", None)
    return int(size()) if callable(size) else len(message) if isinstance(message, bytes | str) else 0


async def _aiter(source: Iterable[Any] | AsyncIterable[Any]) -> AsyncIterator[Any]:
    if isinstance(source, AsyncIterable):
        async for item in source:
            yield item
    else:
        for item in source:
            yield item
