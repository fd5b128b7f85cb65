"""A stand-in partner that answers what its document says: ASGI middleware over any upstream (the live flaky
upstream of :mod:`integration_kit.sim.upstream`, for instance) that replaces the body of each 2xx answer to a
documented operation with an instance of the documented schema (:mod:`.examples`), and its status with the
documented one when the document has no schema for the upstream's (a 200 for a create documented as 201). It
breaks a ``malformed`` fraction of them on purpose (seeded) and counts each, so a validating client's catches can
be compared with what was injected.

The upstream still decides everything else (status, latency, resets, hangs, Retry-After); requests to paths the
document does not know (``/stats``) pass through untouched.
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from integration_kit.openapi.examples import Examples, malformed
from integration_kit.openapi.model import ApiDocument, Operation
from integration_kit.openapi.refs import References

__all__ = ["DocumentedAnswers"]

Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]


class DocumentedAnswers:
    """Wraps the ASGI ``app``: 2xx answers to ``document``'s operations under ``prefix`` (the server URL's path,
    e.g. ``/v1``) get a documented body; a ``malformed`` fraction (0 to 1) of them, drawn from ``seed``, get a
    broken one. :attr:`answered` and :attr:`injected` count them."""

    def __init__(
        self, app: ASGIApp, document: ApiDocument, *, prefix: str = "", malformed: float = 0.0, seed: int = 0
    ) -> None:
        if not 0.0 <= malformed <= 1.0:
            raise ValueError(f"DocumentedAnswers: malformed must be a fraction from 0 to 1, got {malformed!r}")
        self.app = app
        self.malformed = malformed
        self.answered = 0
        self.injected = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        examples = Examples(References(document.data, document.source))
        self._routes = [(_pattern(prefix, op), op) for op in document.operations]
        self._bodies: dict[str, dict[int, bytes]] = {}
        for op in document.operations:
            for response in op.responses:
                if response.status.isdigit() and response.status.startswith("2") and response.schema is not None:
                    body = examples.of(response.schema, response.schema_pointer)
                    self._bodies.setdefault(op.operation_id, {})[int(response.status)] = json.dumps(body).encode()

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        op = self._operation(scope) if scope.get("type") == "http" else None
        if op is None:
            return await self.app(scope, receive, send)
        held: dict[str, Any] = {}

        async def answer(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer = self._answer(op, int(message["status"]))
                if answer is None:
                    return await send(message)
                status, held["body"] = answer
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(held["body"])).encode()))
                return await send({**message, "status": status, "headers": headers})
            if message["type"] == "http.response.body" and "body" in held:
                if not message.get("more_body", False):
                    await send({"type": "http.response.body", "body": held.pop("body")})
                return None
            return await send(message)

        await self.app(scope, receive, answer)

    def _operation(self, scope: MutableMapping[str, Any]) -> Operation | None:
        method, path = str(scope.get("method", "")).upper(), str(scope.get("path", ""))
        return next((op for pattern, op in self._routes if op.method == method and pattern.fullmatch(path)), None)

    def _answer(self, op: Operation, status: int) -> tuple[int, bytes] | None:
        """The status and body for a ``status`` answer to ``op`` (``None``: not a 2xx the document describes)."""
        documented = self._bodies.get(op.operation_id)
        if not documented or not 200 <= status < 300:
            return None
        status = status if status in documented else min(documented)
        body = documented[status]
        with self._lock:
            self.answered += 1
            if self.malformed and self._rng.random() < self.malformed:
                self.injected += 1
                return status, json.dumps(malformed(json.loads(body), self._rng)).encode()
        return status, body


def _pattern(prefix: str, op: Operation) -> re.Pattern[str]:
    """The request paths of ``op`` under ``prefix``: each ``{parameter}`` matches one path segment."""
    parts = re.split(r"(\{[^}/]+\})", op.path)
    return re.compile(
        re.escape(prefix.rstrip("/"))
        + "".join("[^/]+" if p.startswith("{") and p.endswith("}") else re.escape(p) for p in parts)
    )
