"""A WebSocket feed that reconnects without storms and resumes without gaps: :class:`ResilientWebSocket`.

An async driver of the :class:`~integration_kit.engine.call.CallEngine` over the ``websockets`` library's asyncio
client (frames, pings and the close handshake are the library's; this module never re-implements them)::

    async with ResilientWebSocket(config) as feed:
        await feed.send('{"op": "subscribe"}')    # queued, bounded, while disconnected
        async for message in feed:                # reconnects, resubscribes, resumes, drops duplicates
            ...

The stream is pulled: each ``__anext__`` reads the next message, and when the connection is gone it decides,
through :func:`~integration_kit.websocket.reconnect.decide_reconnect` (the same function the simulator uses),
whether to stop, fail or reconnect after a jittered wait; the handshake is one call of the engine (method
``CONNECT``), so its attempts are retried with backoff under the breaker and the retry budget, 401/403 are
permanent and 429/503 honour ``Retry-After``. After every handshake the ``resume`` request built from the last
sequence number delivered is sent (before any subscription, so the partner replays from there rather than from
its head), then the ``subscribe`` messages, then the messages queued while disconnected.

Time is read from the injected clock (events, staleness, backoff waits); the library's socket timeouts are given
in real seconds (:func:`~integration_kit.clock.real_seconds`). Secrets (the credential headers, secret query
values of the URL) never reach events, errors, reprs or the library's log records.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from types import TracebackType
from typing import Self
from urllib.parse import parse_qsl, urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConcurrencyError, ConnectionClosed

from integration_kit.clock import AsyncClock, SystemClock, real_seconds
from integration_kit.engine.call import CallEngine, Send, run_async
from integration_kit.events import Event, Hook, emit
from integration_kit.http.redact import secret_forms, secret_query_values
from integration_kit.policies.breaker import CircuitBreaker
from integration_kit.policies.budget import RetryBudget
from integration_kit.policies.outcome import Outcome, OutcomeKind
from integration_kit.websocket.config import Message, SequenceOf, WebSocketConfig
from integration_kit.websocket.errors import OutgoingQueueFull, StreamClosed
from integration_kit.websocket.events import (
    WsClosed,
    WsConnectAttempt,
    WsConnected,
    WsDisconnected,
    WsDuplicate,
    WsGap,
    WsMessage,
    WsReconnectScheduled,
    WsResync,
    WsStale,
)
from integration_kit.websocket.handshake import WireLogRedactor, outcome_for_failure
from integration_kit.websocket.reconnect import decide_reconnect
from integration_kit.websocket.sequence import SequenceTracker, SeqVerdict

__all__ = ["Resync", "ResilientWebSocket", "json_field"]

Resync = Callable[[int, int], Awaitable[Sequence[Message]]]
"""Fetches the messages missing after a gap: called with the first missing sequence number and the one that
arrived, it returns the messages in between (a snapshot fetched through the kit's HTTP client, see
:func:`~integration_kit.websocket.resync.http_resync`)."""

_STALE = object()


def json_field(name: str) -> SequenceOf:
    """A :data:`SequenceOf` reading the integer field ``name`` of a JSON object message (``None`` otherwise)."""

    def sequence_of(message: Message) -> int | None:
        try:
            value = json.loads(message)
        except ValueError:
            return None
        if isinstance(value, dict):
            seq = value.get(name)
            if isinstance(seq, int) and not isinstance(seq, bool):
                return seq
        return None

    return sequence_of


class ResilientWebSocket:
    """One WebSocket feed (see the module docstring); an async context manager and an async iterator of messages.

    ``clock`` (default :class:`~integration_kit.clock.SystemClock`) times events, staleness and waits; ``rng``
    (default unseeded) draws the jitter; ``hooks`` receive every event; ``resync`` fills gaps. Iteration ends
    after a clean close (1000, 1001) or :meth:`close`; it raises :class:`~integration_kit.websocket.StreamClosed`
    after a permanent close, and the engine's error (``AuthError``, ``RetriesExhausted``, ``CircuitOpenError``,
    ``BudgetExhausted``) when a reconnect fails.
    """

    def __init__(
        self,
        config: WebSocketConfig,
        *,
        clock: AsyncClock | None = None,
        rng: random.Random | None = None,
        hooks: Iterable[Hook] = (),
        resync: Resync | None = None,
    ) -> None:
        if not isinstance(config, WebSocketConfig):
            raise TypeError(f"expected a WebSocketConfig, got {type(config).__name__}")
        self.config = config
        self.clock: AsyncClock = clock if clock is not None else SystemClock()
        self.rng = rng or random.Random()
        self.resync = resync
        self.url = config.shown_url
        self.engine = CallEngine(
            name=config.name,
            retry=config.reconnect.retry_policy(),
            breaker=CircuitBreaker(config.breaker, name=config.name, clock=self.clock) if config.breaker else None,
            budget=RetryBudget(config.budget) if config.budget is not None else None,
            clock=self.clock,
            rng=self.rng,
            hooks=hooks,
        )
        self.hooks: list[Hook] = self.engine.hooks  # one list: add_hook reaches the engine's events and these
        sequence = config.sequence
        self._sequence_of: SequenceOf | None = json_field(sequence) if isinstance(sequence, str) else sequence
        self.tracker = SequenceTracker()
        self._conn: ClientConnection | None = None
        self._connections = 0
        self._attempt_no = 0
        self._up_since = 0.0
        self._down_since: float | None = None
        self._last_message = 0.0
        self._pending: deque[Message] = deque()
        self._outbox: deque[Message] = deque()
        self._room = asyncio.Event()
        self._done: BaseException | None = None  # StopAsyncIteration after a clean end, else the terminal error
        self._closing = False
        self._redactor = WireLogRedactor(config.secret_query_params)
        self._wire_logger = _wire_logger(config.name, self._redactor)
        self._redactor.secrets = tuple(secret_query_values(_query_pairs(config.url), config.secret_query_params))

    # -- public surface ---------------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether a connection is open now."""
        return self._conn is not None

    @property
    def unsent(self) -> int:
        """How many messages wait in the outgoing queue."""
        return len(self._outbox)

    def add_hook(self, hook: Hook) -> None:
        """Send every later event to ``hook`` as well (a :class:`~integration_kit.events.Recorder`, a logger)."""
        self.engine.add_hook(hook)

    async def send(self, message: Message) -> None:
        """Send ``message`` now if connected, else queue it (bounded by ``outgoing_limit``) for the next connection.

        With a full queue, ``outgoing="wait"`` waits for room, ``outgoing="fail"`` raises
        :class:`~integration_kit.websocket.OutgoingQueueFull`. A message whose send fails as the connection drops is
        queued again (it may be delivered twice: at least once, never silently dropped). Raises the stream's
        terminal error once it has failed, and :class:`~integration_kit.websocket.StreamClosed` once it has ended.
        """
        self._raise_if_ended()
        limit = self.config.outgoing_limit
        while True:
            # checked again after every wait for room: the queue may have been flushed by a new connection meanwhile,
            # and a message queued behind nothing while connected would wait for the next reconnect
            conn = self._conn
            if conn is not None and not self._outbox:
                try:
                    await conn.send(message)
                    return
                except ConnectionClosed:
                    pass
            if len(self._outbox) < limit:
                break
            if self.config.outgoing == "fail":
                raise OutgoingQueueFull(
                    f"outgoing queue full ({limit} messages) while disconnected",
                    limit=limit,
                    integration=self.config.name,
                )
            self._room.clear()
            await self._room.wait()
            self._raise_if_ended()
        self._outbox.append(message)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """End the stream with the close handshake (``code``, ``reason``); later iteration stops. Messages the
        partner sent that were not read yet are dropped (reading them lets the handshake finish at once)."""
        self._closing = True
        conn, self._conn = self._conn, None
        if self._done is None:
            self._done = StopAsyncIteration()
        self._room.set()
        if conn is not None:
            now = self.clock.now()
            self._emit(WsClosed(now, self.config.name, 0, self._connections, code, now - self._up_since))
            unread = asyncio.ensure_future(_discard(conn))
            try:
                await conn.close(code, reason)
            finally:
                unread.cancel()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Message:
        """The next message: connects or reconnects as needed, drops duplicates, fills gaps through ``resync``."""
        while True:
            if self._pending:
                return self._pending.popleft()
            self._raise_if_done()
            conn = self._conn
            if conn is None:
                await self._connect()
                continue
            try:
                message = await self._receive(conn)
            except ConnectionClosed as exc:
                if self._closing:
                    raise StopAsyncIteration from None
                frame = exc.rcvd or exc.sent
                await self._lost(frame.code if frame is not None else None, frame.reason if frame is not None else "")
                continue
            if message is _STALE:
                await self._stale(conn)
                continue
            assert isinstance(message, str | bytes)  # narrowing for mypy: _STALE is handled above
            if await self._deliverable(message):
                return message

    def __repr__(self) -> str:
        return f"ResilientWebSocket(name={self.config.name!r}, url={self.url!r}, connected={self.connected})"

    # -- connection lifecycle ---------------------------------------------------------------------------------

    async def _connect(self) -> None:
        """One handshake, through the engine; then resubscribe, resume and flush the outgoing queue."""
        self._attempt_no = 0
        try:
            outcome = await run_async(
                self.engine.call("CONNECT", self.url, idempotent=True), self._attempt, self.clock.asleep
            )
        except Exception as exc:
            self._finish(exc)
            raise
        conn = outcome.value
        assert isinstance(conn, ClientConnection)  # the successful attempt's value
        now = self.clock.now()
        self._connections += 1
        self._conn = conn
        self._up_since = self._last_message = now
        down_for = now - self._down_since if self._down_since is not None else 0.0
        self._emit(WsConnected(now, self.config.name, 0, self._connections, self.url, self._attempt_no, down_for))
        try:
            resume = self.config.resume
            if resume is not None and self.tracker.last is not None:
                request = resume(self.tracker.last)
                if request is not None:
                    await conn.send(request)
            for message in self.config.subscribe:
                await conn.send(message)
            while self._outbox:
                await conn.send(self._outbox[0])
                self._outbox.popleft()
                self._room.set()
        except ConnectionClosed:
            pass  # the next receive sees the close and reconnects; what was not sent stays queued

    async def _attempt(self, action: Send) -> Outcome:
        """One handshake attempt: the library's ``connect``, its failure turned into an outcome (one boundary)."""
        config = self.config
        self._attempt_no = action.attempt
        self._emit(WsConnectAttempt(self.clock.now(), config.name, 0, self._connections + 1, self.url, action.attempt))
        headers = self._headers()
        timeout = config.open_timeout if action.timeout is None else min(config.open_timeout, action.timeout)
        try:
            conn = await connect(
                config.url,
                additional_headers=headers,
                open_timeout=real_seconds(self.clock, timeout),
                ping_interval=config.ping_interval and real_seconds(self.clock, config.ping_interval),
                ping_timeout=config.ping_timeout and real_seconds(self.clock, config.ping_timeout),
                close_timeout=real_seconds(self.clock, config.close_timeout),
                max_size=config.max_size,
                logger=self._wire_logger,
            )
        except Exception as exc:  # one boundary: every failure of the handshake becomes an outcome
            return outcome_for_failure(exc)
        return Outcome(OutcomeKind.SUCCESS, value=conn)

    def _headers(self) -> dict[str, str]:
        """This handshake's credential headers: the env-named auth (read now) and the ``credentials`` callable."""
        headers: dict[str, str] = {}
        secrets: list[str] = list(self._redactor.secrets)
        if self.config.auth is not None:
            credential = self.config.auth.load()
            headers[credential.header] = credential.value.reveal()
            secrets.extend(secret_forms(credential.value))
        if self.config.credentials is not None:
            for name, value in self.config.credentials().items():
                headers[name] = value
                secrets.extend(secret_forms(value))
        self._redactor.secrets = tuple(sorted(set(secrets), key=len, reverse=True))
        return headers

    async def _receive(self, conn: ClientConnection) -> Message | object:
        """The next frame's message, or ``_STALE`` when none came within ``stale_after`` of the last one."""
        stale_after = self.config.stale_after
        if stale_after is None:
            return await conn.recv()
        left = stale_after - (self.clock.now() - self._last_message)
        try:
            async with asyncio.timeout(max(0.0, real_seconds(self.clock, left))):
                message = await conn.recv()
        except TimeoutError:
            return _STALE
        self._last_message = self.clock.now()
        return message

    async def _stale(self, conn: ClientConnection) -> None:
        """The socket is open but silent: report it, drop it without waiting for a close handshake, reconnect."""
        now = self.clock.now()
        self._emit(WsStale(now, self.config.name, 0, self._connections, now - self._last_message))
        conn.transport.abort()
        await self._lost(None, "stale", verdict="stale")

    async def _lost(self, code: int | None, reason: str, *, verdict: str | None = None) -> None:
        """The connection is gone: report it, then stop, fail, or wait the jittered delay before reconnecting."""
        now = self.clock.now()
        self._conn = None
        self._down_since = now
        decision = decide_reconnect(self.config.reconnect, None if verdict == "stale" else code, self.rng)
        shown = verdict or ("reconnect" if decision.reconnect else decision.reason)
        self._emit(
            WsDisconnected(now, self.config.name, 0, self._connections, code, reason, shown, now - self._up_since)
        )
        if not decision.reconnect:
            if decision.reason == "clean":
                self._finish(StopAsyncIteration())
                raise StopAsyncIteration
            error = StreamClosed(
                f"the partner closed the stream with code {code}",
                code=code,
                reason=reason,
                unsent=len(self._outbox),
                integration=self.config.name,
                url=self.url,
            )
            self._finish(error)
            raise error
        self._emit(WsReconnectScheduled(now, self.config.name, 0, self._connections, decision.delay, shown))
        await self.clock.asleep(decision.delay)

    async def _deliverable(self, message: Message) -> bool:
        """Judge ``message``'s sequence number: drop a duplicate, fill a gap through ``resync``; report the rest."""
        sequence_of = self._sequence_of
        seq = sequence_of(message) if sequence_of is not None else None
        if seq is not None:
            before = self.tracker.last
            verdict = self.tracker.observe(seq)
            if verdict is SeqVerdict.DUPLICATE:
                self._emit(WsDuplicate(self.clock.now(), self.config.name, 0, self._connections, seq))
                return False
            if verdict is SeqVerdict.GAP and before is not None:
                self._emit(WsGap(self.clock.now(), self.config.name, 0, self._connections, before + 1, seq))
                if self.resync is not None:
                    missing = list(await self.resync(before + 1, seq))
                    self._emit(
                        WsResync(
                            self.clock.now(), self.config.name, 0, self._connections, before + 1, seq, len(missing)
                        )
                    )
                    for filler in missing:
                        self._report(filler, sequence_of(filler) if sequence_of is not None else None)
                    self._pending.extend(missing)
                    self._pending.append(message)
                    self._report(message, seq)
                    return False
        self._report(message, seq)
        return True

    def _report(self, message: Message, seq: int | None) -> None:
        if self.hooks:
            self._emit(WsMessage(self.clock.now(), self.config.name, 0, self._connections, seq, len(message)))

    def _emit(self, event: Event) -> None:
        if self.hooks:
            emit(self.hooks, event)

    def _finish(self, error: BaseException) -> None:
        if self._done is None:
            self._done = error
        self._room.set()

    def _raise_if_ended(self) -> None:
        """For :meth:`send`: the terminal error, or :class:`StreamClosed` after a clean end (never
        ``StopAsyncIteration``, which means something only to an ``async for``)."""
        done = self._done
        if isinstance(done, StopAsyncIteration):
            raise StreamClosed(
                "send() on a stream that has ended",
                code=None,
                reason="ended",
                unsent=len(self._outbox),
                integration=self.config.name,
                url=self.url,
            )
        self._raise_if_done()

    def _raise_if_done(self) -> None:
        done = self._done
        if done is not None:
            raise done


async def _discard(conn: ClientConnection) -> None:
    """Read and drop what the partner sent that nobody will read now: the library stops reading at 16 unread
    frames, and then never sees the partner's close frame, so ``close()`` would wait all of ``close_timeout`` for it
    (``websockets`` issue 1555). Another task already waiting in ``recv()`` means nothing is unread."""
    with contextlib.suppress(ConnectionClosed, ConcurrencyError):
        while True:
            await conn.recv()


def _wire_logger(name: str, redactor: WireLogRedactor) -> logging.Logger:
    """The logger handed to ``websockets`` for this stream, with ``redactor`` masking its records' secrets."""
    logger = logging.getLogger(f"integration_kit.websocket.wire.{name}")
    for old in [f for f in logger.filters if isinstance(f, WireLogRedactor)]:
        logger.removeFilter(old)
    logger.addFilter(redactor)
    return logger


def _query_pairs(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)
