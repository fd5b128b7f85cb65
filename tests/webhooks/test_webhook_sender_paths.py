"""The webhook sender's less travelled paths, pinned by the mutation sweep of issue 29 (``webhooks/sender.py``):
a delivery refused by the endpoint's breaker or bulkhead (not counted, due again when the breaker may probe, or a
second later), the endpoint disabled (the stored reason, the warning, the event), the log filtered by endpoint,
and the delivery loop (``run``, ``start``): its defaults, the store failing under it, its thread.

Against real parts: loopback endpoints (uvicorn), the SQLite delivery store, a ManualClock for the schedule.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from asgi_server import serve_in_thread
from test_webhook_recovery import SECRET, FlakyEndpoint

import integration_kit
from integration_kit.clock import ManualClock
from integration_kit.errors import StoreUnavailable
from integration_kit.events import Event
from integration_kit.policies.config import BreakerPolicy
from integration_kit.webhooks.delivery_store import DueDelivery, SQLiteDeliveryStore
from integration_kit.webhooks.events import WebhookEndpointDisabled
from integration_kit.webhooks.schedule import RetrySchedule
from integration_kit.webhooks.sender import Endpoint, WebhookSender

T0 = 1_700_000_000.0
SLOW_SCHEDULE = RetrySchedule(delays=(0, 1000, 1000))


@pytest.fixture
def flaky() -> Iterator[tuple[FlakyEndpoint, str]]:
    app = FlakyEndpoint()
    with serve_in_thread(app) as url:
        yield app, url


def _sender(tmp_path: Path, url: str, clock: ManualClock, **endpoint: Any) -> WebhookSender:
    store = SQLiteDeliveryStore(tmp_path / "outbox.db", clock=clock)
    hook = Endpoint("shop", url + "/hooks", (SECRET,), allow_private=True, **endpoint)
    return WebhookSender(store, [hook], clock=clock, workers=1, schedule=SLOW_SCHEDULE)


def test_a_delivery_refused_by_the_open_breaker_waits_for_its_probe_uncounted(
    tmp_path: Path, flaky: tuple[FlakyEndpoint, str]
) -> None:
    app, url = flaky
    clock = ManualClock(T0)
    breaker = BreakerPolicy(failure_threshold=1, failure_rate_threshold=None, wait_in_open=60.0)
    sender = _sender(tmp_path, url, clock, breaker=breaker)
    try:
        app.script.append(500)
        sender.send("order.paid", {"n": 1})
        sender.deliver_due()  # fails: the breaker opens until T0 + 60
        clock.advance(5)
        second = sender.send("order.paid", {"n": 2})
        sender.deliver_due()
        assert sender.log(message_id=second) == []  # a refusal is not an attempt: not logged, not counted
        row = sender.store.delivery(second, "shop")
        assert row is not None
        assert (row["state"], row["attempts"], row["last_status"], row["last_error"]) == (
            "pending",
            0,
            None,
            "CircuitOpenError",
        )
        assert row["next_attempt_at"] == T0 + 60  # when the breaker lets a probe through
        clock.advance(54.5)
        assert sender.deliver_due() == 0
        clock.advance(0.5)
        assert sender.deliver_due() == 1  # the probe: delivered
        assert [(e.attempt, e.outcome) for e in sender.log(message_id=second)] == [(1, "delivered")]
        assert app.statuses == [500, 200]
    finally:
        sender.close()


class HoldingEndpoint:
    """Holds each request until ``release`` is set (at most 5 s), then answers 200."""

    def __init__(self, first: int | None = None) -> None:
        self.release = threading.Event()
        self.seen = 0
        self.first = first  # the status of the first request, answered at once (None: held like the others)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.seen += 1
        status = 200
        if self.seen == 1 and self.first is not None:
            status = self.first
        else:
            with anyio.move_on_after(5):
                while not self.release.is_set():
                    await anyio.sleep(0.01)
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})


def _released_on_refusal(sender: WebhookSender, app: HoldingEndpoint) -> None:
    original = sender._record

    def record(entry: Any, **kwargs: Any) -> None:
        original(entry, **kwargs)
        if entry.outcome == "refused":
            app.release.set()  # the held delivery may finish once the other was refused

    sender._record = record  # type: ignore[method-assign]


def test_a_delivery_refused_by_the_full_bulkhead_is_due_a_second_later(tmp_path: Path) -> None:
    app = HoldingEndpoint()
    clock = ManualClock(T0)
    with serve_in_thread(app) as url:
        store = SQLiteDeliveryStore(tmp_path / "outbox.db", clock=clock)
        hook = Endpoint("shop", url + "/hooks", (SECRET,), allow_private=True, max_concurrent=1)
        sender = WebhookSender(store, [hook], clock=clock, workers=2, schedule=SLOW_SCHEDULE)
        _released_on_refusal(sender, app)
        try:
            ids = [sender.send("order.paid", {"n": n}) for n in range(2)]
            assert sender.deliver_due() == 2
            rows = {m: store.delivery(m, "shop") for m in ids}
            states = sorted((r["state"], r["attempts"], r["last_error"]) for r in rows.values() if r is not None)
            assert states == [("delivered", 1, None), ("pending", 0, "BulkheadFull")]
            [refused] = [r for r in rows.values() if r is not None and r["state"] == "pending"]
            assert refused["next_attempt_at"] == T0 + 1.0
        finally:
            app.release.set()
            sender.close()


def test_a_delivery_refused_while_the_probe_is_out_is_not_due_again_at_once(tmp_path: Path) -> None:
    """Half-open, the breaker's retry time has passed: the refused delivery is still put a moment later, so a
    sender loop cannot claim it again and again within one instant."""
    app = HoldingEndpoint(first=500)
    clock = ManualClock(T0)
    with serve_in_thread(app) as url:
        store = SQLiteDeliveryStore(tmp_path / "outbox.db", clock=clock)
        breaker = BreakerPolicy(
            failure_threshold=1, failure_rate_threshold=None, wait_in_open=60.0, half_open_max_calls=1
        )
        hook = Endpoint("shop", url + "/hooks", (SECRET,), allow_private=True, breaker=breaker)
        sender = WebhookSender(store, [hook], clock=clock, workers=2, schedule=SLOW_SCHEDULE)
        _released_on_refusal(sender, app)
        try:
            sender.send("order.paid", {"n": 0})
            sender.deliver_due()  # 500: open until T0 + 60
            clock.advance(60)
            ids = [sender.send("order.paid", {"n": n}) for n in (1, 2)]
            assert sender.deliver_due() == 2  # one is the probe (held), the other is refused
            rows = [store.delivery(m, "shop") for m in ids]
            [refused] = [r for r in rows if r is not None and r["last_error"] == "CircuitOpenError"]
            assert refused["next_attempt_at"] > T0 + 60
        finally:
            app.release.set()
            sender.close()


def test_a_disabled_endpoint_is_stored_logged_and_announced(
    tmp_path: Path, flaky: tuple[FlakyEndpoint, str], caplog: pytest.LogCaptureFixture
) -> None:
    app, url = flaky
    clock = ManualClock(T0)
    events: list[Event] = []
    sender = _sender(tmp_path, url, clock)
    sender.hooks.append(events.append)
    try:
        app.script.append(410)
        sender.send("order.paid", {"n": 1})
        with caplog.at_level(logging.WARNING, logger="integration_kit.webhooks"):
            sender.deliver_due()
        state = sender.store.endpoint("shop")
        assert (state.enabled, state.disabled_reason) == (False, "gone")
        assert "webhook endpoint shop disabled (gone)" in caplog.messages
        [event] = [e for e in events if isinstance(e, WebhookEndpointDisabled)]
        assert (event.time, event.integration, event.call_id) == (T0, "webhook-shop", 0)
        assert (event.endpoint, event.reason, event.failing_since) == ("shop", "gone", None)
    finally:
        sender.close()


def test_the_log_is_filtered_by_endpoint(tmp_path: Path, flaky: tuple[FlakyEndpoint, str]) -> None:
    _, url = flaky
    clock = ManualClock(T0)
    store = SQLiteDeliveryStore(tmp_path / "outbox.db", clock=clock)
    hooks = [Endpoint(name, f"{url}/{name}", (SECRET,), allow_private=True) for name in ("a", "b")]
    sender = WebhookSender(store, hooks, clock=clock, workers=1)
    try:
        message = sender.send("order.paid", {"n": 1})
        sender.deliver_due()
        assert [e.endpoint_id for e in sender.log(endpoint_id="b")] == ["b"]
        assert sorted(e.endpoint_id for e in sender.log(message_id=message)) == ["a", "b"]
    finally:
        sender.close()


# -- the delivery loop ---------------------------------------------------------------------------------------------


class Passes(threading.Event):
    """A stop event that records how long each idle wait was asked to last, and is set after ``passes`` checks."""

    def __init__(self, passes: int) -> None:
        super().__init__()
        self.left = passes
        self.waits: list[float | None] = []

    def is_set(self) -> bool:
        self.left -= 1
        return self.left < 0

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        return False


class FailingOnce(SQLiteDeliveryStore):
    """A delivery store whose first claim finds the database unreachable; it records each claim's limit."""

    def __init__(self, path: Path, clock: ManualClock) -> None:
        super().__init__(path, clock=clock)
        self.limits: list[int] = []

    def claim_due(self, *, lease: float, limit: int = 100) -> list[DueDelivery]:
        self.limits.append(limit)
        if len(self.limits) == 1:
            raise StoreUnavailable("the database is locked", store="sqlite:test", operation="claim")
        return super().claim_due(lease=lease, limit=limit)


def test_the_loop_survives_a_store_outage_and_waits_poll_seconds_when_idle(
    tmp_path: Path, flaky: tuple[FlakyEndpoint, str], caplog: pytest.LogCaptureFixture
) -> None:
    _, url = flaky
    clock = ManualClock(T0)
    store = FailingOnce(tmp_path / "outbox.db", clock)
    sender = WebhookSender(store, [Endpoint("shop", url, (SECRET,), allow_private=True)], clock=clock, workers=1)
    try:
        sender.send("order.paid", {"n": 1})
        stop = Passes(3)
        with caplog.at_level(logging.WARNING, logger="integration_kit.webhooks"):
            sender.run(stop)  # pass 1: the store fails; pass 2: one delivery; pass 3: nothing due
        assert store.limits == [100, 100, 100]
        assert stop.waits == [0.05, 0.05]  # after the outage, and when idle; not after a busy pass
        [record] = [r for r in caplog.records if r.getMessage() == "webhook delivery store unavailable"]
        assert record.exc_info is not None
        assert isinstance(record.exc_info[1], StoreUnavailable)
        assert store.counts()["delivered"] == 1
    finally:
        sender.close()


def test_start_runs_the_loop_with_its_poll_and_batch(tmp_path: Path) -> None:
    sender = WebhookSender(SQLiteDeliveryStore(tmp_path / "outbox.db"), [], workers=1)
    seen: list[dict[str, Any]] = []

    def run(stop: threading.Event, **kwargs: Any) -> None:
        seen.append(kwargs)
        stop.wait(5)

    sender.run = run  # type: ignore[method-assign]
    before = set(threading.enumerate())
    halt = sender.start(poll=0.2, batch=7)
    [loop] = set(threading.enumerate()) - before
    assert loop.daemon  # a forgotten sender does not keep the process alive
    halt()
    sender.start()()
    assert seen == [{"poll": 0.2, "batch": 7}, {"poll": 0.05, "batch": 100}]


def test_a_started_sender_does_not_keep_the_process_alive(tmp_path: Path) -> None:
    code = (
        "from integration_kit.webhooks.delivery_store import SQLiteDeliveryStore\n"
        "from integration_kit.webhooks.sender import WebhookSender\n"
        f"WebhookSender(SQLiteDeliveryStore({str(tmp_path / 'o.db')!r}), [], workers=1).start(poll=0.05)\n"
        "print('started')\n"
    )
    package = Path(integration_kit.__file__).parents[1]  # the same package as this test's, in the child too
    env = {**os.environ, "PYTHONPATH": str(package)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False, env=env
    )
    assert (done.returncode, done.stdout.strip()) == (0, "started")
