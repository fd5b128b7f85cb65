"""Server-side idempotency: a retried write is executed once, and its duplicates get the first response again.

Semantics of the IETF ``Idempotency-Key`` HTTP header draft (draft-ietf-httpapi-idempotency-key-header) and of
Stripe's practice, on any :class:`~integration_kit.stores.Store`:

==========================================  ===============================================================
request                                      answer
==========================================  ===============================================================
first with a key                             claims the key (in flight, for ``lease`` seconds) and executes
same key while the first is in flight        ``409 Conflict`` with ``Retry-After``; not executed
same key, another fingerprint                ``422 Unprocessable Content``; not executed
same key after the first completed           the stored response replayed: same status, headers and body, plus
                                             ``Idempotent-Replayed: true``
no key where one is required                 ``400 Bad Request``; a malformed or oversized key also gets 400
==========================================  ===============================================================

The *fingerprint* of a request is its method, its target (path and query) and the SHA-256 of its body. A
completed record expires after ``ttl`` (default 24 hours); then the key may be used afresh.

**The lease window.** An executor claims its key for ``lease`` seconds (default 60). If it dies, the claim lapses
after at most ``lease`` seconds and a retry executes again; until then duplicates get 409. If an executor is
still running when its lease lapses (it took longer than ``lease``), a retry may execute *concurrently*, and the
first executor's result is then not stored (its completion finds the claim gone). So ``lease`` must exceed the
longest execution; the price of a long lease is how long a crashed request blocks its retries. When the
application raises instead of answering, the claim is released at once so a retry can proceed; every response
the application did give (a 500 included) is stored and replayed, as Stripe does.

The guard never executes a request whose key it could not record: if the store is unreachable, the middleware
answers ``503`` and the decorator raises :class:`~integration_kit.errors.StoreUnavailable`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping, MutableMapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, ParamSpec, TypeVar, cast

from integration_kit.clock import Clock
from integration_kit.errors import IdempotencyKeyReused, RequestInFlight, StoreUnavailable
from integration_kit.stores.base import Store, WallClock

__all__ = [
    "DEFAULT_LEASE",
    "DEFAULT_TTL",
    "MAX_KEY_LENGTH",
    "REPLAYED_HEADER",
    "Claim",
    "IdempotencyGuard",
    "IdempotencyMiddleware",
    "IdempotencyRecord",
    "RecordState",
    "StoredResponse",
    "idempotent",
    "parse_idempotency_key",
    "request_fingerprint",
]

#: How long a completed record is kept (seconds): 24 hours, as Stripe and the draft's examples.
DEFAULT_TTL = 24 * 3600.0
#: How long an executor's claim lasts if it never completes (seconds).
DEFAULT_LEASE = 60.0
#: The longest key accepted (Stripe's limit).
MAX_KEY_LENGTH = 255
#: The header added to a replayed response.
REPLAYED_HEADER = "idempotent-replayed"

_P = ParamSpec("_P")
_R = TypeVar("_R")

ASGIApp = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[MutableMapping[str, Any]]],
        Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ],
    Awaitable[None],
]


class RecordState(Enum):
    """Where a keyed execution stands."""

    IN_FLIGHT = "in_flight"
    COMPLETED = "completed"


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """What the store holds under a key: the request's fingerprint, its state and, once completed, its result.

    ``created`` and ``expires`` are on the guard's clock (by default the wall clock); the store's TTL is what
    actually removes the record. ``result`` is opaque bytes (for HTTP, an encoded :class:`StoredResponse`).
    """

    key: str
    fingerprint: str
    state: RecordState
    owner: str
    created: float
    expires: float
    result: bytes = b""

    def encode(self) -> bytes:
        """One JSON line of metadata, then the raw result bytes."""
        meta = {
            "key": self.key,
            "fingerprint": self.fingerprint,
            "state": self.state.value,
            "owner": self.owner,
            "created": self.created,
            "expires": self.expires,
        }
        return json.dumps(meta, separators=(",", ":")).encode() + b"\n" + self.result

    @classmethod
    def decode(cls, data: bytes) -> IdempotencyRecord:
        """The inverse of :meth:`encode`."""
        head, _, result = data.partition(b"\n")
        meta = json.loads(head)
        return cls(
            key=meta["key"],
            fingerprint=meta["fingerprint"],
            state=RecordState(meta["state"]),
            owner=meta["owner"],
            created=meta["created"],
            expires=meta["expires"],
            result=result,
        )


@dataclass(frozen=True, slots=True)
class Claim:
    """The right to execute a key, held by the first request; give it back with complete() or release()."""

    key: str
    record: bytes


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """An HTTP response as stored for replay: status, headers (lower-case names, in order) and body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def encode(self) -> bytes:
        """A JSON line with status and headers, then the body."""
        meta = {"status": self.status, "headers": [list(h) for h in self.headers]}
        return json.dumps(meta, separators=(",", ":")).encode() + b"\n" + self.body

    @classmethod
    def decode(cls, data: bytes) -> StoredResponse:
        """The inverse of :meth:`encode`."""
        head, _, body = data.partition(b"\n")
        meta = json.loads(head)
        return cls(status=meta["status"], headers=tuple((n, v) for n, v in meta["headers"]), body=body)


class IdempotencyGuard:
    """The idempotency rules on a store, shared by :class:`IdempotencyMiddleware` and :func:`idempotent`.

    :meth:`begin` either hands out a :class:`Claim` (execute, then :meth:`complete` or :meth:`release`), returns
    the completed :class:`IdempotencyRecord` to replay, or raises :class:`~integration_kit.errors.RequestInFlight`
    or :class:`~integration_kit.errors.IdempotencyKeyReused`. Store failures raise
    :class:`~integration_kit.errors.StoreUnavailable`. Operations block on the store's I/O; async callers run
    them in a worker thread when ``store.blocking``.
    """

    def __init__(
        self,
        store: Store,
        *,
        ttl: float = DEFAULT_TTL,
        lease: float = DEFAULT_LEASE,
        retry_after: float = 1.0,
        clock: Clock | None = None,
        namespace: str = "idempotency:",
    ) -> None:
        if not isinstance(store, Store):
            raise TypeError(f"IdempotencyGuard: store must be a Store, got {type(store).__name__}")
        for name, value in (("ttl", ttl), ("lease", lease), ("retry_after", retry_after)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"IdempotencyGuard: {name} must be a positive number of seconds, got {value!r}")
        self.store = store
        self.ttl = float(ttl)
        self.lease = float(lease)
        self.retry_after = float(retry_after)
        self.clock: Clock = clock if clock is not None else WallClock()
        self.namespace = namespace

    def begin(self, key: str, fingerprint: str) -> Claim | IdempotencyRecord:
        """Claim ``key`` for a request with ``fingerprint``, or return its completed record for replay."""
        now = self.clock.now()
        claim = IdempotencyRecord(key, fingerprint, RecordState.IN_FLIGHT, uuid.uuid4().hex, now, now + self.lease)
        encoded = claim.encode()
        stored_key = self.namespace + key
        for _ in range(3):  # the record may expire between the failed claim and the read: claim again
            if self.store.add(stored_key, encoded, ttl=self.lease):
                return Claim(stored_key, encoded)
            current = self.store.get(stored_key)
            if current is None:
                continue
            record = IdempotencyRecord.decode(current)
            if record.fingerprint != fingerprint:
                raise IdempotencyKeyReused(f"idempotency key {key!r} was used with a different request", key=key)
            if record.state is RecordState.COMPLETED:
                return record
            raise RequestInFlight(
                f"a request with idempotency key {key!r} is in flight", key=key, retry_after=self.retry_after
            )
        raise StoreUnavailable("the key kept expiring while it was claimed", store=self.store.name, operation="begin")

    def complete(self, claim: Claim, result: bytes) -> bool:
        """Store ``result`` for the claimed key (for ``ttl``); ``False`` if the lease had lapsed meanwhile."""
        record = IdempotencyRecord.decode(claim.record)
        now = self.clock.now()
        done = IdempotencyRecord(
            record.key, record.fingerprint, RecordState.COMPLETED, record.owner, record.created, now + self.ttl, result
        )
        return self.store.compare_and_set(claim.key, claim.record, done.encode(), ttl=self.ttl)

    def release(self, claim: Claim) -> bool:
        """Drop the claim without a result, so a retry may execute; ``False`` if it had lapsed already."""
        return self.store.compare_and_set(claim.key, claim.record, None)


# -- HTTP: key, fingerprint, middleware ------------------------------------------------------------------------

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~:/0-9A-Za-z]+")


def parse_idempotency_key(value: str, *, max_length: int = MAX_KEY_LENGTH) -> str | None:
    """The key in an ``Idempotency-Key`` header value, or ``None`` if the value is not a valid key.

    The draft defines the value as a structured-field string (RFC 8941: ``"..."`` with ``\\"`` and ``\\\\``
    escapes, printable ASCII); a bare token (as Stripe's clients send, ``8e03978e-40d5-...``) is tolerated.
    Empty keys and keys longer than ``max_length`` are refused.
    """
    value = value.strip(" \t")
    quoted = value.startswith('"')
    key = _parse_sf_string(value) if quoted else (value if _TOKEN.fullmatch(value) else None)
    if not key or len(key) > max_length:
        return None
    return key


def _parse_sf_string(value: str) -> str | None:
    """An RFC 8941 sf-string (the whole of ``value``), unescaped, or ``None``."""
    out: list[str] = []
    i, end = 1, len(value)
    while i < end:
        char = value[i]
        if char == "\\":
            if i + 1 >= end or value[i + 1] not in '"\\':
                return None
            out.append(value[i + 1])
            i += 2
        elif char == '"':
            return "".join(out) if i == end - 1 else None
        elif " " <= char <= "~":
            out.append(char)
            i += 1
        else:
            return None
    return None  # no closing quote


def request_fingerprint(method: str, target: str, body: bytes) -> str:
    """``"<METHOD> <target> sha256:<hex of body>"``: what makes two requests with one key "the same request"."""
    return f"{method.upper()} {target} sha256:{hashlib.sha256(body).hexdigest()}"


#: Response headers never stored for replay: per-connection, per-moment or per-client ones.
_UNSTORED_HEADERS = frozenset({"connection", "date", "keep-alive", "server", "set-cookie", "transfer-encoding"})

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class IdempotencyMiddleware:
    """Pure ASGI middleware that gives ``methods`` requests carrying an ``Idempotency-Key`` exactly-once effect.

    Works with any ASGI app (Starlette: ``Middleware(IdempotencyMiddleware, store=...)``; FastAPI:
    ``app.add_middleware(IdempotencyMiddleware, store=...)``). ``required`` makes a missing key a 400. The request
    body is buffered to fingerprint it, and refused with 413 beyond ``max_body_bytes``; the response is passed
    through as it streams and buffered up to ``max_body_bytes`` to be stored. A response larger than that is
    not stored: its key then answers 409 without ``Retry-After`` until the record expires, since replaying a
    truncated body would be wrong and executing again would break exactly-once.

    Errors are ``application/problem+json`` (RFC 9457). If the store is unreachable the request is not executed
    (503), because exactly-once could not be promised.
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
    ) -> None:
        if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int) or max_body_bytes < 0:
            raise ValueError(f"IdempotencyMiddleware: max_body_bytes must be an int >= 0, got {max_body_bytes!r}")
        self.app = app
        self.guard = IdempotencyGuard(store, ttl=ttl, lease=lease, retry_after=retry_after, clock=clock)
        self.methods = frozenset(m.upper() for m in methods)
        self.required = required
        self.max_body_bytes = max_body_bytes
        self.header = header.lower().encode("latin-1")

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
        body = await _read_body(receive, self.max_body_bytes)
        if body is None:
            await _problem(send, 413, "Request body too large", f"the limit is {self.max_body_bytes} bytes")
            return
        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        fingerprint = request_fingerprint(scope["method"], target.decode("latin-1"), body)
        try:
            begun = await _call(self.guard.store, self.guard.begin, key, fingerprint)
        except RequestInFlight as exc:
            retry = str(max(1, round(exc.retry_after)))
            await _problem(send, 409, "Request in flight", str(exc), [(b"retry-after", retry.encode())])
            return
        except IdempotencyKeyReused as exc:
            await _problem(send, 422, "Idempotency-Key reused", str(exc))
            return
        except StoreUnavailable:
            await _problem(send, 503, "Idempotency store unavailable", "retry later", [(b"retry-after", b"1")])
            return
        if isinstance(begun, IdempotencyRecord):
            await self._replay(begun, send)
            return
        await self._execute(scope, receive, send, body, begun)

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
                await _call(guard.store, guard.complete, claim, result)

        recorder = _ResponseRecorder(send, store_result, self.max_body_bytes)
        try:
            await self.app(scope, replay_receive, recorder.send)
        finally:
            if not recorder.finished:
                with contextlib.suppress(StoreUnavailable):  # unreleased, the claim lapses after the lease
                    await _call(guard.store, guard.release, claim)


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


async def _call(store: Store, fn: Callable[..., _R], *args: Any) -> _R:
    """Run a store operation: in a worker thread when it may block, inline when it cannot."""
    if not store.blocking:
        return fn(*args)
    import anyio.to_thread

    return await anyio.to_thread.run_sync(functools.partial(fn, *args))


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or ``None`` once it passes ``limit`` bytes."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
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


def idempotent(
    store: Store,
    *,
    key: str | Callable[..., str],
    fingerprint: Callable[..., str] | None = None,
    ttl: float = DEFAULT_TTL,
    lease: float = DEFAULT_LEASE,
    dumps: Callable[[Any], bytes | str] = json.dumps,
    loads: Callable[[bytes], Any] = json.loads,
    clock: Clock | None = None,
) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Make a function (sync or async), such as a queue consumer, run once per key; repeats return the first result.

    ``key`` is a callable given the function's arguments, or the name of an attribute (or mapping item) of the
    first argument, e.g. ``key="message_id"``. ``fingerprint``, given the same arguments, tells a redelivery
    from a different message that reuses a key (then :class:`~integration_kit.errors.IdempotencyKeyReused`); by
    default keys are trusted. A duplicate while the first run is in flight raises
    :class:`~integration_kit.errors.RequestInFlight` (a consumer should requeue it). Results are stored with
    ``dumps`` and returned from ``loads`` (JSON by default). An exception releases the key so a redelivery runs.
    """
    guard = IdempotencyGuard(store, ttl=ttl, lease=lease, clock=clock, namespace="idempotent:")
    key_of = key if callable(key) else functools.partial(_key_from_first_argument, key)

    def decorate(fn: Callable[_P, _R]) -> Callable[_P, _R]:
        keyed = _KeyedRun(guard, f"{fn.__module__}.{fn.__qualname__}:", key_of, fingerprint, dumps)
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: _P.args, **kwargs: _P.kwargs) -> Any:
                begun = await _call(store, keyed.begin, args, kwargs)
                if isinstance(begun, IdempotencyRecord):
                    return loads(begun.result)
                try:
                    result = await cast(Callable[_P, Awaitable[Any]], fn)(*args, **kwargs)
                except Exception:
                    await _call(store, guard.release, begun)
                    raise
                return await _call(store, keyed.finish, begun, result)

            return cast(Callable[_P, _R], run_async)

        @functools.wraps(fn)
        def run_sync(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            begun = keyed.begin(args, kwargs)
            if isinstance(begun, IdempotencyRecord):
                return cast(_R, loads(begun.result))
            try:
                result = fn(*args, **kwargs)
            except Exception:
                guard.release(begun)
                raise
            return cast(_R, keyed.finish(begun, result))

        return run_sync

    return decorate


@dataclass(frozen=True, slots=True)
class _KeyedRun:
    """The store steps of one decorated function, shared by its sync and async wrappers."""

    guard: IdempotencyGuard
    prefix: str
    key_of: Callable[..., str]
    fingerprint: Callable[..., str] | None
    dumps: Callable[[Any], bytes | str]

    def begin(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Claim | IdempotencyRecord:
        """Claim the call's key, or get its completed record."""
        fp = self.fingerprint(*args, **kwargs) if self.fingerprint is not None else ""
        return self.guard.begin(self.prefix + str(self.key_of(*args, **kwargs)), fp)

    def finish(self, claim: Claim, result: Any) -> Any:
        """Store ``result`` under the claimed key and return it."""
        encoded = self.dumps(result)
        self.guard.complete(claim, encoded.encode() if isinstance(encoded, str) else encoded)
        return result


def _key_from_first_argument(name: str, *args: Any, **kwargs: Any) -> str:
    """The ``name`` attribute (or item, for a mapping) of the first positional argument."""
    if not args:
        raise TypeError(f"idempotent(key={name!r}) needs the message as the first positional argument")
    first = args[0]
    value = first[name] if isinstance(first, Mapping) else getattr(first, name)
    return str(value)
