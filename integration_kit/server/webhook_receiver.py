"""The webhook receiver: a pure ASGI app that verifies, deduplicates, stores durably, and only then acknowledges.

Mount it in Starlette or FastAPI (``app.mount("/webhooks/github", receiver)``) or serve it alone with uvicorn.
For each request:

==============================================  ==========================================================
request                                          answer
==============================================  ==========================================================
not ``POST``                                     ``405``
body over the scheme's ``max_body_bytes``        ``413`` (the rest of the body is not read)
a header missing or malformed                    ``400`` (problem+json naming the header, never its value)
timestamp outside the tolerance, no signature    ``401``
matching an active secret
the inbox could not be written                   ``503`` (the sender retries; nothing was acknowledged)
a new event                                      ``200 {"status": "accepted"}`` after the inbox write
                                                 is durable
an event id already in the inbox                 ``200 {"status": "duplicate"}``; not stored or processed
                                                 again
==============================================  ==========================================================

Processing happens behind the inbox (:class:`~integration_kit.server.webhook_processor.WebhookProcessor`), never
while the sender waits, so the acknowledgement time is the verification plus one durable insert.
:attr:`WebhookReceiver.stats` counts every answer by outcome.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio.to_thread

from integration_kit.clock import Clock, WallClock
from integration_kit.errors import StoreUnavailable
from integration_kit.server.errors import (
    PayloadTooLarge,
    SignatureMalformed,
    SignatureMissing,
    WebhookVerificationError,
)
from integration_kit.server.inbox import Inbox, InboxEvent
from integration_kit.server.middleware import _problem, _read_body
from integration_kit.server.signatures import WebhookScheme

__all__ = ["KEPT_HEADERS", "WebhookReceiver"]

logger = logging.getLogger("integration_kit.webhooks")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: The headers kept with an event for its handler (none of them carries a secret or a signature).
KEPT_HEADERS = frozenset(
    {"content-type", "x-github-event", "x-github-hook-id", "webhook-timestamp", "user-agent", "x-event-type"}
)


class WebhookReceiver:
    """An ASGI app receiving the webhooks of one source, verified with ``scheme`` and stored in ``inbox``.

    ``source`` names the sender in the inbox and in :attr:`stats`; ``clock`` stamps arrival times (epoch seconds,
    the wall clock by default); ``kept_headers`` are stored with the event for its handler.
    """

    def __init__(
        self,
        scheme: WebhookScheme,
        inbox: Inbox,
        *,
        source: str = "webhooks",
        clock: Clock | None = None,
        kept_headers: frozenset[str] = KEPT_HEADERS,
    ) -> None:
        self.scheme = scheme
        self.inbox = inbox
        self.source = source
        self.clock: Clock = clock if clock is not None else WallClock()
        self.kept_headers = frozenset(h.lower() for h in kept_headers)
        self.stats: Counter[str] = Counter()
        self._commits = _GroupCommit(inbox, self.stats)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["method"] != "POST":
            self.stats["method_not_allowed"] += 1
            await _problem(send, 405, "Method Not Allowed", "webhooks are POSTed", [(b"allow", b"POST")])
            return
        body = await _read_body(receive, self.scheme.max_body_bytes)
        if body is None:
            self.stats["too_large"] += 1
            detail = f"the body passes {self.scheme.max_body_bytes} bytes"
            await _problem(send, 413, "Content Too Large", detail)
            return
        headers = _headers(scope)
        try:
            verified = self.scheme.verify(headers, body)
        except PayloadTooLarge as exc:
            self.stats["too_large"] += 1
            await _problem(send, 413, "Content Too Large", exc.message)
            return
        except WebhookVerificationError as exc:
            self.stats[f"rejected:{type(exc).__name__}"] += 1
            status = 400 if isinstance(exc, (SignatureMissing, SignatureMalformed)) else 401
            await _problem(send, status, "Webhook Verification Failed", exc.message)
            return
        meta = {k: v for k, v in headers.items() if k in self.kept_headers}
        event = InboxEvent(verified.id, self.source, self.clock.now(), body, meta=meta)
        try:
            stored = await self._commits.put(event)
        except StoreUnavailable as exc:
            self.stats["unavailable"] += 1
            logger.warning("webhook receiver %s: event %s not stored, answered 503: %s", self.source, event.id, exc)
            await _problem(
                send, 503, "Service Unavailable", "the inbox could not store the event", [(b"retry-after", b"5")]
            )
            return
        outcome = "accepted" if stored else "duplicate"
        self.stats[outcome] += 1
        payload = json.dumps({"status": outcome, "id": verified.id}).encode()
        response_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": response_headers})
        await send({"type": "http.response.body", "body": payload, "more_body": False})


class _GroupCommit:
    """Events arriving while a commit is running are written together by the next one (one fsync for all).

    Whoever holds the lock commits every event waiting at that moment; a request whose event was committed by
    another returns at once. Latency stays about two commit times; throughput grows with the batch.
    """

    def __init__(self, inbox: Inbox, stats: Counter[str]) -> None:
        self.inbox = inbox
        self.stats = stats
        self.waiting: list[_Slot] = []
        self._lock: anyio.Lock | None = None

    async def put(self, event: InboxEvent) -> bool:
        slot = _Slot(event)
        self.waiting.append(slot)
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            if not slot.done:
                batch, self.waiting = self.waiting, []
                self.stats["commits"] += 1
                error: StoreUnavailable | None = None
                try:
                    results = list(await anyio.to_thread.run_sync(self.inbox.put_many, [s.event for s in batch]))
                except StoreUnavailable as exc:
                    error = exc
                except Exception as exc:  # a bug, a broken contract: the sender is told to retry, nothing is lost
                    error = self._failed(f"raised {type(exc).__name__}", exc)
                else:
                    if len(results) != len(batch):
                        error = self._failed(f"answered {len(results)} times for {len(batch)} events", None)
                for i, waiting in enumerate(batch):  # every request of the batch is answered: none waits forever
                    waiting.result = False if error is not None else results[i]
                    waiting.error, waiting.done = error, True
        if slot.error is not None:
            raise slot.error
        return slot.result

    def _failed(self, what: str, cause: Exception | None) -> StoreUnavailable:
        """The error for an inbox whose ``put_many`` failed otherwise than by :class:`StoreUnavailable` (``what``
        it did; its exception is the ``__cause__``, its text never shown: it may hold a store's address): every
        request of the batch answers 503 (the sender retries), never "duplicate" for an event not stored."""
        name = getattr(self.inbox, "name", type(self.inbox).__name__)
        error = StoreUnavailable(f"put_many {what}", store=str(name), operation="put_many")
        error.__cause__ = cause
        return error


class _Slot:
    __slots__ = ("done", "error", "event", "result")

    def __init__(self, event: InboxEvent) -> None:
        self.event = event
        self.done = False
        self.result = False
        self.error: StoreUnavailable | None = None


def _headers(scope: Scope) -> dict[str, str]:
    """The request headers, names lowercased; a repeated header's values are joined with a space."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]} {value}" if name in headers else value
    return headers


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
