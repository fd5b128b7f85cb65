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
import random
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgi_server import serve_in_thread

from integration_kit.clock import ManualClock
from integration_kit.errors import ConfigurationError, GaveUp, RateLimited
from integration_kit.events import Event, RetryScheduled
from integration_kit.server.signatures import StandardWebhooks
from integration_kit.webhooks.delivery_store import SQLiteDeliveryStore
from integration_kit.webhooks.schedule import RetrySchedule
from integration_kit.webhooks.sender import Endpoint, WebhookSender

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
T0 = 1_700_000_000.0


class Recorder:
    """Answers each request with the next scripted (status, headers) (200 once the script is empty); records each
    request's method, path, headers and body."""

    def __init__(self) -> None:
        self.script: deque[tuple[int, dict[str, str]]] = deque()
        self.requests: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.requests.append({"method": scope["method"], "path": scope["path"], "headers": headers, "body": body})
        status, extra = self.script.popleft() if self.script else (200, {})
        raw = [(k.encode(), v.encode()) for k, v in extra.items()] + [(b"content-length", b"0")]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": b""})


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
    return app, url


def _sender(tmp_path: Path, url: str, clock: ManualClock, **options: Any) -> WebhookSender:
    store = SQLiteDeliveryStore(tmp_path / "outbox.db", clock=clock)
    hook = Endpoint("shop", url + "/hooks", (SECRET,), allow_private=True)
    return WebhookSender(store, [hook], clock=clock, **{"workers": 1, **options})


def _entries(sender: WebhookSender, msg: str) -> list[tuple[Any, ...]]:
    return [(e.attempt, e.at, e.status, e.latency, e.outcome, e.error) for e in sender.log(message_id=msg)]


# -- _failed: what each failed attempt writes ---------------------------------------------------------------------


def test_a_410_is_logged_with_its_status_error_and_no_latency(tmp_path: Path, endpoint: tuple[Recorder, str]) -> None:
    app, url = endpoint
    clock = ManualClock(T0)
    sender = _sender(tmp_path, url, clock)
    try:
        app.script.append((410, {}))
        msg = sender.send("order.paid", {"n": 1})
        sender.deliver_due()
        [(attempt, at, status, latency, outcome, error)] = _entries(sender, msg)
        assert (attempt, at, status, latency, outcome) == (1, T0, 410, 0.0, "disabled")
        assert error is not None
        assert error.startswith("ClientError: ")
        assert "410" in error
        assert sender.stats["disabled"] == 1
    finally:
        sender.close()


def test_a_retried_attempt_is_logged_with_its_status_error_and_no_latency(
    tmp_path: Path, endpoint: tuple[Recorder, str]
) -> None:
    app, url = endpoint
    clock = ManualClock(T0)
    events: list[Event] = []
    sender = _sender(tmp_path, url, clock, schedule=RetrySchedule(delays=(0, 10, 10)), hooks=[events.append])
    try:
        app.script.append((500, {}))
        msg = sender.send("order.paid", {"n": 1})
        sender.deliver_due()
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
    finally:
        sender.close()


def test_failing_for_exactly_disable_after_disables_with_the_attempt_s_status_and_error(
    tmp_path: Path, endpoint: tuple[Recorder, str]
) -> None:
    app, url = endpoint
    clock = ManualClock(T0)
    events: list[Event] = []
    schedule = RetrySchedule(delays=(0, 10, 10, 10), disable_after=20)
    sender = _sender(tmp_path, url, clock, schedule=schedule, hooks=[events.append])
    try:
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
    finally:
        sender.close()


def test_an_exhausted_schedule_logs_the_last_attempt_s_status_and_error(
    tmp_path: Path, endpoint: tuple[Recorder, str]
) -> None:
    app, url = endpoint
    clock = ManualClock(T0)
    sender = _sender(tmp_path, url, clock, schedule=RetrySchedule(delays=(0,)))
    try:
        app.script.append((502, {}))
        msg = sender.send("order.paid", {"n": 1})
        sender.deliver_due()
        [(attempt, _, status, latency, outcome, error)] = _entries(sender, msg)
        assert (attempt, status, latency, outcome) == (1, 502, 0.0, "failed")
        assert error is not None
        assert error.startswith("ServerError: ")
        assert sender.stats["failed"] == 1
    finally:
        sender.close()


def test_the_schedule_s_jitter_is_drawn_from_the_sender_s_rng(tmp_path: Path, endpoint: tuple[Recorder, str]) -> None:
    app, url = endpoint
    clock = ManualClock(T0)
    schedule = RetrySchedule(delays=(0, 100, 100), jitter=0.5)
    sender = _sender(tmp_path, url, clock, schedule=schedule, rng=random.Random(7))
    try:
        app.script.append((500, {}))
        msg = sender.send("order.paid", {"n": 1})
        sender.deliver_due()
        row = sender.store.delivery(msg, "shop")
        assert row is not None
        expected = schedule.next_delay(1, rng=random.Random(7))
        assert expected is not None
        assert expected != 100
        assert row["next_attempt_at"] == pytest.approx(T0 + expected)
    finally:
        sender.close()


def test_a_gave_up_s_last_error_retry_after_is_honoured(tmp_path: Path, endpoint: tuple[Recorder, str]) -> None:
    """The client is configured never to retry, so it raises the attempt's own error; a ``GaveUp`` (a client that
    did retry) is still read for its last attempt's Retry-After."""
    _, url = endpoint
    clock = ManualClock(T0)
    events: list[Event] = []
    sender = _sender(tmp_path, url, clock, schedule=RetrySchedule(delays=(0, 10, 10)), hooks=[events.append])
    try:
        msg = sender.send("order.paid", {"n": 1})
        [due] = sender.store.claim_due(lease=60)
        last = RateLimited("429 Too Many Requests", status=429, retry_after=500.0)
        sender._failed(sender.endpoints["shop"], due, GaveUp("gave up", last_error=last), T0)
        row = sender.store.delivery(msg, "shop")
        assert row is not None
        assert (row["next_attempt_at"], row["last_status"]) == (T0 + 500, 429)
        assert [(e.delay, e.reason) for e in events if isinstance(e, RetryScheduled)] == [(500, "retry_after")]
    finally:
        sender.close()


# -- _deliver and send: the request each attempt makes, and what a delivery writes --------------------------------


def test_a_delivery_is_one_signed_json_post_logged_with_its_status(
    tmp_path: Path, endpoint: tuple[Recorder, str]
) -> None:
    app, url = endpoint
    clock = ManualClock(T0)
    sender = _sender(tmp_path, url, clock)
    try:
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
    finally:
        sender.close()


def test_bytes_are_sent_as_they_are_under_the_id_given(tmp_path: Path, endpoint: tuple[Recorder, str]) -> None:
    app, url = endpoint
    clock = ManualClock(T0)
    sender = _sender(tmp_path, url, clock)
    try:
        assert sender.send("raw", b'{"already": "encoded"}', msg_id="msg_fixed") == "msg_fixed"
        sender.deliver_due()
        [request] = app.requests
        assert request["body"] == b'{"already": "encoded"}'
        assert request["headers"]["webhook-id"] == "msg_fixed"
    finally:
        sender.close()


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
    sender = _sender(tmp_path, url, clock)
    try:
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
    finally:
        sender.close()
