"""A scriptable HTTP upstream for the client tests (served by the ``upstream`` fixture in conftest.py).

Each test scripts the replies it wants with ``upstream.script(Reply(503), Reply(200, ...))``; an unscripted request
gets a 200 that echoes the request as JSON. ``upstream.requests`` is what the server saw.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.from_thread import BlockingPortal
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from integration_kit import AsyncResilientClient

__all__ = ["Connect", "PortalClient", "Reply", "Seen", "Upstream"]

#: The longest any scripted hang or delay lasts, so a broken test can never wedge the server.
MAX_HANG = 10.0


@dataclass(frozen=True)
class Reply:
    """One scripted answer: a status, headers, a body (default: the request echoed as JSON), and timing.

    ``hang`` holds the answer until the test ends; ``delay`` holds it that many seconds; ``stream_bytes`` streams
    a body of that size in 64 KiB chunks without a Content-Length.
    """

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    content_type: str = "application/json"
    hang: bool = False
    delay: float = 0.0
    stream_bytes: int = 0


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


class Upstream:
    """The scriptable server's state, shared between the test thread and the server thread."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.requests: list[Seen] = []
        self._replies: deque[Reply] = deque()
        self._released = threading.Event()

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies``, in order."""
        self._replies.extend(replies)

    @property
    def count(self) -> int:
        """How many requests reached the server."""
        return len(self.requests)

    def reset(self) -> None:
        """End every hang and forget the script and the requests seen."""
        self._released.set()
        self._released = threading.Event()
        self._replies.clear()
        self.requests.clear()

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """The ASGI app: record the request, then play the next scripted reply."""
        request = Request(scope, receive)
        body = await request.body()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        seen = Seen(request.method, request.url.path, request.url.query, headers, body)
        self.requests.append(seen)
        reply = self._replies.popleft() if self._replies else Reply()
        released = self._released
        if reply.hang or reply.delay:
            limit = time.monotonic() + (MAX_HANG if reply.hang else min(reply.delay, MAX_HANG))
            while time.monotonic() < limit and not released.is_set():
                await anyio.sleep(0.01)
        response: Response
        if reply.stream_bytes:
            response = StreamingResponse(
                _chunks(reply.stream_bytes),
                status_code=reply.status,
                headers=reply.headers,
                media_type=reply.content_type,
            )
        else:
            content = reply.body
            if content is None:
                echo = {"method": seen.method, "path": seen.path, "query": seen.query, "headers": seen.headers}
                content = json.dumps(echo).encode()
            response = Response(content, status_code=reply.status, headers=reply.headers, media_type=reply.content_type)
        await response(scope, receive, send)


async def _chunks(total: int) -> AsyncIterator[bytes]:
    chunk = b"x" * 65536
    sent = 0
    while sent < total:
        piece = chunk[: min(len(chunk), total - sent)]
        sent += len(piece)
        yield piece


class PortalClient:
    """A blocking view of an :class:`AsyncResilientClient` running on a portal's event loop (asyncio or trio)."""

    def __init__(self, portal: BlockingPortal, client: AsyncResilientClient) -> None:
        self._portal = portal
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name in {"request", "get", "post", "put", "patch", "delete", "json"}:
            return lambda *args, **kwargs: self._portal.call(functools.partial(attr, *args, **kwargs))
        return attr


Connect = Callable[..., Any]
