"""``IdempotencyMiddleware``: the idempotency guard as pure ASGI middleware (Starlette, FastAPI).

See :mod:`integration_kit.server.idempotency` for the semantics (the table of answers, the lease window).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from typing import Any, TypeVar

from integration_kit.clock import Clock
from integration_kit.errors import StoreUnavailable
from integration_kit.server.errors import IdempotencyKeyReused, RequestInFlight
from integration_kit.server.idempotency import (
    DEFAULT_LEASE,
    DEFAULT_TTL,
    REPLAYED_HEADER,
    Claim,
    IdempotencyGuard,
    IdempotencyRecord,
    StoredResponse,
    parse_idempotency_key,
    request_fingerprint,
    store_call,
)
from integration_kit.stores.base import Store

__all__ = ["IdempotencyMiddleware", "KeyScope", "credential_scope"]

_R = TypeVar("_R")

ASGIApp = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[MutableMapping[str, Any]]],
        Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ],
    Awaitable[None],
]


_UNSTORED_HEADERS = frozenset({"connection", "date", "keep-alive", "server", "set-cookie", "transfer-encoding"})

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: Who is calling, from the ASGI scope: a string naming the caller (hashed before use), or ``None`` for anonymous.
KeyScope = Callable[[Scope], "str | bytes | None"]


def credential_scope(scope: Scope) -> bytes | None:
    """The default :data:`KeyScope`: the request's ``Authorization`` header value, or ``None`` when it has none."""
    values = [v for n, v in scope.get("headers", ()) if n.lower() == b"authorization"]
    return b"\n".join(values) if values else None


class _Disconnected(Exception):
    """The client went away before its request body arrived whole."""


class IdempotencyMiddleware:
    """Pure ASGI middleware that gives ``methods`` requests carrying an ``Idempotency-Key`` exactly-once effect.

    Works with any ASGI app (Starlette: ``Middleware(IdempotencyMiddleware, store=...)``; FastAPI:
    ``app.add_middleware(IdempotencyMiddleware, store=...)``). ``required`` makes a missing key a 400. The request
    body is buffered to fingerprint it, and refused with 413 beyond ``max_body_bytes``; the response is passed
    through as it streams and buffered up to ``max_body_bytes`` to be stored. A response larger than that is
    not stored: its key then answers 409 without ``Retry-After`` until the record expires, since replaying a
    truncated body would be wrong and executing again would break exactly-once.

    Errors are ``application/problem+json`` (RFC 9457). If the store is unreachable the request is not executed
    (503), because exactly-once could not be promised. A request whose body did not arrive whole (the client
    disconnected before ``Content-Length`` bytes, ``http.disconnect``) is never executed and claims nothing, so
    the client's retry with the whole body executes normally.

    **Keys are scoped to the caller.** ``key_scope`` is given the ASGI scope and names the caller (a string or
    bytes, or ``None`` for an anonymous request); the SHA-256 of that name is part of the stored key, so two
    callers using the same key never see each other's requests or responses (the IETF draft lets a server scope
    keys; Stripe scopes them to the account). The default, :func:`credential_scope`, is the ``Authorization``
    header value when there is one. Pass a callable reading your own authentication (for example
    ``lambda scope: scope["user"].id``, or a tenant header your gateway sets) to scope by account rather than by
    credential, so a rotated token keeps its keys; ``key_scope=None`` shares keys between all callers (only for a
    single trusted caller). Anonymous requests share one scope.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        store: Store,
        methods: Collection[str] = ("POST", "PATCH"),
        required: bool = False,
        ttl: float = DEFAULT_TTL,
        lease: float = DEFAULT_LEASE,
        max_body_bytes: int = 1024 * 1024,
        header: str = "Idempotency-Key",
        retry_after: float = 1.0,
        clock: Clock | None = None,
        key_scope: KeyScope | None = credential_scope,
    ) -> None:
        if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int) or max_body_bytes < 0:
            raise ValueError(f"IdempotencyMiddleware: max_body_bytes must be an int >= 0, got {max_body_bytes!r}")
        self.app = app
        self.guard = IdempotencyGuard(store, ttl=ttl, lease=lease, retry_after=retry_after, clock=clock)
        self.methods = frozenset(m.upper() for m in methods)
        self.required = required
        self.max_body_bytes = max_body_bytes
        self.header = header.lower().encode("latin-1")
        self.key_scope = key_scope

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection event."""
        if scope["type"] != "http" or scope["method"] not in self.methods:
            await self.app(scope, receive, send)
            return
        values = [v for n, v in scope["headers"] if n.lower() == self.header]
        if not values and not self.required:
            await self.app(scope, receive, send)
            return
        key = parse_idempotency_key(values[0].decode("latin-1")) if len(values) == 1 else None
        if key is None:
            detail = "expected one quoted string or token of 1-255 characters" if values else "this request needs one"
            await _problem(send, 400, "Idempotency-Key missing or invalid", detail)
            return
        await self._keyed(scope, receive, send, key)

    async def _keyed(self, scope: Scope, receive: Receive, send: Send, key: str) -> None:
        """Read the whole body, then claim, replay or refuse ``key`` for this caller."""
        try:
            body = await _read_body(receive, self.max_body_bytes)
        except _Disconnected:
            return  # a partial body is never executed; nothing was claimed, and nobody is left to answer
        if body is None:
            await _problem(send, 413, "Request body too large", f"the limit is {self.max_body_bytes} bytes")
            return
        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        fingerprint = request_fingerprint(scope["method"], target.decode("latin-1"), body)
        try:
            begun = await store_call(self.guard.store, self.guard.begin, self._scoped(scope, key), fingerprint)
        except RequestInFlight as exc:
            retry = str(max(1, round(exc.retry_after)))
            detail = f"a request with idempotency key {key!r} is in flight"  # the caller's key, not the scoped one
            await _problem(send, 409, "Request in flight", detail, [(b"retry-after", retry.encode())])
            return
        except IdempotencyKeyReused:
            await _problem(send, 422, "Idempotency-Key reused", f"key {key!r} was used with a different request")
            return
        except StoreUnavailable:
            await _problem(send, 503, "Idempotency store unavailable", "retry later", [(b"retry-after", b"1")])
            return
        if isinstance(begun, IdempotencyRecord):
            await self._replay(begun, send)
            return
        await self._execute(scope, receive, send, body, begun)

    def _scoped(self, scope: Scope, key: str) -> str:
        """``<sha256 of the caller>/<key>``, or ``-/<key>`` for an anonymous caller: the first ``/`` separates them."""
        caller = self.key_scope(scope) if self.key_scope is not None else None
        if caller is None:
            return "-/" + key
        name = caller.encode() if isinstance(caller, str) else caller
        return hashlib.sha256(name).hexdigest() + "/" + key

    async def _replay(self, record: IdempotencyRecord, send: Send) -> None:
        if not record.result:  # completed, but its response was too large to store
            await _problem(send, 409, "Response not replayable", "the original response was too large to store")
            return
        response = StoredResponse.decode(record.result)
        headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in response.headers]
        headers.append((REPLAYED_HEADER.encode(), b"true"))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body, "more_body": False})

    async def _execute(self, scope: Scope, receive: Receive, send: Send, body: bytes, claim: Claim) -> None:
        guard = self.guard
        replayed_body = False

        async def replay_receive() -> Message:
            nonlocal replayed_body
            if not replayed_body:
                replayed_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def store_result(result: bytes) -> None:
            with contextlib.suppress(StoreUnavailable):  # unstored, the claim lapses after the lease
                await store_call(guard.store, guard.complete, claim, result)

        recorder = _ResponseRecorder(send, store_result, self.max_body_bytes)
        try:
            await self.app(scope, replay_receive, recorder.send)
        finally:
            if not recorder.finished:
                with contextlib.suppress(StoreUnavailable):  # unreleased, the claim lapses after the lease
                    await store_call(guard.store, guard.release, claim)


class _ResponseRecorder:
    """Passes an ASGI response through while keeping up to ``limit`` body bytes, and stores it at the end.

    The result is stored before the last chunk is sent on, so a client that has its answer can only get replays.
    An empty result marks a response too large to store.
    """

    def __init__(self, send: Send, store: Callable[[bytes], Awaitable[None]], limit: int) -> None:
        self._send = send
        self._store = store
        self._limit = limit
        self._status = 0
        self._headers: list[tuple[str, str]] = []
        self._chunks: list[bytes] | None = []
        self._size = 0
        self.finished = False

    async def send(self, message: Message) -> None:
        """Record ``message`` and send it on."""
        if message["type"] == "http.response.start":
            self._status = message["status"]
            for name, value in message.get("headers", ()):
                lower = name.decode("latin-1").lower()
                if lower not in _UNSTORED_HEADERS:
                    self._headers.append((lower, value.decode("latin-1")))
        elif message["type"] == "http.response.body":
            chunk = message.get("body", b"")
            self._size += len(chunk)
            if self._chunks is not None:
                self._chunks = [*self._chunks, chunk] if self._size <= self._limit else None
            if not message.get("more_body", False):
                self.finished = True
                await self._store(self._result())
        await self._send(message)

    def _result(self) -> bytes:
        if self._chunks is None:
            return b""
        return StoredResponse(self._status, tuple(self._headers), b"".join(self._chunks)).encode()


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or ``None`` once it passes ``limit`` bytes; raises ``_Disconnected`` if cut short."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(parts)


async def _problem(
    send: Send, status: int, title: str, detail: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Send an RFC 9457 problem response."""
    body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail}).encode()
    headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body, "more_body": False})


# -- plain functions --------------------------------------------------------------------------------------------
