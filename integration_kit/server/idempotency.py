"""Server-side idempotency records: a retried write is executed once, and its duplicates get the first response again.

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

This module holds the records and the :class:`IdempotencyGuard` that claims, completes and releases them;
:mod:`integration_kit.server.middleware` applies it to ASGI requests and :mod:`integration_kit.server.keyed` to
plain function calls (``@idempotent``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, ParamSpec, TypeVar

from integration_kit.clock import Clock
from integration_kit.errors import StoreUnavailable
from integration_kit.server.errors import IdempotencyKeyReused, RequestInFlight
from integration_kit.stores.base import Store, WallClock

__all__ = [
    "DEFAULT_LEASE",
    "DEFAULT_TTL",
    "MAX_KEY_LENGTH",
    "REPLAYED_HEADER",
    "Claim",
    "IdempotencyGuard",
    "IdempotencyRecord",
    "RecordState",
    "StoredResponse",
    "parse_idempotency_key",
    "request_fingerprint",
    "store_call",
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
    the completed :class:`IdempotencyRecord` to replay, or raises
    :class:`~integration_kit.server.errors.RequestInFlight` or
    :class:`~integration_kit.server.errors.IdempotencyKeyReused`. Store failures raise
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

    def renew(self, claim: Claim) -> Claim | None:
        """Extend a claim still held to ``lease`` seconds from now (a long execution keeps its key); return the
        renewed claim, to use from then on, or ``None`` if the lease had lapsed (another executor may hold the key).
        Raises :class:`~integration_kit.errors.StoreUnavailable` when the store fails."""
        record = IdempotencyRecord.decode(claim.record)
        expires = self.clock.now() + self.lease
        renewed = IdempotencyRecord(
            record.key, record.fingerprint, record.state, record.owner, record.created, expires
        ).encode()
        if self.store.compare_and_set(claim.key, claim.record, renewed, ttl=self.lease):
            return Claim(claim.key, renewed)
        return None

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


async def store_call(store: Store, fn: Callable[..., _R], *args: Any) -> _R:
    """Run a store operation: in a worker thread when it may block, inline when it cannot."""
    if not store.blocking:
        return fn(*args)
    import anyio.to_thread

    return await anyio.to_thread.run_sync(functools.partial(fn, *args))
