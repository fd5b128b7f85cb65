"""The webhook receiver over real sockets (uvicorn on 127.0.0.1), the SQLite inbox, and processing behind it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import svix.webhooks
from asgi_server import serve_in_thread

from integration_kit.clock import ManualClock, WallClock
from integration_kit.errors import StoreUnavailable
from integration_kit.policies.config import RetryPolicy
from integration_kit.server.inbox import InboxEvent, InboxState, SQLiteInbox
from integration_kit.server.signatures import GitHubSignature, StandardWebhooks
from integration_kit.server.webhook_processor import OrderingGuard, WebhookProcessor
from integration_kit.server.webhook_receiver import WebhookReceiver
from integration_kit.stores import MemoryStore

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ROTATED = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="


@pytest.fixture
def inbox(tmp_path: Path) -> Iterator[SQLiteInbox]:
    with_inbox = SQLiteInbox(tmp_path / "inbox.db")
    yield with_inbox
    with_inbox.close()


@pytest.fixture
def receiver(inbox: SQLiteInbox) -> WebhookReceiver:
    return WebhookReceiver(StandardWebhooks([SECRET, ROTATED]), inbox, source="orders")


def post(url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(url, content=body, headers={"content-type": "application/json", **headers}, timeout=10)


def test_accepts_then_suppresses_duplicates_and_rejects_forgeries(
    receiver: WebhookReceiver, inbox: SQLiteInbox
) -> None:
    signer = StandardWebhooks(SECRET)
    body = json.dumps({"type": "order.created", "id": 1}).encode()
    with serve_in_thread(receiver) as url:
        first = post(url, body, signer.sign(body, msg_id="msg_1"))
        again = post(url, body, signer.sign(body, msg_id="msg_1"))  # a sender retry: same id, new timestamp
        forged = post(
            url, body, StandardWebhooks("whsec_" + "Zm9yZ2VkIHNlY3JldCBmb3IgdGVzdHM=").sign(body, msg_id="m2")
        )
        old = post(url, body, signer.sign(body, msg_id="msg_3", timestamp=int(WallClock().now()) - 3600))
        missing = post(url, body, {"webhook-id": "msg_4"})
        rotated = post(url, body, StandardWebhooks(ROTATED).sign(body, msg_id="msg_5"))
        wrong_method = httpx.get(url)
        too_big = post(url, b"x" * (2 << 20), signer.sign(b"", msg_id="msg_6"))
    assert (first.status_code, first.json()["status"]) == (200, "accepted")
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    assert forged.status_code == 401
    assert "secret" not in forged.text.lower().replace("active secret", "")
    assert old.status_code == 401
    assert forged.headers["content-type"] == "application/problem+json"
    assert missing.status_code == 400
    assert rotated.status_code == 200
    assert wrong_method.status_code == 405
    assert too_big.status_code == 413
    assert inbox.counts()[InboxState.PENDING] == 2
    stored = inbox.get("msg_1")
    assert stored is not None
    assert stored.deliveries == 2
    assert stored.body == body
    assert set(stored.meta) == {"content-type", "webhook-timestamp", "user-agent"}  # never the signature
    assert receiver.stats["accepted"] == 2
    assert receiver.stats["duplicate"] == 1
    assert receiver.stats["rejected:SignatureMismatch"] == 1
    assert receiver.stats["rejected:TimestampOutsideTolerance"] == 1


def test_github_delivery_id_is_the_dedup_key(inbox: SQLiteInbox) -> None:
    scheme = GitHubSignature("It's a Secret to Everybody")
    receiver = WebhookReceiver(scheme, inbox, source="github")
    body = b"Hello, World!"
    headers = {
        "X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "X-GitHub-Event": "push",
    }
    with serve_in_thread(receiver) as url:
        assert post(url, body, headers).json()["status"] == "accepted"
        assert post(url, body, headers).json()["status"] == "duplicate"
    event = inbox.get("72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert event is not None
    assert event.meta["x-github-event"] == "push"


def test_store_failure_answers_503_and_acknowledges_nothing(tmp_path: Path) -> None:
    inbox = SQLiteInbox(tmp_path / "inbox.db")
    receiver = WebhookReceiver(StandardWebhooks(SECRET), inbox)

    def broken(events: list[InboxEvent]) -> list[bool]:
        raise StoreUnavailable("disk full", store="sqlite:x", operation="inbox.put")

    inbox.put_many = broken  # type: ignore[method-assign]
    with serve_in_thread(receiver) as url:
        answer = post(url, b"{}", StandardWebhooks(SECRET).sign(b"{}", msg_id="m"))
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"


def test_processing_retries_then_dead_letters_then_replays(inbox: SQLiteInbox) -> None:
    clock = ManualClock()
    failures = {"msg_bad": 99, "msg_flaky": 2}
    handled: list[str] = []

    def handler(event: InboxEvent) -> None:
        if failures.get(event.id, 0) > 0:
            failures[event.id] -= 1
            raise RuntimeError("downstream is down")
        handled.append(event.id)

    for i, event_id in enumerate(("msg_ok", "msg_flaky", "msg_bad")):
        assert inbox.put(InboxEvent(event_id, "orders", float(i), b"{}"))
    processor = WebhookProcessor(inbox, handler, retry=RetryPolicy(max_attempts=3, base_delay=1.0), clock=clock)
    assert processor.process_due() == 3
    assert handled == ["msg_ok", "msg_flaky"]
    counts = inbox.counts()
    assert (counts[InboxState.DONE], counts[InboxState.DEAD], counts[InboxState.PENDING]) == (2, 1, 0)
    dead = inbox.dead_letters()
    assert [d.id for d in dead] == ["msg_bad"]
    assert "RuntimeError" in (dead[0].last_error or "")
    assert clock.now() > 0  # the engine's backoff ran on the injected clock
    failures["msg_bad"] = 0
    assert processor.replay() == 1
    assert handled == ["msg_ok", "msg_flaky", "msg_bad"]
    assert inbox.counts()[InboxState.DEAD] == 0


def test_a_lapsed_claim_is_processed_again_and_poison_goes_dead(tmp_path: Path) -> None:
    clock = ManualClock(1000.0)
    inbox = SQLiteInbox(tmp_path / "inbox.db", clock=clock)
    inbox.put(InboxEvent("msg_1", "s", clock.now(), b"{}"))
    assert [e.id for e in inbox.claim(lease=30)] == ["msg_1"]  # then the process "dies"
    assert inbox.claim(lease=30) == []
    clock.advance(31)
    again = inbox.claim(lease=30, max_claims=2)
    assert [e.claims for e in again] == [2]
    clock.advance(31)
    assert inbox.claim(lease=30, max_claims=2) == []
    assert inbox.counts()[InboxState.DEAD] == 1
    inbox.close()


def test_dedup_window_then_purge(tmp_path: Path) -> None:
    clock = ManualClock(1000.0)
    inbox = SQLiteInbox(tmp_path / "inbox.db", clock=clock, dedup_window=60)
    assert inbox.put(InboxEvent("a", "s", clock.now(), b"{}"))
    inbox.finish("a", InboxState.DONE)
    assert not inbox.put(InboxEvent("a", "s", clock.now(), b"{}"))
    clock.advance(61)
    assert inbox.purge() == 1
    assert inbox.put(InboxEvent("a", "s", clock.now(), b"{}"))
    inbox.close()


def test_ordering_guard_drops_older_events(inbox: SQLiteInbox) -> None:
    seen: list[str] = []
    guard = OrderingGuard(
        MemoryStore(), key=lambda e: str(json.loads(e.body)["order"]), version=lambda e: json.loads(e.body)["v"]
    )
    processor = WebhookProcessor(inbox, lambda e: seen.append(e.id), ordering=guard, clock=ManualClock())
    for i, version in enumerate([1, 3, 2, 4]):
        inbox.put(InboxEvent(f"e{i}", "s", float(i), json.dumps({"order": 7, "v": version}).encode()))
    processor.process_due()
    assert seen == ["e0", "e1", "e3"]
    assert inbox.counts()[InboxState.STALE] == 1


def test_background_processing_thread(receiver: WebhookReceiver, inbox: SQLiteInbox) -> None:
    done = threading.Event()
    processor = WebhookProcessor(inbox, lambda e: done.set())
    halt = processor.start(poll=0.01)
    try:
        with serve_in_thread(receiver) as url:
            post(url, b"{}", StandardWebhooks(SECRET).sign(b"{}", msg_id="bg"))
        assert done.wait(10)
    finally:
        halt()
    assert processor.processed == 1


def test_an_async_handler_runs_under_the_engine_too(inbox: SQLiteInbox) -> None:
    import anyio

    seen: list[str] = []
    tries = {"n": 0}

    async def handler(event: InboxEvent) -> None:
        await anyio.sleep(0)
        tries["n"] += 1
        if tries["n"] == 1:
            raise RuntimeError("first try fails")
        seen.append(event.id)

    inbox.put(InboxEvent("a", "s", 1.0, b"{}"))
    processor = WebhookProcessor(inbox, handler, retry=RetryPolicy(max_attempts=2, base_delay=0.5), clock=ManualClock())
    processor.process_due()
    assert seen == ["a"]
    assert tries["n"] == 2
    assert inbox.counts()[InboxState.DONE] == 1


def test_svix_branded_headers_are_accepted_over_the_wire(receiver: WebhookReceiver, inbox: SQLiteInbox) -> None:
    """What Svix itself sends (``svix-id``, ``svix-timestamp``, ``svix-signature``, signed by the svix library)
    is accepted and deduplicated by its id, as the standard headers are."""
    body = json.dumps({"type": "order.created", "id": 11}).encode()
    now = datetime.now(tz=UTC)
    headers = {
        "svix-id": "msg_svix_wire",
        "svix-timestamp": str(int(now.timestamp())),
        "svix-signature": svix.webhooks.Webhook(SECRET).sign("msg_svix_wire", now, body.decode()),
    }
    with serve_in_thread(receiver) as url:
        first = post(url, body, headers)
        again = post(url, body, headers)
    assert (first.status_code, first.json()["status"]) == (200, "accepted")
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    stored = inbox.get("msg_svix_wire")
    assert stored is not None
    assert stored.body == body
    assert "svix-signature" not in stored.meta
