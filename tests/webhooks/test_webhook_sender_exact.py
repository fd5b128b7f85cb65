"""The webhook sender's attempts, exactly (issue 29, the fifth sweep of ``webhooks/sender.py``): what each failed,
disabled or delivered attempt writes to the log and the store (status, error, latency, when it is due again), the
``disable_after`` boundary, the schedule's jitter drawn from the sender's seeded ``rng``, a Retry-After carried by
a ``GaveUp``'s last error, the request each attempt makes (method, path, headers, body), and the sender's wiring
(its defaults, endpoints added, replaced and filtered, the worker pool).

Fast: one loopback endpoint (uvicorn on 127.0.0.1) serves the whole module, each test a SQLite delivery store of
its own, time on a :class:`~integration_kit.clock.ManualClock`.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from asgi_server import request_body, serve_in_thread

from integration_kit.clock import ManualClock
from integration_kit.errors import ConfigurationError, GaveUp, InvalidResponse, RateLimited
from integration_kit.events import AttemptStarted, Event, RetryScheduled
from integration_kit.policies.config import Timeouts
from integration_kit.server.signatures import StandardWebhooks
from integration_kit.webhooks.delivery_store import DueDelivery, SQLiteDeliveryStore
from integration_kit.webhooks.errors import UnsafeDestination
from integration_kit.webhooks.schedule import RetrySchedule
from integration_kit.webhooks.sender import Endpoint, GuardedTransport, WebhookSender

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NEW_SECRET = "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="
T0 = 1_700_000_000.0


class Recorder:
    """Answers each request with the next scripted (status, headers) (200 once the script is empty); records each
    request's method, path, headers and body."""

    def __init__(self) -> None:
        self.script: deque[tuple[int, dict[str, str]]] = deque()
        self.requests: list[dict[str, Any]] = []
        self.answer = b""  # the body of every answer
        self.delay = 0.0  # seconds before each answer
        self.arrived = threading.Event()  # set when a request has been read
        self.gate: threading.Event | None = None  # when given, each answer waits for it (at most 5 s)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await request_body(receive)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.requests.append({"method": scope["method"], "path": scope["path"], "headers": headers, "body": body})
        self.arrived.set()
        status, extra = self.script.popleft() if self.script else (200, {})
        if self.gate is not None:
            with anyio.move_on_after(5):
                while not self.gate.is_set():
                    await anyio.sleep(0.005)
        if self.delay:
            await anyio.sleep(self.delay)
        raw = [(k.encode(), v.encode()) for k, v in extra.items()]
        raw.append((b"content-length", str(len(self.answer)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": self.answer})


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Recorder, str]]:
    app = Recorder()
    with serve_in_thread(app) as url:
        yield app, url


@pytest.fixture
def endpoint(served: tuple[Recorder, str]) -> tuple[Recorder, str]:
    app, url = served
    app.script.clear()
    app.requests.clear()
    app.answer = b""
    app.delay = 0.0
    app.arrived.clear()
    app.gate = None
    return app, url


def _sender(tmp_path: Path, url: str, clock: ManualClock, **options: Any) -> WebhookSender:
    store = SQLiteDeliveryStore(tmp_path / "outbox.db", clock=clock)
    hook = Endpoint("shop", url + "/hooks", (SECRET,), allow_private=True)
    return WebhookSender(store, [hook], clock=clock, **{"workers": 1, **options})


def _send_once(sender: WebhookSender, app: Recorder | None = None, status: int | None = None) -> str:
    """Script ``status`` as ``app``'s next answer (when given), send one message and run one delivery round: its id."""
    if app is not None and status is not None:
        app.script.append((status, {}))
    msg = sender.send("order.paid", {"n": 1})
    sender.deliver_due()
    return msg


def _entries(sender: WebhookSender, msg: str) -> list[tuple[Any, ...]]:
    return [(e.attempt, e.at, e.status, e.latency, e.outcome, e.error) for e in sender.log(message_id=msg)]


# -- _failed: what each failed attempt writes ---------------------------------------------------------------------


def test_a_410_is_logged_with_its_status_error_and_no_latency(tmp_path: Path, endpoint: tuple[Recorder, str]) -> None:
    app, url = endpoint
    clock = ManualClock(T0)
    with closing(_sender(tmp_path, url, clock)) as sender:
        msg = _send_once(sender, app, 410)
        [(attempt, at, status, latency, outcome, error)] = _entries(sender, msg)
        assert (attempt, at, status, latency, outcome) == (1, T0, 410, 0.0, "disabled")
        assert error is not None
        assert error.startswith("ClientError: ")
        assert "410" in error
        assert sender.stats["disabled"] == 1


def test_a_retried_attempt_is_logged_with_its_status_error_and_no_latency(
    tmp_path: Path, endpoint: tuple[Recorder, str]
) -> None:
    app, url = endpoint
    clock = ManualClock(T0)
    events: list[Event] = []
    with closing(
        _sender(tmp_path, url, clock, schedule=RetrySchedule(delays=(0, 10, 10)), hooks=[events.append])
    ) as sender:
        msg = _send_once(sender, app, 500)
        [(attempt, at, status, latency, outcome, error)] = _entries(sender, msg)
        assert (attempt, at, status, latency, outcome) == (1, T0, 500, 0.0, "retry")
        assert error is not None
        assert error.startswith("ServerError: ")
        row = sender.store.delivery(msg, "shop")
        assert row is not None
        assert (row["next_attempt_at"], row["last_status"]) == (T0 + 10, 500)
        [scheduled] = [e for e in events if isinstance(e, RetryScheduled)]
        assert (
            scheduled.time,
            scheduled.integration,
            scheduled.call_id,
            scheduled.attempt,
            scheduled.delay,
            scheduled.reason,
        ) == (
            T0,
            "webhook-shop",
            0,
            1,
            10,
            "schedule",
        )


def test_failing_for_exactly_disable_after_disables_with_the_attempt_s_status_and_error(
    tmp_path: Path, endpoint: tuple[Recorder, str]
) -> None:
    app, url = endpoint
    clock = ManualClock(T0)
    events: list[Event] = []
    schedule = RetrySchedule(delays=(0, 10, 10, 10), disable_after=20)
    with closing(_sender(tmp_path, url, clock, schedule=schedule, hooks=[events.append])) as sender:
        app.script.extend([(500, {})] * 3)
        msg = sender.send("order.paid", {"n": 1})
        for _ in range(3):
            sender.deliver_due()
            clock.advance(10)
        entries = _entries(sender, msg)
        assert [(e[0], e[2], e[4]) for e in entries] == [(1, 500, "retry"), (2, 500, "retry"), (3, 500, "disabled")]
        assert entries[2][1] == T0 + 20  # exactly disable_after since the first failure: disabled
        assert entries[2][5] is not None
        assert entries[2][5].startswith("ServerError: ")
        assert sender.store.endpoint("shop").enabled is False


def test_an_exhausted_schedule_logs_the_last_attempt_s_status_and_error(
    tmp_path: Path, endpoint: tuple[Recorder, str]
) -> None:
    app, url = endpoint
    clock = ManualClock(T0)
    with closing(_sender(tmp_path, url, clock, schedule=RetrySchedule(delays=(0,)))) as sender:
        msg = _send_once(sender, app, 502)
        [(attempt, _, status, latency, outcome, error)] = _entries(sender, msg)
        assert (attempt, status, latency, outcome) == (1, 502, 0.0, "failed")
        assert error is not None
        assert error.startswith("ServerError: ")
        assert sender.stats["failed"] == 1


def test_the_schedule_s_jitter_is_drawn_from_the_sender_s_rng(tmp_path: Path, endpoint: tuple[Recorder, str]) -> None:
    app, url = endpoint
    clock = ManualClock(T0)
    schedule = RetrySchedule(delays=(0, 100, 100), jitter=0.5)
    with closing(_sender(tmp_path, url, clock, schedule=schedule, rng=random.Random(7))) as sender:
        msg = _send_once(sender, app, 500)
        row = sender.store.delivery(msg, "shop")
        assert row is not None
        expected = schedule.next_delay(1, rng=random.Random(7))
        assert expected is not None
        assert expected != 100
        assert row["next_attempt_at"] - T0 == pytest.approx(expected, abs=1e-6)  # not approx(T0 + ...): 1e-6 of T0


def test_a_gave_up_s_last_error_retry_after_is_honoured(tmp_path: Path, endpoint: tuple[Recorder, str]) -> None:
    """The client is configured never to retry, so it raises the attempt's own error; a ``GaveUp`` (a client that
    did retry) is still read for its last attempt's Retry-After."""
    _, url = endpoint
    clock = ManualClock(T0)
    events: list[Event] = []
    with closing(
        _sender(tmp_path, url, clock, schedule=RetrySchedule(delays=(0, 10, 10)), hooks=[events.append])
    ) as sender:
        msg = sender.send("order.paid", {"n": 1})
        [due] = sender.store.claim_due(lease=60)
        last = RateLimited("429 Too Many Requests", status=429, retry_after=500.0)
        sender._failed(sender.endpoints["shop"], due, GaveUp("gave up", last_error=last), T0)
        row = sender.store.delivery(msg, "shop")
        assert row is not None
        assert (row["next_attempt_at"], row["last_status"]) == (T0 + 500, 429)
        assert [(e.delay, e.reason) for e in events if isinstance(e, RetryScheduled)] == [(500, "retry_after")]


# -- _deliver and send: the request each attempt makes, and what a delivery writes --------------------------------


def test_a_delivery_is_one_signed_json_post_logged_with_its_status(
    tmp_path: Path, endpoint: tuple[Recorder, str]
) -> None:
    app, url = endpoint
    clock = ManualClock(T0)
    with closing(_sender(tmp_path, url, clock)) as sender:
        sender.store.set_failing("shop", T0 - 50)  # failing until this delivery
        msg = sender.send("order.paid", {"n": 1})
        assert msg.startswith("msg_")
        assert len(msg) == len("msg_") + 32
        assert sender.deliver_due() == 1
        [request] = app.requests
        assert (request["method"], request["path"]) == ("POST", "/hooks")
        body = request["body"]
        assert json.loads(body) == {"type": "order.paid", "timestamp": "2023-11-14T22:13:20Z", "data": {"n": 1}}
        headers = request["headers"]
        assert headers["content-type"] == "application/json"
        assert headers["user-agent"] == "integration_kit-webhooks"
        assert (headers["webhook-id"], headers["webhook-timestamp"]) == (msg, str(int(T0)))
        verified = StandardWebhooks((SECRET,), clock=clock).verify(headers, body)
        assert verified.id == msg
        assert _entries(sender, msg) == [(1, T0, 200, 0.0, "delivered", None)]
        assert sender.store.endpoint("shop").failing_since is None
        assert sender.stats == {"delivered": 1}


def test_bytes_are_sent_as_they_are_under_the_id_given(tmp_path: Path, endpoint: tuple[Recorder, str]) -> None:
    app, url = endpoint
    clock = ManualClock(T0)
    with closing(_sender(tmp_path, url, clock)) as sender:
        assert sender.send("raw", b'{"already": "encoded"}', msg_id="msg_fixed") == "msg_fixed"
        sender.deliver_due()
        [request] = app.requests
        assert request["body"] == b'{"already": "encoded"}'
        assert request["headers"]["webhook-id"] == "msg_fixed"


def test_a_message_goes_to_the_subscribed_or_named_endpoints_only(
    tmp_path: Path, endpoint: tuple[Recorder, str]
) -> None:
    app, url = endpoint
    clock = ManualClock(T0)
    store = SQLiteDeliveryStore(tmp_path / "outbox.db", clock=clock)
    hooks = [
        Endpoint("all", url + "/all", (SECRET,), allow_private=True),
        Endpoint("paid", url + "/paid", (SECRET,), allow_private=True, event_types=frozenset({"order.paid"})),
    ]
    sender = WebhookSender(store, hooks, clock=clock, workers=1)
    try:
        created = sender.send("order.created", {"n": 1})
        paid = sender.send("order.paid", {"n": 2})
        named = sender.send("order.created", {"n": 3}, endpoints=["paid"])
        assert store.delivery(created, "all") is not None
        assert store.delivery(created, "paid") is None
        assert store.delivery(paid, "all") is not None
        assert store.delivery(paid, "paid") is not None
        assert store.delivery(named, "all") is None
        assert store.delivery(named, "paid") is not None
        with pytest.raises(ConfigurationError) as caught:
            sender.send("order.paid", {"n": 4}, endpoints=["paid", "nope", "gone"])
        assert str(caught.value) == "unknown webhook endpoints: 'nope', 'gone'"
        assert sender.deliver_due() == 4
        assert sorted(r["path"] for r in app.requests) == ["/all", "/all", "/paid", "/paid"]
    finally:
        sender.close()


def test_a_delivery_for_an_unknown_or_disabled_endpoint_is_logged_disabled_without_a_request(
    tmp_path: Path, endpoint: tuple[Recorder, str]
) -> None:
    app, url = endpoint
    clock = ManualClock(T0)
    with closing(_sender(tmp_path, url, clock)) as sender:
        msg = sender.send("order.paid", {"n": 1})
        [due] = sender.store.claim_due(lease=60)
        sender.store.disable("shop", "by hand")  # after the claim: the claimed delivery is still attempted
        sender._deliver(due)
        assert _entries(sender, msg) == [(1, T0, None, 0.0, "disabled", "endpoint disabled")]
        other = WebhookSender(sender.store, [], clock=clock, workers=1)  # a worker that does not know "shop"
        sender.store.enable("shop")
        assert other.deliver_due() == 1
        assert _entries(sender, msg)[1] == (2, T0, None, 0.0, "disabled", "unknown endpoint")
        assert app.requests == []
        assert other.stats == {"disabled": 1}


def test_a_hook_that_fails_on_the_sender_s_event_is_logged_on_the_webhooks_logger(
    tmp_path: Path, endpoint: tuple[Recorder, str], caplog: pytest.LogCaptureFixture
) -> None:
    app, url = endpoint
    clock = ManualClock(T0)

    def hook(event: Event) -> None:
        if isinstance(event, RetryScheduled):
            raise RuntimeError("hook broke")

    with closing(_sender(tmp_path, url, clock, schedule=RetrySchedule(delays=(0, 10)), hooks=[hook])) as sender:
        app.script.append((500, {}))
        msg = sender.send("order.paid", {"n": 1})
        with caplog.at_level(logging.WARNING):
            sender.deliver_due()
        assert [e[4] for e in _entries(sender, msg)] == ["retry"]
        failed = [r for r in caplog.records if "failed on retry_scheduled" in r.getMessage()]
        assert [r.name for r in failed] == ["integration_kit.webhooks"]


# -- GuardedTransport ---------------------------------------------------------------------------------------------


def test_the_guarded_transport_refuses_private_addresses_by_default(endpoint: tuple[Recorder, str]) -> None:
    app, url = endpoint
    with httpx.Client(transport=GuardedTransport()) as client, pytest.raises(UnsafeDestination):
        client.post(url + "/hooks", content=b"{}")
    assert app.requests == []
    with httpx.Client(transport=GuardedTransport(allow_private=True)) as client:  # its own HTTP transport
        assert client.post(url + "/hooks", content=b"{}").status_code == 200
    assert [r["body"] for r in app.requests] == [b"{}"]


def test_the_guarded_transport_sends_to_the_checked_address_through_the_inner_transport() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    lookups: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> list[str]:
        lookups.append((host, port))
        return ["93.184.216.34"]

    transport = GuardedTransport(resolver=resolver, inner=httpx.MockTransport(answer))
    with httpx.Client(transport=transport) as client:
        response = client.post("https://hooks.example.com:8443/in?x=1", content=b"{}", headers={"a": "b"})
    assert response.status_code == 204
    assert lookups == [("hooks.example.com", 8443)]
    [request] = seen
    assert str(request.url) == "https://93.184.216.34:8443/in?x=1"
    assert request.headers["host"] == "hooks.example.com:8443"
    assert request.headers["a"] == "b"
    assert request.extensions["sni_hostname"] == "hooks.example.com"
    assert "timeout" in request.extensions  # the caller's extensions are kept beside the server name


# -- add_endpoint: each endpoint's client -------------------------------------------------------------------------


def test_an_endpoint_s_client_is_named_after_it_and_reports_to_the_sender_s_hooks(
    tmp_path: Path, endpoint: tuple[Recorder, str]
) -> None:
    _, url = endpoint
    clock = ManualClock(T0)
    events: list[Event] = []
    store = SQLiteDeliveryStore(tmp_path / "outbox.db", clock=clock)
    hook = Endpoint("my shop", url + "/hooks", (SECRET,), allow_private=True)
    sender = WebhookSender(store, [hook], clock=clock, workers=1, hooks=[events.append])
    try:
        sender.send("order.paid", {"n": 1})
        sender.deliver_due()
        started = [e for e in events if isinstance(e, AttemptStarted)]
        assert [(e.integration, e.method) for e in started] == [("webhook-my-shop", "POST")]
        assert started[0].timeout is None  # what is left of the call's deadline: it has none
    finally:
        sender.close()


def test_an_attempt_has_no_deadline_and_its_latency_is_on_the_sender_s_clock(
    tmp_path: Path, endpoint: tuple[Recorder, str]
) -> None:
    """A ClientConfig's default deadline is 30 s: the sender's attempts have none (only the phase timeouts)."""
    _, url = endpoint
    clock = ManualClock(T0)

    def slow(event: Event) -> None:
        if isinstance(event, AttemptStarted):
            clock.advance(40)  # the attempt "takes" 40 s on the sender's clock

    with closing(_sender(tmp_path, url, clock, hooks=[slow])) as sender:
        msg = _send_once(sender)
        assert _entries(sender, msg) == [(1, T0, 200, 40.0, "delivered", None)]


def test_an_answer_is_read_up_to_64_kib(tmp_path: Path, endpoint: tuple[Recorder, str]) -> None:
    app, url = endpoint
    clock = ManualClock(T0)
    with closing(_sender(tmp_path, url, clock, schedule=RetrySchedule(delays=(0, 10)))) as sender:
        app.answer = b"x" * (64 * 1024)
        fits = sender.send("order.paid", {"n": 1})
        sender.deliver_due()
        assert [e[4] for e in _entries(sender, fits)] == ["delivered"]
        app.answer = b"x" * (64 * 1024 + 1)
        large = sender.send("order.paid", {"n": 2})
        sender.deliver_due()
        [entry] = _entries(sender, large)
        assert entry[4] == "retry"
        assert entry[5] is not None
        assert entry[5].startswith("ResponseTooLarge")


def test_an_endpoint_s_own_timeouts_bound_its_attempts(tmp_path: Path, endpoint: tuple[Recorder, str]) -> None:
    app, url = endpoint
    clock = ManualClock(T0)
    store = SQLiteDeliveryStore(tmp_path / "outbox.db", clock=clock)
    quick = Timeouts(connect=1.0, read=0.1, write=1.0, pool=1.0)
    hook = Endpoint("shop", url + "/hooks", (SECRET,), allow_private=True, timeouts=quick)
    sender = WebhookSender(store, [hook], clock=clock, workers=1)
    try:
        app.delay = 0.5
        msg = _send_once(sender)
        [entry] = _entries(sender, msg)
        assert (entry[2], entry[4]) == (None, "retry")
        assert entry[5] is not None
        assert entry[5].startswith("ReadTimeout")
        assert len(app.requests) == 1  # one attempt per due delivery: the client never retries
    finally:
        sender.close()


def test_a_replaced_endpoint_signs_with_its_new_secret_and_its_old_client_is_closed(
    tmp_path: Path, endpoint: tuple[Recorder, str]
) -> None:
    app, url = endpoint
    clock = ManualClock(T0)
    with closing(_sender(tmp_path, url, clock)) as sender:
        old = sender._clients["shop"]
        sender.add_endpoint(Endpoint("shop", url + "/v2", (NEW_SECRET,), allow_private=True))
        with pytest.raises(InvalidResponse) as caught:  # closed: httpx refuses to send on it
            old.request("POST", url + "/hooks", content=b"{}")
        assert "closed" in str(caught.value.__cause__)
        msg = _send_once(sender)
        [request] = app.requests
        assert request["path"] == "/v2"
        assert StandardWebhooks((NEW_SECRET,), clock=clock).verify(request["headers"], request["body"]).id == msg
        assert sender.endpoints["shop"].url == url + "/v2"


def test_an_endpoint_replaced_during_an_attempt_lets_the_attempt_finish_then_closes_its_old_client(
    tmp_path: Path, endpoint: tuple[Recorder, str]
) -> None:
    """A secret rotation while a delivery is under way: the old client was closed under the attempt, which the
    receiver had read whole (a duplicate on retry), was logged a failure and marked the endpoint failing."""
    app, url = endpoint
    clock = ManualClock(T0)
    sender = _sender(tmp_path, url, clock)
    app.gate = threading.Event()
    try:
        msg = sender.send("order.paid", {"n": 1})
        old = sender._clients["shop"]
        worker = threading.Thread(target=sender.deliver_due)
        worker.start()
        assert app.arrived.wait(5)
        sender.add_endpoint(Endpoint("shop", url + "/hooks", (NEW_SECRET,), allow_private=True))
        app.gate.set()
        worker.join(5)
        assert _entries(sender, msg) == [(1, T0, 200, 0.0, "delivered", None)]
        assert sender.store.endpoint("shop").failing_since is None
        with pytest.raises(InvalidResponse):  # closed once its attempt ended
            old.request("POST", url + "/hooks", content=b"{}")
        assert sender._users == {}
        assert sender._retired == set()
    finally:
        sender.close()


class CountingTransport(httpx.HTTPTransport):
    """A real HTTP transport that counts the requests it sends and the times it is closed."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0
        self.closed = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        return super().handle_request(request)

    def close(self) -> None:
        self.closed += 1
        super().close()


def test_a_transport_given_carries_every_attempt_and_is_never_closed_by_a_replacement(
    tmp_path: Path, endpoint: tuple[Recorder, str]
) -> None:
    app, url = endpoint
    clock = ManualClock(T0)
    shared = CountingTransport()
    with closing(_sender(tmp_path, url, clock, transport=shared)) as sender:
        sender.add_endpoint(Endpoint("shop", url + "/v2", (SECRET,), allow_private=True))
        assert shared.closed == 0
        msg = _send_once(sender)
        assert _entries(sender, msg)[0][4] == "delivered"
        assert [r["path"] for r in app.requests] == ["/v2"]
        assert shared.sent == 1
        shared.close()


# -- deliver_due and the sender's defaults ------------------------------------------------------------------------


class ClaimSpy(SQLiteDeliveryStore):
    """A SQLite delivery store that records each claim's lease and limit."""

    claims: list[tuple[float, int]]

    def claim_due(self, *, lease: float, limit: int = 100) -> list[DueDelivery]:
        self.claims.append((lease, limit))
        return super().claim_due(lease=lease, limit=limit)


def test_deliver_due_claims_for_the_lease_up_to_the_limit(tmp_path: Path, endpoint: tuple[Recorder, str]) -> None:
    _, url = endpoint
    clock = ManualClock(T0)
    store = ClaimSpy(tmp_path / "outbox.db", clock=clock)
    store.claims = []
    hook = Endpoint("shop", url + "/hooks", (SECRET,), allow_private=True)
    sender = WebhookSender(store, [hook], clock=clock, workers=1)
    other = WebhookSender(store, [hook], clock=clock, workers=1, lease=30.0)
    try:
        for i in range(3):
            sender.send("order.paid", {"n": i})
        assert sender.deliver_due(limit=2) == 2
        assert sender.deliver_due() == 1
        assert other.deliver_due() == 0
        assert store.claims == [(120.0, 2), (120.0, 100), (30.0, 100)]
        assert (sender.workers, other.workers) == (1, 1)
        assert WebhookSender(store, []).workers == 4
    finally:
        sender.close()
        other.close()


def _threads(tmp_path: Path, url: str, workers: int, count: int) -> set[str]:
    clock = ManualClock(T0)
    names: set[str] = set()

    def where(event: Event) -> None:
        if isinstance(event, AttemptStarted):
            names.add(threading.current_thread().name.split("_")[0])

    with closing(_sender(tmp_path, url, clock, workers=workers, hooks=[where])) as sender:
        for i in range(count):
            sender.send("order.paid", {"n": i})
        assert sender.deliver_due() == count
        assert sender.stats == {"delivered": count}
    return names


def test_attempts_run_on_the_worker_pool_only_when_there_are_workers_and_attempts_to_share(
    tmp_path: Path, endpoint: tuple[Recorder, str]
) -> None:
    _, url = endpoint
    for n, (workers, count) in enumerate([(1, 3), (2, 1), (2, 2)]):
        (tmp_path / str(n)).mkdir()
        names = _threads(tmp_path / str(n), url, workers, count)
        assert names == ({"webhooks"} if (workers, count) == (2, 2) else {threading.current_thread().name})


def test_a_429_is_one_attempt_due_again_after_its_retry_after(tmp_path: Path, endpoint: tuple[Recorder, str]) -> None:
    """The endpoint's client never retries, even what a client would retry (a 429 with a short Retry-After): the
    schedule in the store does, so the wait survives a restart."""
    app, url = endpoint
    clock = ManualClock(T0)
    with closing(_sender(tmp_path, url, clock, schedule=RetrySchedule(delays=(0, 1, 1)))) as sender:
        app.script.extend([(429, {"retry-after": "2"}), (429, {"retry-after": "2"})])
        msg = _send_once(sender)
        assert len(app.requests) == 1
        assert [(e[2], e[4]) for e in _entries(sender, msg)] == [(429, "retry")]
        row = sender.store.delivery(msg, "shop")
        assert row is not None
        assert row["next_attempt_at"] == T0 + 2


def test_without_an_rng_the_schedule_s_jitter_still_spreads_the_retries(
    tmp_path: Path, endpoint: tuple[Recorder, str]
) -> None:
    app, url = endpoint
    clock = ManualClock(T0)
    schedule = RetrySchedule(delays=(0, 100, 100), jitter=0.5)
    with closing(_sender(tmp_path, url, clock, schedule=schedule)) as sender:
        app.script.extend([(500, {})] * 3)
        ids = [sender.send("order.paid", {"n": i}) for i in range(3)]
        sender.deliver_due()
        due = [(sender.store.delivery(i, "shop") or {})["next_attempt_at"] - T0 for i in ids]
        assert all(50 <= d <= 150 for d in due)
        assert len(set(due)) == 3  # each drawn afresh: never the bare schedule


# -- Endpoint -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "a\nb", "tab\there"])
def test_an_endpoint_id_must_be_a_printable_name(name: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Endpoint(name, "https://x.test/", (SECRET,))
    assert str(caught.value) == f"Endpoint.id must be a printable name, got {name!r}"


def test_one_secret_may_be_given_as_a_string() -> None:
    endpoint = Endpoint("shop", "https://x.test/", SECRET)  # type: ignore[arg-type]
    assert endpoint.secrets == (SECRET,)
    assert Endpoint("shop", "https://x.test/", (SECRET, NEW_SECRET)).secrets == (SECRET, NEW_SECRET)


def test_the_worker_pool_has_as_many_threads_as_workers(tmp_path: Path, endpoint: tuple[Recorder, str]) -> None:
    _, url = endpoint
    clock = ManualClock(T0)
    names: set[str] = set()
    lock = threading.Lock()

    def where(event: Event) -> None:
        if isinstance(event, AttemptStarted):
            with lock:
                names.add(threading.current_thread().name)

    with closing(_sender(tmp_path, url, clock, workers=2, hooks=[where])) as sender:
        for i in range(6):
            sender.send("order.paid", {"n": i})
        assert sender.deliver_due() == 6  # six attempts submitted at once: a larger pool would start more threads
        assert names <= {"webhooks_0", "webhooks_1"}
        assert sender.stats == {"delivered": 6}
