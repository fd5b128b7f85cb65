"""IdempotencyMiddleware against a real uvicorn server: truncated uploads, keys scoped to the caller, replay
hygiene, and the resilient client and the middleware together (a retried POST executes once)."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import pytest
from asgi_server import serve_in_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from integration_kit import IdempotencyMiddleware, ManualClock, MemoryStore, Recorder, ResilientClient
from integration_kit.errors import StoreUnavailable
from integration_kit.events import AttemptFinished, RetryScheduled
from integration_kit.http.config import ClientConfig
from integration_kit.policies.config import RetryPolicy, Timeouts
from integration_kit.server.idempotency import (
    REPLAYED_HEADER,
    IdempotencyGuard,
    IdempotencyRecord,
    request_fingerprint,
)

WAIT = 10.0  # the longest any event in these tests is waited for (a bound, not a sleep)


@dataclass
class Service:
    """An order service under the middleware; ``finished`` counts requests the middleware has fully handled."""

    store: MemoryStore = field(default_factory=lambda: MemoryStore(clock=ManualClock(0.0)))
    effects: Counter[str] = field(default_factory=Counter)
    bodies: list[bytes] = field(default_factory=list)
    finished: Counter[str] = field(default_factory=Counter)
    done: threading.Condition = field(default_factory=threading.Condition)
    gate: threading.Event = field(default_factory=threading.Event)
    held: threading.Event = field(default_factory=threading.Event)  # a ?hold=1 request is waiting at the gate

    def asgi(self, **options: Any) -> Any:
        async def create(request: Request) -> Response:
            body = await request.body()
            self.bodies.append(body)
            key = request.headers.get("idempotency-key", "-")
            self.effects[key] += 1
            n = self.effects[key]
            if request.query_params.get("hold"):
                self.held.set()
                await anyio.to_thread.run_sync(self.gate.wait, WAIT)
            if request.query_params.get("cookie"):
                response = JSONResponse({"n": n}, status_code=201)
                response.set_cookie("session", f"s{n}")
                return response
            if request.query_params.get("fail"):
                return JSONResponse({"n": n}, status_code=503)
            if request.query_params.get("chunks"):

                async def parts() -> AsyncIterator[bytes]:
                    for i in range(4):
                        yield f"part{i}-run{n};".encode()

                return StreamingResponse(parts(), media_type="text/plain")
            return JSONResponse({"n": n, "body": body.decode()}, status_code=201, headers={"x-run": str(n)})

        guarded = IdempotencyMiddleware(
            Starlette(routes=[Route("/{path:path}", create, methods=["POST"])]),
            **{"store": self.store, "clock": ManualClock(0.0), **options},
        )

        async def outer(scope: Any, receive: Any, send: Any) -> None:
            try:
                await guarded(scope, receive, send)
            finally:
                if scope["type"] == "http":
                    with self.done:
                        self.finished[scope["path"]] += 1
                        self.done.notify_all()

        return outer

    def wait_finished(self, path: str, count: int = 1) -> None:
        with self.done:
            assert self.done.wait_for(lambda: self.finished[path] >= count, WAIT), f"{path} never finished"


def _serve(service: Service, **options: Any) -> Iterator[tuple[Service, str]]:
    with serve_in_thread(service.asgi(**options)) as url:
        yield service, url


@pytest.fixture
def served() -> Iterator[tuple[Service, str]]:
    yield from _serve(Service())


# -- issue 10, item 2: a body that did not arrive whole is never executed ------------------------------------


def _truncated_upload(url: str, path: str, key: str, body: bytes, sent: int) -> None:
    """Declare ``len(body)`` bytes, send ``sent`` of them, and disconnect (what a dying client does)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=WAIT) as sock:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Idempotency-Key: {key}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode() + body[:sent])
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(WAIT)
        with contextlib.suppress(OSError):  # reset by the server, or timed out: either way it did not answer
            sock.recv(1)


def test_a_truncated_upload_is_never_executed_and_its_retry_runs(served: tuple[Service, str]) -> None:
    service, url = served
    body = b'{"item": "book", "quantity": 2, "note": "gift-wrap"}'[:51]
    assert len(body) == 51
    _truncated_upload(url, "/orders", "cut-1", body, sent=25)
    service.wait_finished("/orders")  # the middleware has seen the request and its disconnect through
    assert service.effects["cut-1"] == 0
    assert service.bodies == []
    with httpx.Client(base_url=url, timeout=WAIT) as http:
        retry = http.post("/orders", content=body, headers={"idempotency-key": "cut-1"})
    assert retry.status_code == 201  # not 422: nothing was stored for the partial body
    assert retry.json() == {"n": 1, "body": body.decode()}
    assert service.effects["cut-1"] == 1


# -- issue 10, item 12: keys are scoped to the caller --------------------------------------------------------


def _post(url: str, key: str, *, auth: str | None = None, path: str = "/orders", **headers: str) -> httpx.Response:
    if auth is not None:
        headers["authorization"] = auth
    with httpx.Client(base_url=url, timeout=WAIT) as http:
        return http.post(path, content=b'{"item":"book"}', headers={"idempotency-key": key, **headers})


def test_two_callers_with_one_key_never_see_each_others_response(served: tuple[Service, str]) -> None:
    service, url = served
    alice = _post(url, "order-1", auth="Bearer alice-token")
    bob = _post(url, "order-1", auth="Bearer bob-token")
    assert alice.status_code == bob.status_code == 201
    assert REPLAYED_HEADER not in bob.headers  # executed for bob, not alice's response replayed
    assert service.effects["order-1"] == 2
    again = _post(url, "order-1", auth="Bearer alice-token")
    assert again.headers[REPLAYED_HEADER] == "true"
    assert again.content == alice.content
    anonymous = _post(url, "order-1")
    assert REPLAYED_HEADER not in anonymous.headers
    assert service.effects["order-1"] == 3
    assert _post(url, "order-1").headers[REPLAYED_HEADER] == "true"  # anonymous callers share one scope


def test_the_key_scope_is_configurable() -> None:
    def tenant(scope: Any) -> str | None:
        values = [v for n, v in scope["headers"] if n == b"x-tenant"]
        return values[0].decode() if values else None

    for service, url in _serve(Service(), key_scope=tenant):
        first = _post(url, "k", auth="Bearer old-token", **{"x-tenant": "acme"})
        rotated = _post(url, "k", auth="Bearer new-token", **{"x-tenant": "acme"})
        assert rotated.headers[REPLAYED_HEADER] == "true"  # scoped by account: a rotated token keeps its keys
        assert rotated.content == first.content
        other = _post(url, "k", auth="Bearer new-token", **{"x-tenant": "globex"})
        assert REPLAYED_HEADER not in other.headers
        assert service.effects["k"] == 2
    for service, url in _serve(Service(), key_scope=None):
        _post(url, "k", auth="Bearer a")
        assert _post(url, "k", auth="Bearer b").headers[REPLAYED_HEADER] == "true"  # shared: one trusted caller
        assert service.effects["k"] == 1


def test_the_default_scope_is_the_authorization_header() -> None:
    from integration_kit.server.middleware import credential_scope

    assert credential_scope({"headers": [(b"authorization", b"Bearer x"), (b"accept", b"*/*")]}) == b"Bearer x"
    assert credential_scope({"headers": [(b"Authorization", b"Basic y")]}) == b"Basic y"
    assert credential_scope({"headers": [(b"accept", b"*/*")]}) is None
    assert credential_scope({"type": "http"}) is None  # a scope without headers is anonymous, not an error
    two = [(b"authorization", b"Bearer a"), (b"authorization", b"Bearer b")]
    assert credential_scope({"headers": two}) == b"Bearer a\nBearer b"  # a byte no header value holds


# -- issue 17, item 4: replay hygiene --------------------------------------------------------------------------


def test_set_cookie_and_date_are_not_stored_for_replay(served: tuple[Service, str]) -> None:
    _, url = served
    first = _post(url, "cookie-1", path="/orders?cookie=1")
    assert first.headers["set-cookie"].startswith("session=s1")
    assert "date" in first.headers  # uvicorn's own
    again = _post(url, "cookie-1", path="/orders?cookie=1")
    assert again.headers[REPLAYED_HEADER] == "true"
    assert "set-cookie" not in again.headers  # one client's session is never handed to a replay
    assert again.json() == first.json()
    dates = [v for n, v in again.headers.multi_items() if n == "date"]
    assert len(dates) == 1  # uvicorn's own for the replay, no stored one besides it


def test_a_stored_5xx_is_replayed(served: tuple[Service, str]) -> None:
    service, url = served
    first = _post(url, "fail-1", path="/orders?fail=1")
    again = _post(url, "fail-1", path="/orders?fail=1")
    assert first.status_code == again.status_code == 503
    assert again.headers[REPLAYED_HEADER] == "true"
    assert again.json() == first.json() == {"n": 1}
    assert service.effects["fail-1"] == 1


def test_a_multi_chunk_streamed_response_is_stored_whole(served: tuple[Service, str]) -> None:
    service, url = served
    first = _post(url, "chunks-1", path="/orders?chunks=1")
    again = _post(url, "chunks-1", path="/orders?chunks=1")
    assert first.text == "part0-run1;part1-run1;part2-run1;part3-run1;"
    assert again.text == first.text
    assert again.headers[REPLAYED_HEADER] == "true"
    assert service.effects["chunks-1"] == 1


# -- issue 17, item 3: the client and the middleware together --------------------------------------------------


def test_a_retried_post_through_the_client_executes_once(served: tuple[Service, str]) -> None:
    """Attempt 1 executes but its answer is late (read timeout); attempt 2 finds it in flight (409, Retry-After 1);
    the client waits that Retry-After (the decision for keyed calls) and attempt 3 gets the stored response."""
    service, url = served
    service.gate.clear()
    recorder = Recorder()
    waits: list[tuple[str, float]] = []

    def on_retry(event: object) -> None:
        if isinstance(event, RetryScheduled):
            waits.append((event.reason, event.delay))
            if event.reason == "retry_after":  # the first attempt may finish now; the retry comes after it
                service.gate.set()
                service.wait_finished("/orders", 2)  # attempt 1 (stored) and attempt 2 (the 409), both done

    config = ClientConfig(
        name="orders",
        base_url=url,
        timeouts=Timeouts(connect=WAIT, read=0.3, write=WAIT, pool=WAIT),
        retry=RetryPolicy(max_attempts=4, base_delay=0.01, jitter="none"),
        deadline=None,
        breaker=None,
        budget=None,
        idempotency_methods=frozenset({"POST"}),
    )
    with ResilientClient(config, clock=ManualClock(), hooks=[recorder, on_retry]) as client:
        response = client.post("/orders?hold=1", json={"item": "book"})
    assert response.status_code == 201
    assert response.headers[REPLAYED_HEADER] == "true"
    assert waits == [("backoff", 0.01), ("retry_after", 1.0)]
    assert sum(service.effects.values()) == 1  # three attempts, one execution
    assert [e.status for e in recorder.of(AttemptFinished)] == [None, 409, 201]  # type: ignore[attr-defined]


# -- the answers a client acts on: problem documents, limits at their edges, the key header ------------------------


def _problem(response: httpx.Response) -> dict[str, Any]:
    """The RFC 9457 document of a refusal, after checking its framing."""
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["content-length"]) == len(response.content)
    document: dict[str, Any] = response.json()
    assert document["type"] == "about:blank"
    assert document["status"] == response.status_code
    return document


def _titled(response: httpx.Response) -> tuple[int, str, str]:
    document = _problem(response)
    return response.status_code, document["title"], document["detail"]


def test_every_refusal_is_a_problem_document_that_names_the_callers_key() -> None:
    """400, 409 (in flight; not replayable), 413 and 422, each with its title and detail; the detail quotes the key
    the caller sent, never the stored key (which holds a hash of the caller's credential)."""
    service = Service()
    with serve_in_thread(service.asgi(required=True, max_body_bytes=40, retry_after=2.6)) as url:
        with httpx.Client(base_url=url, timeout=WAIT) as http:
            missing = http.post("/orders", content=b"{}")
            assert _titled(missing) == (400, "Idempotency-Key missing or invalid", "this request needs one")
            assert "retry-after" not in missing.headers
            invalid = http.post("/orders", content=b"{}", headers={"idempotency-key": "two words"})
            detail = "expected one quoted string or token of 1-255 characters"
            assert _titled(invalid) == (400, "Idempotency-Key missing or invalid", detail)
        assert _titled(_big(url, 41)) == (413, "Request body too large", "the limit is 40 bytes")
        assert service.effects["big"] == 0
        assert _post(url, "k-422", auth="Bearer secret-token").status_code == 201
        with httpx.Client(base_url=url, timeout=WAIT) as http:
            changed = http.post(
                "/orders", content=b"{}", headers={"idempotency-key": '"k-422"', "authorization": "Bearer secret-token"}
            )
        assert _titled(changed) == (422, "Idempotency-Key reused", "key 'k-422' was used with a different request")
        service.gate.clear()
        first = threading.Thread(target=_post, args=(url, "k-409"), kwargs={"path": "/orders?hold=1"})
        first.start()
        try:
            assert service.held.wait(WAIT)
            in_flight = _post(url, "k-409", path="/orders?hold=1")
        finally:
            service.gate.set()
            first.join(WAIT)
        detail = "a request with idempotency key 'k-409' is in flight"
        assert _titled(in_flight) == (409, "Request in flight", detail)
        assert in_flight.headers["retry-after"] == "3"  # whole seconds, rounded: 2.6 s
        assert _post(url, "chunks", path="/orders?chunks=1").status_code == 200  # 44 bytes: passed on, not stored
        unreplayable = _post(url, "chunks", path="/orders?chunks=1")
        detail = "the original response was too large to store"
        assert _titled(unreplayable) == (409, "Response not replayable", detail)
        assert "retry-after" not in unreplayable.headers
        assert service.effects["chunks"] == 1


def _big(url: str, size: int) -> httpx.Response:
    with httpx.Client(base_url=url, timeout=WAIT) as http:
        return http.post("/orders", content=b"x" * size, headers={"idempotency-key": "big"})


def test_bodies_exactly_at_the_limit_are_executed_and_stored() -> None:
    """A request of exactly ``max_body_bytes`` is executed; a response of exactly that size is stored and replayed."""
    service = Service()
    body = b"y" * 23  # the app answers {"n":1,"body":"yyy..."}: 17 + 23 = 40 bytes
    with serve_in_thread(service.asgi(max_body_bytes=40)) as url, httpx.Client(base_url=url, timeout=WAIT) as http:
        first = http.post("/orders", content=body, headers={"idempotency-key": "edge"})
        assert first.status_code == 201
        assert len(first.content) == 40
        again = http.post("/orders", content=body, headers={"idempotency-key": "edge"})
        full = http.post("/orders", content=b"z" * 40, headers={"idempotency-key": "full"})
    assert again.status_code == 201
    assert again.headers[REPLAYED_HEADER] == "true"
    assert again.content == first.content
    assert full.status_code == 201
    assert service.effects == Counter({"edge": 1, "full": 1})


def test_a_configured_key_header_is_the_one_guarded() -> None:
    service = Service()
    with serve_in_thread(service.asgi(header="X-Request-Token")) as url:
        first = _post(url, "ignored", **{"x-request-token": "t-1"})
        again = _post(url, "ignored-too", **{"x-request-token": "t-1"})
        plain = [_post(url, "p-1"), _post(url, "p-1")]  # Idempotency-Key is not this service's header
    assert again.headers[REPLAYED_HEADER] == "true"
    assert again.content == first.content
    assert all(REPLAYED_HEADER not in r.headers for r in plain)
    assert service.effects == Counter({"ignored": 1, "p-1": 2})


@pytest.mark.parametrize("value", [-1, True, 1.5, "10"])
def test_max_body_bytes_must_be_a_whole_number_of_bytes(value: Any) -> None:
    with pytest.raises(ValueError, match=f"max_body_bytes must be an int >= 0, got {value!r}"):
        IdempotencyMiddleware(Starlette(), store=MemoryStore(), max_body_bytes=value)
    assert IdempotencyMiddleware(Starlette(), store=MemoryStore(), max_body_bytes=0).max_body_bytes == 0


class LosingStore(MemoryStore):
    """A memory store whose server goes away after the claim: every compare-and-set (complete, release) fails;
    with ``claims=False`` it is down from the start (the claim, an ``add``, fails too)."""

    def __init__(self, clock: ManualClock | None = None, *, claims: bool = True) -> None:
        super().__init__(clock=clock)
        self.claims = claims

    def add(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        if not self.claims:
            raise StoreUnavailable("connection refused", store="losing", operation="add")
        return super().add(key, value, ttl=ttl)

    def compare_and_set(
        self, key: str, expected: bytes | None, value: bytes | None, *, ttl: float | None = None
    ) -> bool:
        raise StoreUnavailable("connection lost", store="losing", operation="compare_and_set")


def test_a_refusal_is_sent_as_asgi_messages_with_lowercase_header_names() -> None:
    """What an outer ASGI middleware sees (Starlette's ``Headers`` compares lowercase names byte for byte)."""
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("a refused request never reaches the app")

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    store = MemoryStore()
    guarded = IdempotencyMiddleware(app, store=store, required=True, retry_after=2)
    anyio.run(guarded, {"type": "http", "method": "POST", "path": "/orders", "headers": []}, receive, send)
    start, body = sent
    assert start["type"] == "http.response.start"
    assert start["status"] == 400
    length = str(len(body["body"])).encode()
    assert start["headers"] == [(b"content-type", b"application/problem+json"), (b"content-length", length)]
    assert body["type"] == "http.response.body"
    sent.clear()  # in flight: another process holds the claim
    IdempotencyGuard(store).begin("-/k", request_fingerprint("POST", "/orders", b""))
    keyed = {"type": "http", "method": "POST", "path": "/orders", "headers": [(b"idempotency-key", b"k")]}
    anyio.run(guarded, keyed, receive, send)
    assert sent[0]["status"] == 409
    assert sent[0]["headers"][2:] == [(b"retry-after", b"2")]
    sent.clear()  # the store is down: 503, retry after a second
    anyio.run(IdempotencyMiddleware(app, store=LosingStore(claims=False)), keyed, receive, send)
    assert sent[0]["status"] == 503
    assert sent[0]["headers"][2:] == [(b"retry-after", b"1")]


def test_the_lease_and_the_ttl_given_are_the_ones_kept() -> None:
    """On one injected clock: a claim older than ``lease`` lapses (a duplicate then executes, as documented), and a
    stored response older than ``ttl`` is forgotten."""
    clock = ManualClock(0.0)
    service = Service(store=MemoryStore(clock=clock))
    with serve_in_thread(service.asgi(clock=clock, lease=30, ttl=100)) as url:
        service.gate.clear()
        first = threading.Thread(target=_post, args=(url, "lease"), kwargs={"path": "/orders?hold=1"})
        first.start()
        try:
            assert service.held.wait(WAIT)
            assert _post(url, "lease", path="/orders?hold=1").status_code == 409
            clock.advance(30)
            assert _post(url, "lease", path="/orders").status_code == 201  # the claim lapsed: executed again
        finally:
            service.gate.set()
            first.join(WAIT)
        assert _post(url, "ttl").status_code == 201
        clock.advance(99)
        assert _post(url, "ttl").headers[REPLAYED_HEADER] == "true"
        clock.advance(1)
        assert REPLAYED_HEADER not in _post(url, "ttl").headers
    assert service.effects == Counter({"lease": 2, "ttl": 2})


def test_a_raw_asgi_response_without_optional_keys_is_stored_whole() -> None:
    """ASGI makes ``headers``, ``body`` and ``more_body`` optional; a response that leaves them out is stored and
    replayed exactly as sent."""
    runs: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        runs.append(1)
        await send({"type": "http.response.start", "status": 202})
        await send({"type": "http.response.body", "body": b"accepted", "more_body": True})
        await send({"type": "http.response.body"})

    guarded = IdempotencyMiddleware(app, store=MemoryStore(clock=ManualClock(0.0)), clock=ManualClock(0.0))

    async def served(scope: Any, receive: Any, send: Any) -> None:  # plainly ASGI 3 to uvicorn, even under mutmut
        await guarded(scope, receive, send)

    with serve_in_thread(served) as url:
        first = _post(url, "raw")
        again = _post(url, "raw")
    assert (first.status_code, first.content) == (202, b"accepted")
    assert (again.status_code, again.content) == (202, b"accepted")
    assert again.headers[REPLAYED_HEADER] == "true"
    assert len(runs) == 1


def test_a_store_lost_after_the_claim_costs_the_client_nothing() -> None:
    """The response cannot be stored: the client still gets it whole; the key stays in flight until the lease
    lapses (no second execution meanwhile)."""
    service = Service(store=LosingStore(clock=ManualClock(0.0)))
    with serve_in_thread(service.asgi()) as url:
        first = _post(url, "lost")
        again = _post(url, "lost")
    assert first.status_code == 201
    assert first.json() == {"n": 1, "body": '{"item":"book"}'}
    assert again.status_code == 409
    assert service.effects["lost"] == 1


def test_an_app_error_is_not_masked_by_a_store_that_cannot_release_the_claim() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("the app failed")

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        raise AssertionError("nothing is sent")

    guarded = IdempotencyMiddleware(app, store=LosingStore(clock=ManualClock(0.0)), clock=ManualClock(0.0))
    scope = {"type": "http", "method": "POST", "path": "/orders", "headers": [(b"idempotency-key", b"k")]}
    with pytest.raises(RuntimeError, match="the app failed"):
        anyio.run(guarded, scope, receive, send)


def test_the_fingerprint_covers_the_raw_target_as_sent() -> None:
    """The path as sent (``%2F`` is not ``/``) and the query belong to the request; the fingerprint is
    ``request_fingerprint(method, "<raw path>?<query>", body)``, so a guard in another process agrees with it."""
    service = Service()
    with serve_in_thread(service.asgi()) as url:
        assert _post(url, "t-1", path="/files/a%2Fb").status_code == 201
        assert _post(url, "t-1", path="/files/a/b").status_code == 422
        assert _post(url, "t-2", path="/orders?x=1").status_code == 201
        assert _post(url, "t-2", path="/other?x=1").status_code == 422
        assert _post(url, "t-3", auth="Bearer x").status_code == 201
    # The stored keys: "-/<key>" for an anonymous caller, "<sha256 of the caller>/<key>" otherwise.
    guard = IdempotencyGuard(service.store, clock=ManualClock(0.0))
    body = b'{"item":"book"}'
    record = guard.begin("-/t-2", request_fingerprint("POST", "/orders?x=1", body))
    assert isinstance(record, IdempotencyRecord)  # the stored response, not a fresh claim
    caller = hashlib.sha256(b"Bearer x").hexdigest()
    assert isinstance(guard.begin(f"{caller}/t-3", request_fingerprint("POST", "/orders", body)), IdempotencyRecord)
    assert service.effects == Counter({"t-1": 1, "t-2": 1, "t-3": 1})
