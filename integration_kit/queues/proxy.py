"""A fault-injecting TCP proxy on 127.0.0.1, for broker outages without stopping a shared broker.

Clients connect to the proxy's port instead of the broker's; the proxy forwards bytes both ways and, on command,
injects one of the faults a network gives a broker client:

- :meth:`FaultProxy.cut` closes every open connection at once (a broker restart, a failover); new connections
  are accepted again at once.
- :meth:`FaultProxy.refuse` cuts and then refuses new connections (the broker is down) until :meth:`heal`.
- :meth:`FaultProxy.blackhole` keeps connections open but forwards nothing (a partition: clients see timeouts).
- :meth:`FaultProxy.delay` adds latency to every chunk forwarded (a slow network).

It runs its own event loop in a daemon thread, so it keeps forwarding (or black-holing) whatever the test's loop
is doing, and it is driven from sync or async code alike. It listens on loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import TracebackType
from typing import Self

__all__ = ["FaultProxy"]

_CHUNK = 65536


class FaultProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target_host:target_port``; ``port`` 0 picks a free one (see :attr:`port`)."""

    def __init__(self, target_host: str, target_port: int, *, port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.port = port
        self.connections = 0  # accepted so far
        self._delay = 0.0
        self._blackhole = False
        self._refusing = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="FaultProxy", daemon=True)

    # -- lifecycle ----------------------------------------------------------------------------------------------

    def start(self) -> Self:
        """Start listening (returns once the port is bound); a started proxy is left as it is."""
        if self._thread.is_alive():
            return self
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=10)
        return self

    def close(self) -> None:
        """Stop listening, close every connection and the thread's loop."""
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    @property
    def address(self) -> tuple[str, int]:
        """Where clients connect: ``("127.0.0.1", port)``."""
        return ("127.0.0.1", self.port)

    # -- faults -------------------------------------------------------------------------------------------------

    def cut(self) -> None:
        """Close every open connection now; later connections are forwarded as usual."""
        self._call(self._close_all)

    def refuse(self) -> None:
        """Cut every connection and refuse new ones until :meth:`heal`."""
        self._refusing = True
        self.cut()

    def blackhole(self) -> None:
        """Stop forwarding bytes (both ways) on every connection, open or new, until :meth:`heal`."""
        self._blackhole = True

    def delay(self, seconds: float) -> None:
        """Delay every forwarded chunk by ``seconds`` (0 removes the delay)."""
        if seconds < 0:
            raise ValueError(f"FaultProxy.delay must be >= 0 seconds, got {seconds!r}")
        self._delay = seconds

    def heal(self) -> None:
        """Remove every fault: forward at full speed and accept connections again (cut ones stay closed)."""
        self._blackhole = False
        self._refusing = False
        self._delay = 0.0

    # -- the loop's side ----------------------------------------------------------------------------------------

    def _call(self, fn: object) -> None:
        async def run() -> None:
            fn()  # type: ignore[operator]

        asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        self._close_all()

    def _close_all(self) -> None:
        for writer in list(self._writers):
            transport = writer.transport
            if transport is not None:
                transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._refusing:
            writer.transport.abort()
            return
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True)
        for w in (writer, up_writer):
            self._writers.discard(w)
            w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while chunk := await reader.read(_CHUNK):
                while self._blackhole and not writer.is_closing():
                    await asyncio.sleep(0.01)  # hold the bytes: nothing passes until healed or cut
                if self._delay:
                    await asyncio.sleep(self._delay)
                if writer.is_closing():
                    break
                writer.write(chunk)
                await writer.drain()
        writer.transport.abort()
