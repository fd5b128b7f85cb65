"""``IdempotencyMiddleware`` exactly, message by message (issue 29, the fifth sweep of ``server/middleware.py``):
which requests it guards (the ASGI type, the methods, the header and its case), the 400s and their problem
documents, the request body read in chunks up to its limit (and a disconnect), the stored key (the caller's hash
and the key, or ``-/`` for anonymous), the fingerprint over the raw target and query, the response recorded for
replay (status, lower-cased headers minus the unstored ones, the body up to the limit) and replayed.

Pure ASGI: the middleware is called with scripted ``receive`` messages and records what it ``send``s, on a
:class:`~integration_kit.stores.memory.MemoryStore` with a :class:`~integration_kit.clock.ManualClock`, so each test
runs in milliseconds. ``test_idempotency_callers.py`` proves the same middleware behind a real uvicorn server.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import anyio
import pytest
from asgi_server import request_body

from integration_kit import IdempotencyMiddleware, ManualClock, MemoryStore
from integration_kit.server.idempotency import REPLAYED_HEADER, IdempotencyRecord, StoredResponse
from integration_kit.server.middleware import credential_scope

Message = dict[str, Any]


class App:
    """An ASGI app that reads the request body, counts its calls and answers ``status`` with ``headers`` and the
    body in ``chunks`` (default: the request body echoed)."""

    def __init__(self, status: int = 201, headers: Sequence[tuple[bytes, bytes]] = (), chunks: Any = None) -> None:
        self.status = status
        self.headers = list(headers)
        self.chunks = chunks
        self.calls: list[tuple[dict[str, Any], bytes]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = await request_body(receive) if scope["type"] == "http" else b""
        self.calls.append((scope, body))
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        chunks = self.chunks if self.chunks is not None else [body]
        for i, chunk in enumerate(chunks):
            await send({"type": "http.response.body", "body": chunk, "more_body": i < len(chunks) - 1})


def _call(
    middleware: IdempotencyMiddleware,
    *,
    method: str = "POST",
    path: str = "/orders",
    key: bytes | None = b"k1",
    headers: Sequence[tuple[bytes, bytes]] = (),
    parts: Sequence[bytes] = (b'{"n": 1}',),
    scope: dict[str, Any] | None = None,
    messages: list[Message] | None = None,
) -> list[Message]:
    full = {"type": "http", "method": method, "path": path, "headers": list(headers), "query_string": b""}
    if key is not None:
        full["headers"].append((b"idempotency-key", key))
    full.update(scope or {})
    incoming = (
        messages
        if messages is not None
        else [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)]
    )
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    anyio.run(middleware, full, receive, send)
    return sent


def _answer(sent: list[Message]) -> tuple[int, dict[str, str], bytes]:
    start, *bodies = sent
    headers = {n.decode("latin-1"): v.decode("latin-1") for n, v in start["headers"]}
    return start["status"], headers, b"".join(m.get("body", b"") for m in bodies)


def _problem(sent: list[Message]) -> tuple[int, str, str]:
    status, headers, body = _answer(sent)
    assert headers["content-type"] == "application/problem+json"
    assert headers["content-length"] == str(len(body))
    document = json.loads(body)
    assert (document["type"], document["status"]) == ("about:blank", status)
    assert sent[-1]["more_body"] is False
    return status, document["title"], document["detail"]


def _guarded(app: App, store: MemoryStore | None = None, **options: Any) -> IdempotencyMiddleware:
    return IdempotencyMiddleware(
        app, store=store if store is not None else MemoryStore(clock=ManualClock(0.0)), **options
    )


# -- which requests are guarded ----------------------------------------------------------------------------------


def test_only_http_requests_of_the_guarded_methods_are_guarded() -> None:
    app = App()
    store = MemoryStore(clock=ManualClock(0.0))
    middleware = _guarded(app, store, methods=("put", "Post"))
    for method in ("PUT", "POST"):
        _call(middleware, method=method, key=method.encode())
        again = _call(middleware, method=method, key=method.encode())
        assert _answer(again)[1][REPLAYED_HEADER] == "true"
    for method in ("PATCH", "GET"):  # not guarded here: executed each time, nothing stored
        _call(middleware, method=method, key=b"same")
        assert REPLAYED_HEADER not in _answer(_call(middleware, method=method, key=b"same"))[1]
    assert store.get("idempotency:-/same") is None
    assert [scope["method"] for scope, _ in app.calls] == ["PUT", "POST", "PATCH", "PATCH", "GET", "GET"]
    sent = _call(middleware, scope={"type": "websocket"}, key=None)
    assert sent == []
    assert app.calls[-1][0]["type"] == "websocket"


def test_the_default_methods_are_post_and_patch() -> None:
    app = App()
    middleware = _guarded(app)
    for method in ("POST", "PATCH", "PUT"):
        _call(middleware, method=method, key=b"m-" + method.encode())
        replayed = REPLAYED_HEADER in _answer(_call(middleware, method=method, key=b"m-" + method.encode()))[1]
        assert replayed is (method != "PUT")


def test_the_key_header_is_found_in_any_case_and_may_be_renamed() -> None:
    app = App()
    middleware = _guarded(app)
    _call(middleware, key=None, headers=[(b"Idempotency-Key", b"abc")])
    assert _answer(_call(middleware, key=b"abc"))[1][REPLAYED_HEADER] == "true"
    renamed = _guarded(App(), header="X-Request-Key")
    _call(renamed, key=None, headers=[(b"x-request-key", b"abc")])
    assert _answer(_call(renamed, key=None, headers=[(b"X-REQUEST-KEY", b"abc")]))[1][REPLAYED_HEADER] == "true"
    assert REPLAYED_HEADER not in _answer(_call(renamed, key=b"abc"))[1]  # Idempotency-Key is not its header


def test_a_request_without_a_key_passes_unless_one_is_required() -> None:
    app = App()
    assert _answer(_call(_guarded(app), key=None))[0] == 201
    assert _answer(_call(_guarded(app), key=None))[0] == 201
    assert len(app.calls) == 2
    required = _guarded(app, required=True)
    assert _problem(_call(required, key=None)) == (400, "Idempotency-Key missing or invalid", "this request needs one")
    assert len(app.calls) == 2
    assert _answer(_call(required, method="GET", key=None))[0] == 201  # a method not guarded needs none


@pytest.mark.parametrize(
    "headers",
    [
        [(b"idempotency-key", b"")],
        [(b"idempotency-key", b"a b")],
        [(b"idempotency-key", b"a"), (b"idempotency-key", b"b")],
    ],
)
def test_an_empty_malformed_or_repeated_key_is_a_400(headers: list[tuple[bytes, bytes]]) -> None:
    app = App()
    sent = _call(_guarded(app, required=True), key=None, headers=headers)
    detail = "expected one quoted string or token of 1-255 characters"
    assert _problem(sent) == (400, "Idempotency-Key missing or invalid", detail)
    assert app.calls == []


def test_a_key_outside_ascii_is_a_400_not_an_error() -> None:
    """Header values are read as latin-1 (any byte is a character): a non-ASCII key is refused, not a crash."""
    app = App()
    sent = _call(_guarded(app), key='"caf\xe9"'.encode("latin-1"))
    assert _problem(sent)[0] == 400
    assert app.calls == []


# -- the request body ---------------------------------------------------------------------------------------------


def test_the_body_is_read_whole_in_chunks_up_to_its_limit() -> None:
    app = App()
    middleware = _guarded(app, max_body_bytes=10)
    sent = _call(middleware, key=b"a", parts=[b"0123", b"", b"456789"])
    assert _answer(sent)[2] == b"0123456789"
    assert app.calls[0][1] == b"0123456789"  # the app receives it whole, once
    sent = _call(middleware, key=b"b", parts=[b"0123", b"4567890"])
    assert _problem(sent) == (413, "Request body too large", "the limit is 10 bytes")
    assert len(app.calls) == 1
    sent = _call(middleware, key=b"c", messages=[{"type": "http.request"}])  # no body, no more_body: empty
    assert _answer(sent)[2] == b""
    assert _answer(_call(_guarded(App(), max_body_bytes=0), key=b"d", parts=[b""]))[0] == 201


def test_a_client_gone_before_its_body_arrived_whole_executes_and_claims_nothing() -> None:
    app = App()
    store = MemoryStore(clock=ManualClock(0.0))
    middleware = _guarded(app, store, key_scope=None)
    sent = _call(middleware, messages=[{"type": "http.request", "body": b"{", "more_body": True}])
    assert sent == []
    assert app.calls == []
    assert store.get("idempotency:-/k1") is None
    assert _answer(_call(middleware))[0] == 201  # the retry with the whole body executes


def test_the_app_gets_the_body_once_then_what_the_client_sends_next() -> None:
    seen: list[Message] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(await receive())
        seen.append(await receive())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    _call(IdempotencyMiddleware(app, store=MemoryStore(clock=ManualClock(0.0))), parts=[b"ab", b"c"])
    assert seen == [{"type": "http.request", "body": b"abc", "more_body": False}, {"type": "http.disconnect"}]


# -- the stored key and the fingerprint --------------------------------------------------------------------------


def test_the_stored_key_is_the_caller_s_hash_and_the_key() -> None:
    store = MemoryStore(clock=ManualClock(0.0))
    _call(_guarded(App(), store), headers=[(b"authorization", b"Bearer t")])
    assert store.get("idempotency:" + hashlib.sha256(b"Bearer t").hexdigest() + "/k1") is not None
    _call(_guarded(App(), store, key_scope=lambda scope: "acme"), key=b"k2")
    assert store.get("idempotency:" + hashlib.sha256(b"acme").hexdigest() + "/k2") is not None
    _call(_guarded(App(), store), key=b"k3")  # anonymous: the default scope names nobody
    assert store.get("idempotency:-/k3") is not None
    _call(_guarded(App(), store, key_scope=None), key=b"k4", headers=[(b"authorization", b"Bearer t")])
    assert store.get("idempotency:-/k4") is not None


def test_the_fingerprint_is_over_the_raw_target_and_its_query() -> None:
    app = App()
    middleware = _guarded(app)
    base = {"raw_path": b"/orders%2F1", "path": "/orders/1"}
    _call(middleware, scope={**base, "query_string": b"a=1"})
    same = _call(middleware, scope={**base, "query_string": b"a=1"})
    assert _answer(same)[1][REPLAYED_HEADER] == "true"
    for other in ({**base, "query_string": b"a=2"}, {**base, "query_string": b""}, {"path": "/orders/1"}):
        status, title, detail = _problem(_call(middleware, scope=other))
        assert (status, title, detail) == (422, "Idempotency-Key reused", "key 'k1' was used with a different request")
    assert len(app.calls) == 1
    plain = _guarded(App())
    _call(plain, scope={"path": "/x", "query_string": b"q"})
    stored = plain.guard.store.get("idempotency:-/k1")
    assert stored is not None
    from integration_kit.server.idempotency import request_fingerprint

    assert IdempotencyRecord.decode(stored).fingerprint == request_fingerprint("POST", "/x?q", b'{"n": 1}')


def test_credential_scope_joins_every_authorization_value() -> None:
    assert credential_scope({"headers": [(b"AUTHORIZATION", b"a"), (b"x", b"y"), (b"authorization", b"b")]}) == (
        b"a\nb"
    )


# -- the response recorded and replayed ---------------------------------------------------------------------------


def test_the_response_is_stored_with_lower_cased_headers_minus_the_unstored_ones_and_replayed() -> None:
    headers = [
        (b"Content-Type", b"application/json"),
        (b"Set-Cookie", b"s=1"),
        (b"Date", b"today"),
        (b"Server", b"x"),
        (b"Connection", b"close"),
        (b"Keep-Alive", b"5"),
        (b"Transfer-Encoding", b"chunked"),
        (b"X-Caf\xe9", b"\xe9t\xe9"),
    ]
    app = App(status=202, headers=headers, chunks=[b"ab", b"", b"cd"])
    middleware = _guarded(app, key_scope=None)
    first = _call(middleware)
    assert first[0]["headers"] == headers  # passed through as the app sent them
    assert _answer(first)[2] == b"abcd"
    stored = middleware.guard.store.get("idempotency:-/k1")
    assert stored is not None
    result = IdempotencyRecord.decode(stored).result
    assert result is not None
    response = StoredResponse.decode(result)
    assert response == StoredResponse(202, (("content-type", "application/json"), ("x-caf\xe9", "\xe9t\xe9")), b"abcd")
    again = _call(middleware)
    assert again == [
        {
            "type": "http.response.start",
            "status": 202,
            "headers": [
                (b"content-type", b"application/json"),
                (b"x-caf\xe9", b"\xe9t\xe9"),
                (REPLAYED_HEADER.encode(), b"true"),
            ],
        },
        {"type": "http.response.body", "body": b"abcd", "more_body": False},
    ]
    assert len(app.calls) == 1


def test_a_response_up_to_the_limit_is_replayed_and_a_larger_one_is_not() -> None:
    fits = _guarded(App(chunks=[b"12345", b"67890"]), max_body_bytes=10)
    _call(fits)
    assert _answer(_call(fits))[2] == b"1234567890"
    large = _guarded(App(chunks=[b"12345", b"678901"]), max_body_bytes=11)
    assert _answer(_call(large, parts=[b"x"]))[2] == b"12345678901"
    large.max_body_bytes = 10  # the recorder's limit is read per request
    assert _answer(_call(large, key=b"k2", parts=[b"x"]))[2] == b"12345678901"
    status, title, detail = _problem(_call(large, key=b"k2", parts=[b"x"]))
    assert (status, title, detail) == (409, "Response not replayable", "the original response was too large to store")
    assert "retry-after" not in _answer(_call(large, key=b"k2", parts=[b"x"]))[1]
