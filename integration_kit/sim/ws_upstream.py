"""The live flaky WebSocket upstream: a ``websockets`` server on 127.0.0.1 playing a sequenced feed with faults.

A feed numbers its messages from 1 at ``rate`` per second from the moment the upstream starts, whether or not a
client listens (message ``n`` is due ``n / rate`` seconds in), so messages sent while a client is away are lost to
it unless it resumes. Each message is the JSON object ``{"seq": n, "t": <due time>, "price": <float>}``.

The protocol a client speaks (text JSON frames):

- ``{"op": "resume", "after": n}``: the next message sent will be ``n + 1`` (when ``resume`` is on; else ignored);
- ``{"op": "subscribe"}``: start sending, from the current head unless a resume came first.

Faults, scripted per handshake and per connection in the order they arrive (:class:`FeedScript`):

- ``refusals``: the first handshakes are answered with these HTTP statuses instead of the upgrade (401, 503, a
  429 or 503 with ``Retry-After: retry_after``); a ``token`` makes any handshake without ``Authorization: Bearer
  <token>`` a 401;
- ``connections``: the Nth accepted connection follows the Nth :class:`ConnectionFault`: after ``after`` messages
  it closes with ``code`` (``None``: the TCP connection is aborted with no close frame, 1006 at the client), or
  ``stall`` (``True``: it stops sending but stays open, answering pings: a silent socket only staleness catches);
- :meth:`FlakyFeed.restart` closes every open connection with 1012 (service restart) at once, and can keep the
  server "down" for a while: handshakes then get 503 without ``Retry-After`` (one listening socket cannot refuse
  TCP connections for a while, so the simulator's connect error becomes a 503 here; both are transient to the
  client);
- ``accept_rate``: at most this many handshakes are accepted per second; the rest get 503 (with
  ``Retry-After: retry_after`` when ``retry_after`` is set).

:meth:`FlakyFeed.stats` says what the upstream saw: handshake times (for the reconnect herd), refusals by status,
connections accepted, and messages sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

__all__ = ["ConnectionFault", "FeedScript", "FeedStats", "FlakyFeed"]


@dataclass(frozen=True, slots=True)
class ConnectionFault:
    """What one accepted connection does after sending ``after`` messages: close with ``code`` (``None``: abort the
    TCP connection, no close frame); with ``stall=True``, fall silent while staying open (pings still answered);
    with ``freeze=True``, stop reading too, so pings go unanswered (a dead peer behind a live TCP connection)."""

    after: int
    code: int | None = 1006
    stall: bool = False
    freeze: bool = False


@dataclass(frozen=True, slots=True)
class FeedScript:
    """The upstream's scenario: feed ``rate`` (messages per second), ``resume`` support, scripted handshake
    ``refusals`` (statuses) with ``retry_after`` seconds on 429/503 (``None``: no header), at most ``accept_rate``
    handshakes accepted per second (``None``: no limit), a required bearer ``token`` (``None``: none), and the
    faults of the first ``connections``."""

    rate: float = 100.0
    resume: bool = True
    refusals: tuple[int, ...] = ()
    retry_after: int | None = 1
    accept_rate: float | None = None
    token: str | None = field(default=None, repr=False)
    connections: tuple[ConnectionFault, ...] = ()


@dataclass(frozen=True, slots=True)
class FeedStats:
    """What the upstream saw: ``handshakes`` (seconds since start, one per upgrade request), ``refused`` by status,
    ``accepted`` connections, ``sent`` messages, the last sequence number due (``head``), the client messages
    ``received`` (text, in order) and the close codes clients sent (``client_closes``; ``None``: no close frame)."""

    handshakes: tuple[float, ...]
    refused: dict[int, int]
    accepted: int
    sent: int
    head: int
    received: tuple[str, ...]
    client_closes: tuple[int | None, ...]


class FlakyFeed:
    """The upstream, served on its own thread and event loop: ``with FlakyFeed(script) as feed: feed.url``.

    ``close_timeout`` bounds each close handshake the server starts, at shutdown too: a connection frozen by
    ``ConnectionFault(freeze=True)`` never answers it, so leaving the block waits that long (``websockets``'
    default, 10 s, unless given)."""

    def __init__(
        self, script: FeedScript | None = None, *, host: str = "127.0.0.1", port: int = 0, close_timeout: float = 10.0
    ) -> None:
        self.script = script or FeedScript()
        self._close_timeout = close_timeout
        self._host = host
        self._port = port
        self._start = time.monotonic()
        self._lock = threading.Lock()
        self._handshakes: list[float] = []
        self._refused: dict[int, int] = {}
        self._accepted = 0
        self._sent = 0
        self._received: list[str] = []
        self._client_closes: list[int | None] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._down_until = 0.0
        self._accepted_in: dict[int, int] = {}
        self._stop: asyncio.Event | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:<port>/feed``."""
        return f"ws://{self._host}:{self.port}/feed"

    def head(self) -> int:
        """The last sequence number due now."""
        return int((time.monotonic() - self._start) * self.script.rate)

    def stats(self) -> FeedStats:
        """A snapshot of what the upstream saw so far."""
        with self._lock:
            return FeedStats(
                tuple(self._handshakes),
                dict(self._refused),
                self._accepted,
                self._sent,
                self.head(),
                tuple(self._received),
                tuple(self._client_closes),
            )

    def restart(self, code: int = 1012, reason: str = "service restart", *, down_for: float = 0.0) -> None:
        """Close every open connection at once with ``code`` (1012: service restart), as a deploy would; for
        ``down_for`` seconds after, handshakes are refused with 503."""
        with self._lock:
            self._down_until = time.monotonic() + down_for
        loop, server = self._loop, self._server
        if loop is None or server is None:
            raise RuntimeError("FlakyFeed.restart: the upstream is not running")
        for conn in list(server.connections):
            asyncio.run_coroutine_threadsafe(conn.close(code, reason), loop)

    def __enter__(self) -> FlakyFeed:
        self._thread = threading.Thread(target=self._run, name="flaky-websocket-feed", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("FlakyFeed did not start within 10 s")
        return self

    def __exit__(self, *exc: object) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(10)

    # -- the server -------------------------------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        logger = logging.getLogger("integration_kit.sim.ws_upstream")
        logger.addFilter(_Masking(self.script.token))
        async with serve(
            self._handle,
            self._host,
            self._port,
            process_request=self._process_request,
            logger=logger,
            close_timeout=self._close_timeout,
        ) as server:
            self._server = server
            self.port = next(iter(server.sockets)).getsockname()[1]
            self._start = time.monotonic()
            self._ready.set()
            await self._stop.wait()

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        script = self.script
        now = time.monotonic()
        with self._lock:
            self._handshakes.append(now - self._start)
            index = len(self._handshakes) - 1
            down = now < self._down_until
        status: int | None = script.refusals[index] if index < len(script.refusals) else None
        if status is None and down:
            return self._refuse(connection, 503, hint=False)
        if status is None and script.accept_rate is not None:
            second = int(now - self._start)
            with self._lock:
                admitted = self._accepted_in.get(second, 0)
                if admitted >= script.accept_rate:
                    status = 503
                else:
                    self._accepted_in[second] = admitted + 1
        if (
            status is None
            and script.token is not None
            and request.headers.get("Authorization") != f"Bearer {script.token}"
        ):
            status = 401
        if status is None:
            return None
        return self._refuse(connection, status, hint=True)

    def _refuse(self, connection: ServerConnection, status: int, *, hint: bool) -> Response:
        with self._lock:
            self._refused[status] = self._refused.get(status, 0) + 1
        response = connection.respond(status, f"refused: {status}\n")
        if hint and status in (429, 503) and self.script.retry_after is not None:
            response.headers["Retry-After"] = str(self.script.retry_after)
        return response

    async def _handle(self, conn: ServerConnection) -> None:
        with self._lock:
            fault = self.script.connections[self._accepted] if self._accepted < len(self.script.connections) else None
            self._accepted += 1
        cursor: list[int | None] = [None]
        started = asyncio.Event()
        sender = asyncio.create_task(self._send(conn, cursor, started, fault))
        try:
            async for raw in conn:
                with self._lock:
                    self._received.append(raw if isinstance(raw, str) else raw.decode(errors="replace"))
                request = _parse(raw)
                op = request.get("op")
                if op == "resume" and self.script.resume and isinstance(request.get("after"), int):
                    cursor[0] = request["after"] + 1
                elif op == "subscribe":
                    started.set()
        except ConnectionClosed:
            pass
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            rcvd = conn.protocol.close_rcvd
            with self._lock:
                self._client_closes.append(rcvd.code if rcvd is not None else None)

    async def _send(
        self, conn: ServerConnection, cursor: list[int | None], started: asyncio.Event, fault: ConnectionFault | None
    ) -> None:
        await started.wait()
        rate = self.script.rate
        sent_here = 0
        next_seq = cursor[0] if cursor[0] is not None else self.head() + 1
        with contextlib.suppress(ConnectionClosed):
            while True:
                due = self._start + next_seq / rate
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if fault is not None and sent_here >= fault.after:
                    await self._fault(conn, fault)
                    return
                await conn.send(
                    json.dumps({"seq": next_seq, "t": round(next_seq / rate, 6), "price": _price(next_seq)})
                )
                next_seq += 1
                sent_here += 1
                with self._lock:
                    self._sent += 1

    async def _fault(self, conn: ServerConnection, fault: ConnectionFault) -> None:
        if fault.freeze:
            conn.transport.pause_reading()  # pings pile up unread: the client's keepalive must notice
            await asyncio.Event().wait()
        elif fault.stall:
            await asyncio.Event().wait()  # silent, open, still answering pings, until the client goes
        elif fault.code is None or fault.code == 1006:
            conn.transport.abort()
        else:
            await conn.close(fault.code, "scripted close")


class _Masking(logging.Filter):
    """Masks the feed's token, credential headers and secret-looking query values in the server's DEBUG trace of
    the handshakes it received (the simulator may not import the HTTP driver's redaction)."""

    def __init__(self, token: str | None) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = _SECRET_HEADER.sub(r"\1***", _SECRET_QUERY.sub(r"\1***", message))
        if self.token:
            masked = masked.replace(self.token, "***")
        if masked != message:
            record.msg, record.args = masked, ()
        return True


_SECRET_QUERY = re.compile(r"([?&;][^=&\s]*(?:token|key|secret|sig|password|auth|session)[^=&\s]*=)[^&\s#]*", re.I)
_SECRET_HEADER = re.compile(r"^(< (?:Authorization|Cookie|X-Api-Key|Proxy-Authorization): ).*$", re.I)


def _parse(raw: str | bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _price(seq: int) -> float:
    """A deterministic price series: a slow saw around 100."""
    return round(100.0 + (seq % 200) / 100.0, 2)
