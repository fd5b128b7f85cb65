"""What a caller may put into a request: checked once, before the engine starts, so a mistake is the caller's.

A request that cannot be built, or that would be unsafe on the wire, is refused with
:class:`~integration_kit.errors.UnsafeRequest` before anything is sent and before the engine starts (so it is never
recorded against the partner, never opens a breaker, never spends a retry budget):

- the method must be an RFC 9110 token (``GET``, ``PROPFIND``; no space, CR or LF);
- header names must be tokens, header values must hold no control character but HTAB (no CR, LF, NUL: header
  injection), and must be encodable (latin-1);
- headers that define the message's framing or routing are httpx's to write, never the caller's
  (:data:`FRAMING_HEADERS`: ``Transfer-Encoding`` next to a ``Content-Length`` is request smuggling, RFC 9112
  section 6.1; a ``Content-Length`` that disagrees with the body desynchronises the connection; ``Host`` and
  ``Connection`` re-route or re-frame it);
- an idempotency key must be what :func:`~integration_kit.server.idempotency.parse_idempotency_key` accepts:
  1 to :data:`MAX_KEY_LENGTH` printable ASCII characters.

Messages quote what was refused only through :func:`shown`, escaped and cut, so a refused value cannot forge a
log line.

A body given as a stream (an iterator, a file object, a non-seekable file in ``files=``) is read once: it
is buffered in memory up to :data:`REPLAY_LIMIT` bytes so that every attempt sends it whole; a longer one, or
an async stream, is sent on one attempt only (:func:`replayable` says which).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping

import httpx

from integration_kit.errors import UnsafeRequest

__all__ = [
    "FRAMING_HEADERS",
    "MAX_KEY_LENGTH",
    "REPLAY_LIMIT",
    "checked_headers",
    "checked_key",
    "checked_method",
    "replayable",
    "shown",
]

#: Headers the caller may not set (lower-case): they frame or route the message, so only httpx writes them.
FRAMING_HEADERS: frozenset[str] = frozenset(
    {
        "content-length",
        "transfer-encoding",
        "host",
        "connection",
        "upgrade",
        "te",
        "trailer",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "expect",
        "http2-settings",
    }
)

#: The longest idempotency key sent (characters); the IETF draft's servers (and ours) refuse longer ones.
MAX_KEY_LENGTH = 255

#: The largest streamed request body buffered so that a retry can send it again (bytes): 8 MiB.
REPLAY_LIMIT = 8 * 1024 * 1024

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def shown(value: object, limit: int = 40) -> str:
    """``value`` safe to quote in a message: escaped (no raw CR, LF or control character) and cut to ``limit``."""
    text = repr(str(value))
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def checked_method(method: object) -> str:
    """``method`` upper-cased; :class:`UnsafeRequest` unless it is an RFC 9110 token."""
    if not isinstance(method, str) or not _TOKEN.fullmatch(method):
        raise UnsafeRequest(f"the method {shown(method)} is not an HTTP token: refused")
    return method.upper()


def checked_headers(headers: Mapping[str, str], key: str | None) -> tuple[dict[str, str], str | None]:
    """Per-call headers, each checked; an ``Idempotency-Key`` among them becomes the call's key."""
    checked: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise UnsafeRequest(f"the header name {shown(name)} is not an HTTP token: refused")
        lowered = name.lower()
        if lowered in FRAMING_HEADERS or lowered.startswith("proxy-"):
            raise UnsafeRequest(f"the header {name} frames or routes the message; httpx sets it: refused")
        if not isinstance(value, str):
            raise UnsafeRequest(f"the header {name} must be a str, got {type(value).__name__}")
        if _BAD_VALUE.search(value):
            raise UnsafeRequest(f"the header {name} holds CR, LF, NUL or a control character: refused (injection)")
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise UnsafeRequest(f"the header {name} holds characters outside latin-1: refused") from None
        if lowered == "idempotency-key":
            key = key if key is not None else _parse_structured_string(value)
        else:
            checked[name] = value
    return checked, key


def checked_key(key: object) -> str:
    """An idempotency key the IETF draft's servers accept: 1-255 printable ASCII characters."""
    if not isinstance(key, str) or not key or not (key.isascii() and key.isprintable()):
        raise UnsafeRequest("idempotency_key must be 1-255 printable ASCII characters")
    if len(key) > MAX_KEY_LENGTH:
        raise UnsafeRequest(f"idempotency_key has {len(key)} characters; servers refuse more than {MAX_KEY_LENGTH}")
    return key


def replayable(request: httpx.Request, limit: int | None = None) -> bool:
    """Make ``request``'s body replayable when it can be; return whether every attempt can send it whole.

    A body in memory (``content=`` bytes, ``json=``, ``data=``) already is. A synchronous stream is read here, up
    to ``limit`` bytes: within it, the body is kept as bytes (with its ``Content-Length``); past it, what was read
    is sent first and the rest streamed, on one attempt only. An async stream cannot be read here: one attempt.
    ``limit`` defaults to :data:`REPLAY_LIMIT`, read at each call.
    """
    if limit is None:
        limit = REPLAY_LIMIT
    stream = request.stream
    if isinstance(stream, httpx.ByteStream):
        return True
    if not isinstance(stream, Iterable):
        return False
    chunks = iter(stream)
    kept: list[bytes] = []
    size = 0
    for chunk in chunks:
        kept.append(chunk)
        size += len(chunk)
        if size > limit:
            request.stream = _Prefixed(kept, chunks)
            return False
    body = b"".join(kept)
    request.stream = httpx.ByteStream(body)
    request.headers.pop("Transfer-Encoding", None)
    request.headers["Content-Length"] = str(len(body))
    return True


class _Prefixed(httpx.SyncByteStream):
    """The chunks already read, then the rest of the stream."""

    def __init__(self, head: list[bytes], rest: Iterator[bytes]) -> None:
        self._head = head
        self._rest = rest

    def __iter__(self) -> Iterator[bytes]:
        yield from self._head
        yield from self._rest


def _parse_structured_string(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value
