"""The request messages of a client-streaming call, buffered so a retry can send them again (gRFC A6's buffer).

:class:`Replay` wraps the caller's request iterator (sync or async). Each attempt iterates :meth:`Replay.messages`:
first the messages buffered by earlier attempts, then new ones from the caller's iterator, each kept while the
buffer holds at most ``limit`` bytes (their serialized size). Once a message would pass the limit the buffer is
dropped and the call *commits*: the attempt goes on streaming, and a failure after that is not retried
(:attr:`Replay.committed`). The default limit is grpc-core's ``grpc.per_rpc_retry_buffer_size``, 256 KiB.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import Any

__all__ = ["BUFFER_LIMIT", "Replay"]

#: The default buffer per call (bytes): grpc-core's ``grpc.per_rpc_retry_buffer_size``.
BUFFER_LIMIT = 256 * 1024


class Replay:
    """Request messages from ``source`` (an iterable or async iterable), replayable up to ``limit`` bytes."""

    def __init__(self, source: Iterable[Any] | AsyncIterable[Any], limit: int = BUFFER_LIMIT) -> None:
        self._source: AsyncIterator[Any] = _aiter(source)
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
            if not self.committed:
                self._size += _size(message)
                if self._size > self.limit:
                    self.committed, self._buffer = True, []  # past the buffer: this attempt is the last
                else:
                    self._buffer.append(message)
            yield message


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
