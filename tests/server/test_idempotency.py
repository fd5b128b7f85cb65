"""Server-side idempotency: key parsing, the guard's rules, the ASGI middleware over real HTTP, the decorator."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from asgi_server import serve_in_thread
from redis_server import free_port
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

from integration_kit import IdempotencyMiddleware, ManualClock, MemoryStore, RedisStore, SQLiteStore, idempotent
from integration_kit.server.errors import IdempotencyKeyReused, RequestInFlight
from integration_kit.server.idempotency import (
    MAX_KEY_LENGTH,
    REPLAYED_HEADER,
    Claim,
    IdempotencyGuard,
    IdempotencyRecord,
    parse_idempotency_key,
    request_fingerprint,
)
from integration_kit.stores import Store

# -- the key header ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ('"8e03978e-40d5-43e8-bc93-6894a57f9324"', "8e03978e-40d5-43e8-bc93-6894a57f9324"),
        ("8e03978e-40d5-43e8-bc93-6894a57f9324", "8e03978e-40d5-43e8-bc93-6894a57f9324"),
        ('  "with space and \\"quote\\" and \\\\"  ', 'with space and "quote" and \\'),
        ("order:42/retry", "order:42/retry"),
        ('"' + "k" * MAX_KEY_LENGTH + '"', "k" * MAX_KEY_LENGTH),
    ],
)
def test_keys_in_structured_field_and_bare_form(raw: str, key: str) -> None:
    assert parse_idempotency_key(raw) == key


@pytest.mark.parametrize(
    "raw",
    [
        "",
        '""',
        '"unclosed',
        '"a" trailing',
        '"bad \\n escape"',
        '"tab\there"',
        "two words",
        "ünicode",
        "a,b",
        "k" * 256,
    ],
)
def test_garbage_keys_are_refused(raw: str) -> None:
    assert parse_idempotency_key(raw) is None


def test_fingerprint_covers_method_target_and_body() -> None:
    base = request_fingerprint("post", "/orders", b"{}")
    assert base.startswith("POST /orders sha256:")
    assert base != request_fingerprint("PATCH", "/orders", b"{}")
    assert base != request_fingerprint("POST", "/orders?x=1", b"{}")
    assert base != request_fingerprint("POST", "/orders", b"{ }")


# -- the guard ------------------------------------------------------------------------------------------------


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(100.0)


@pytest.fixture
def guard(clock: ManualClock) -> IdempotencyGuard:
    return IdempotencyGuard(MemoryStore(clock=clock), ttl=3600, lease=30, clock=clock)


def test_first_claims_duplicate_in_flight_conflicts_then_replays(guard: IdempotencyGuard) -> None:
    claim = guard.begin("k", "fp")
    assert isinstance(claim, Claim)
    with pytest.raises(RequestInFlight) as info:
        guard.begin("k", "fp")
    assert info.value.retry_after == 1.0
    assert guard.complete(claim, b"result")
    record = guard.begin("k", "fp")
    assert isinstance(record, IdempotencyRecord)
    assert record.result == b"result"
    assert record.expires == record.created + 3600


def test_same_key_other_fingerprint_is_refused_in_flight_and_after(guard: IdempotencyGuard) -> None:
    claim = guard.begin("k", "fp")
    assert isinstance(claim, Claim)
    with pytest.raises(IdempotencyKeyReused):
        guard.begin("k", "other")
    guard.complete(claim, b"")
    with pytest.raises(IdempotencyKeyReused):
        guard.begin("k", "other")


def test_a_crashed_claim_lapses_after_the_lease(guard: IdempotencyGuard, clock: ManualClock) -> None:
    crashed = guard.begin("k", "fp")
    assert isinstance(crashed, Claim)
    clock.advance(29.9)
    with pytest.raises(RequestInFlight):
        guard.begin("k", "fp")
    clock.advance(0.2)
    retry = guard.begin("k", "fp")
    assert isinstance(retry, Claim)
    assert not guard.complete(crashed, b"late")  # the slow first executor cannot overwrite the retry's claim
    assert guard.complete(retry, b"retry")


def test_release_lets_a_retry_execute(guard: IdempotencyGuard) -> None:
    claim = guard.begin("k", "fp")
    assert isinstance(claim, Claim)
    assert guard.release(claim)
    assert isinstance(guard.begin("k", "fp"), Claim)


def test_records_expire_after_the_ttl(guard: IdempotencyGuard, clock: ManualClock) -> None:
    claim = guard.begin("k", "fp")
    assert isinstance(claim, Claim)
    guard.complete(claim, b"r")
    clock.advance(3599)
    assert isinstance(guard.begin("k", "fp"), IdempotencyRecord)  # still replayed just before the ttl
    with pytest.raises(IdempotencyKeyReused):  # and another request is still refused with it
        guard.begin("k", "new-payload")
    clock.advance(2)
    assert isinstance(guard.begin("k", "new-payload"), Claim)


def test_guard_validates_its_arguments(clock: ManualClock) -> None:
    with pytest.raises(TypeError):
        IdempotencyGuard(object(), clock=clock)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lease"):
        IdempotencyGuard(MemoryStore(), lease=0)


# -- the middleware, over real HTTP ---------------------------------------------------------------------------


@dataclass
class OrderService:
    """A Starlette app under the middleware, whose side effects and gate the tests control."""

    clock: ManualClock
    effects: Counter[str] = field(default_factory=Counter)
    gate: threading.Event = field(default_factory=threading.Event)
    entered: threading.Event = field(default_factory=threading.Event)

    def app(self) -> Starlette:
        store = MemoryStore(clock=self.clock)
        kwargs: dict[str, Any] = {"store": store, "clock": self.clock, "lease": 30, "max_body_bytes": 1000}

        async def create(request: Request) -> Response:
            body = await request.body()
            key = request.headers.get("idempotency-key", "-")
            self.effects[key] += 1
            if request.query_params.get("wait"):
                self.entered.set()
                await anyio.to_thread.run_sync(self.gate.wait, 10)
            if request.query_params.get("fail"):
                raise RuntimeError("boom")
            if request.query_params.get("big"):
                return PlainTextResponse("x" * 5000)
            n = self.effects[key]
            return JSONResponse({"n": n, "len": len(body)}, status_code=201, headers={"x-run": str(n)})

        async def read(request: Request) -> Response:
            return PlainTextResponse("ok")

        routes = [Route("/orders", create, methods=["POST", "PATCH", "PUT"]), Route("/orders", read, methods=["GET"])]

        def guarded(**extra: Any) -> Starlette:
            return Starlette(routes=routes, middleware=[Middleware(IdempotencyMiddleware, **{**kwargs, **extra})])

        down = RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout=0.2)
        return Starlette(
            routes=[
                Mount("/strict", app=guarded(required=True)),
                Mount("/down", app=guarded(store=down)),
                Mount("/", app=guarded()),
            ]
        )


@pytest.fixture(scope="module")
def service() -> OrderService:
    return OrderService(ManualClock(0.0))


@pytest.fixture(scope="module")
def http(service: OrderService) -> Iterator[httpx.Client]:
    with serve_in_thread(service.app()) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


def _post(
    http: httpx.Client, key: str | None, body: bytes = b'{"item":"book"}', path: str = "/orders"
) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["idempotency-key"] = key
    return http.post(path, content=body, headers=headers)


def test_a_completed_request_is_replayed_identically(http: httpx.Client, service: OrderService) -> None:
    first = _post(http, '"replay-1"')
    second = _post(http, "replay-1")  # bare token: the same key
    assert first.status_code == second.status_code == 201
    assert second.content == first.content
    assert second.headers["x-run"] == first.headers["x-run"] == "1"
    assert second.headers["content-type"] == first.headers["content-type"]
    assert second.headers[REPLAYED_HEADER] == "true"
    assert REPLAYED_HEADER not in first.headers
    assert service.effects['"replay-1"'] == 1
    assert service.effects["replay-1"] == 0


def test_same_key_with_another_body_or_path_is_422(http: httpx.Client) -> None:
    assert _post(http, "reuse").status_code == 201
    changed = _post(http, "reuse", body=b'{"item":"pen"}')
    assert changed.status_code == 422
    assert changed.headers["content-type"] == "application/problem+json"
    assert http.patch("/orders", content=b'{"item":"book"}', headers={"idempotency-key": "reuse"}).status_code == 422
    assert _post(http, "reuse", path="/orders?x=1").status_code == 422


def test_a_duplicate_in_flight_gets_409_with_retry_after(http: httpx.Client, service: OrderService) -> None:
    service.gate.clear()
    service.entered.clear()
    results: list[httpx.Response] = []
    first = threading.Thread(target=lambda: results.append(_post(http, "slow", path="/orders?wait=1")))
    first.start()
    assert service.entered.wait(10)
    duplicate = _post(http, "slow", path="/orders?wait=1")
    assert duplicate.status_code == 409
    assert duplicate.headers["retry-after"] == "1"
    service.gate.set()
    first.join(10)
    assert results[0].status_code == 201
    assert _post(http, "slow", path="/orders?wait=1").content == results[0].content
    assert service.effects["slow"] == 1


def test_missing_key_is_400_only_where_required(http: httpx.Client, service: OrderService) -> None:
    assert _post(http, None, path="/strict/orders").status_code == 400
    assert _post(http, None).status_code == 201
    assert _post(http, None).status_code == 201
    assert service.effects["-"] == 2  # no key, no protection: executed twice
    assert http.get("/strict/orders").text == "ok"  # GET is not guarded


@pytest.mark.parametrize("raw", ['"unclosed', "two words", "k" * 300, '""'])
def test_malformed_keys_are_400(http: httpx.Client, raw: str) -> None:
    response = _post(http, raw)
    assert response.status_code == 400
    assert response.json()["status"] == 400


def test_two_key_headers_are_400(http: httpx.Client) -> None:
    headers = [("idempotency-key", "a"), ("idempotency-key", "b")]
    assert http.post("/orders", content=b"{}", headers=headers).status_code == 400


def test_an_app_error_releases_the_key_for_a_retry(http: httpx.Client, service: OrderService) -> None:
    for _ in range(2):  # uvicorn drops the connection after an app error: a fresh client each time
        with httpx.Client(base_url=http.base_url, timeout=10) as fresh:
            assert _post(fresh, "crash", path="/orders?fail=1").status_code == 500
    assert service.effects["crash"] == 2  # released each time: the retry executed


def test_bodies_over_the_limit(http: httpx.Client, service: OrderService) -> None:
    assert _post(http, "huge-request", body=b"x" * 1001).status_code == 413
    assert service.effects["huge-request"] == 0
    big = _post(http, "huge-response", path="/orders?big=1")
    assert big.status_code == 200
    assert len(big.content) == 5000  # passed through whole, though too large to store
    again = _post(http, "huge-response", path="/orders?big=1")
    assert again.status_code == 409
    assert "retry-after" not in again.headers
    assert service.effects["huge-response"] == 1


def test_an_unreachable_store_answers_503_without_executing(http: httpx.Client, service: OrderService) -> None:
    response = _post(http, "no-store", path="/down/orders")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "about:blank",
        "title": "Idempotency store unavailable",
        "status": 503,
        "detail": "retry later",
    }
    assert service.effects["no-store"] == 0


# -- the decorator --------------------------------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "consumer.db")


@dataclass
class Message:
    message_id: str
    amount: int


def test_a_consumer_runs_once_per_message(store: Store) -> None:
    charges: list[int] = []

    @idempotent(store, key="message_id", fingerprint=lambda m: str(m.amount))
    def consume(message: Message) -> dict[str, int]:
        charges.append(message.amount)
        return {"charged": message.amount, "n": len(charges)}

    assert consume(Message("m1", 5)) == {"charged": 5, "n": 1}
    assert consume(Message("m1", 5)) == {"charged": 5, "n": 1}
    assert charges == [5]
    with pytest.raises(IdempotencyKeyReused):
        consume(Message("m1", 6))
    assert consume.__name__ == "consume"


def test_an_exception_releases_the_key_and_nesting_is_in_flight(store: Store) -> None:
    calls: list[str] = []

    @idempotent(store, key=lambda m: m["id"])
    def consume(message: dict[str, Any]) -> None:
        calls.append(message["id"])
        if message.get("nested"):
            consume(message)  # the same key, while the first run is in flight
        if len(calls) == 1:
            raise ValueError("transient")

    with pytest.raises(ValueError, match="transient"):
        consume({"id": "a"})
    consume({"id": "a"})  # released: runs again
    assert calls == ["a", "a"]
    with pytest.raises(RequestInFlight):
        consume({"id": "b", "nested": True})


def test_async_functions_share_the_core(store: Store) -> None:
    runs: list[str] = []

    @idempotent(store, key="message_id")
    async def consume(message: Message) -> int:
        runs.append(message.message_id)
        await anyio.lowlevel.checkpoint()
        if message.amount < 0:
            raise ValueError("negative")
        return message.amount * 2

    async def main() -> None:
        assert await consume(Message("x", 2)) == 4
        assert await consume(Message("x", 2)) == 4
        with pytest.raises(ValueError, match="negative"):
            await consume(Message("y", -1))
        with pytest.raises(ValueError, match="negative"):
            await consume(Message("y", -1))

    anyio.run(main)
    assert runs == ["x", "y", "y"]
