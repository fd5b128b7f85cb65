"""The webhook receiver's every answer, over real sockets (uvicorn on 127.0.0.1) and a real SQLite inbox: the
problem documents and headers of each refusal, the accepted answer's document, the counts in ``stats``, what is
stored with an event (source, arrival time on the clock, kept headers only), concurrent arrivals committed
together, a store outage answered 503 to every request of a batch, and the ASGI lifespan.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_server import serve_in_thread

from integration_kit.clock import ManualClock
from integration_kit.errors import StoreUnavailable
from integration_kit.server.errors import PayloadTooLarge
from integration_kit.server.inbox import InboxEvent, SQLiteInbox
from integration_kit.server.signatures import StandardWebhooks, VerifiedWebhook
from integration_kit.server.webhook_receiver import KEPT_HEADERS, WebhookReceiver, _GroupCommit

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SIGNER = StandardWebhooks(SECRET)


def post(url: str, body: bytes, headers: Mapping[str, str]) -> httpx.Response:
    return httpx.post(url, content=body, headers=dict(headers), timeout=10)


def problem(answer: httpx.Response) -> dict[str, Any]:
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["content-length"] == str(len(answer.content))
    document: dict[str, Any] = answer.json()
    assert document["type"] == "about:blank"
    assert document["status"] == answer.status_code
    return document


def test_each_refusal_is_its_own_problem_and_is_counted(tmp_path: Path) -> None:
    inbox = SQLiteInbox(tmp_path / "inbox.db")
    receiver = WebhookReceiver(StandardWebhooks(SECRET, max_body_bytes=64), inbox)
    with serve_in_thread(receiver) as url:
        wrong_method = httpx.put(url, content=b"{}", timeout=10)
        httpx.get(url, timeout=10)
        too_big = post(url, b"x" * 65, SIGNER.sign(b"x" * 65, msg_id="big"))
        missing = post(url, b"{}", {"webhook-id": "m1"})
        malformed = post(url, b"{}", {**SIGNER.sign(b"{}", msg_id="m2"), "webhook-signature": "nocomma"})
        forged = post(url, b"{}", {**SIGNER.sign(b"{}", msg_id="m3"), "webhook-signature": "v1,AAAA"})
        post(url, b"x" * 80, SIGNER.sign(b"", msg_id="big2"))
        post(url, b"{}", {**SIGNER.sign(b"{}", msg_id="m4"), "webhook-signature": "v1,BBBB"})
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "POST"
    assert problem(wrong_method)["title"] == "Method Not Allowed"
    assert problem(wrong_method)["detail"] == "webhooks are POSTed"
    assert too_big.status_code == 413
    assert problem(too_big) == {
        "type": "about:blank",
        "title": "Content Too Large",
        "status": 413,
        "detail": "the body passes 64 bytes",
    }
    assert (missing.status_code, problem(missing)["title"]) == (400, "Webhook Verification Failed")
    assert malformed.status_code == 400
    assert (forged.status_code, problem(forged)["title"]) == (401, "Webhook Verification Failed")
    assert problem(forged)["detail"] == "standard-webhooks: no signature matches an active secret"
    assert dict(receiver.stats) == {
        "method_not_allowed": 2,
        "too_large": 2,
        "rejected:SignatureMissing": 1,
        "rejected:SignatureMalformed": 1,
        "rejected:SignatureMismatch": 2,
    }
    assert inbox.counts() == {state: 0 for state in inbox.counts()}
    inbox.close()


def test_a_scheme_that_finds_the_payload_too_large_is_answered_413(tmp_path: Path) -> None:
    class Strict(StandardWebhooks):
        def verify(self, headers: Mapping[str, str], body: bytes) -> VerifiedWebhook:
            raise PayloadTooLarge("decoded, the body passes 10 bytes", limit=10)

    inbox = SQLiteInbox(tmp_path / "inbox.db")
    receiver = WebhookReceiver(Strict(SECRET), inbox)
    with serve_in_thread(receiver) as url:
        answer = post(url, b"{}", SIGNER.sign(b"{}", msg_id="m"))
        post(url, b"{}", SIGNER.sign(b"{}", msg_id="m2"))
    assert answer.status_code == 413
    assert problem(answer)["detail"] == "decoded, the body passes 10 bytes"
    assert (problem(answer)["title"], dict(receiver.stats)) == ("Content Too Large", {"too_large": 2})
    inbox.close()


def test_an_accepted_event_is_stored_with_its_source_arrival_and_kept_headers(tmp_path: Path) -> None:
    clock = ManualClock(1_700_000_123.5)
    inbox = SQLiteInbox(tmp_path / "inbox.db")
    receiver = WebhookReceiver(
        StandardWebhooks(SECRET), inbox, clock=clock, kept_headers=frozenset({"X-Tenant", "Content-Type"})
    )
    body = b'{"order": 1}'
    headers = {**SIGNER.sign(body, msg_id="evt_1"), "content-type": "application/json", "x-tenant": "acme"}
    with serve_in_thread(receiver) as url:
        answer = post(url, body, headers)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["content-length"] == str(len(answer.content))
    assert answer.json() == {"status": "accepted", "id": "evt_1"}
    stored = inbox.get("evt_1")
    assert stored is not None
    assert (stored.source, stored.received_at, stored.body) == ("webhooks", 1_700_000_123.5, body)
    assert stored.meta == {"content-type": "application/json", "x-tenant": "acme"}
    assert receiver.stats["commits"] == 1
    assert (receiver.inbox, receiver.source, receiver.kept_headers) == (inbox, "webhooks", {"x-tenant", "content-type"})
    assert "webhook-signature" not in KEPT_HEADERS
    inbox.close()


def test_a_repeated_header_is_kept_joined_with_a_space(tmp_path: Path) -> None:
    inbox = SQLiteInbox(tmp_path / "inbox.db")
    receiver = WebhookReceiver(StandardWebhooks(SECRET), inbox, source="shop")
    headers = [(k, v) for k, v in SIGNER.sign(b"{}", msg_id="evt_2").items()]
    headers += [("X-Event-Type", "order"), ("x-event-type", "paid"), ("User-Agent", "Shop/1.0")]
    with serve_in_thread(receiver) as url:
        answer = httpx.post(url, content=b"{}", headers=headers, timeout=10)
    assert answer.json() == {"status": "accepted", "id": "evt_2"}
    stored = inbox.get("evt_2")
    assert stored is not None
    assert stored.source == "shop"
    assert stored.meta["x-event-type"] == "order paid"
    assert stored.meta["user-agent"] == "Shop/1.0"
    inbox.close()


class HeldInbox(SQLiteInbox):
    """The first commit waits until the test has queued the other requests; ``batches`` are the sizes."""

    def __init__(self, path: Path, fail: bool = False, broken: str = "") -> None:
        super().__init__(path)
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.batches: list[int] = []
        self.fail = fail
        self.broken = broken  # "raise": a bug in put_many; "short": one answer too few (a broken contract)

    def put_many(self, events: Sequence[InboxEvent]) -> list[bool]:
        self.batches.append(len(events))
        if len(self.batches) == 1:
            self.entered.set()
            assert self.gate.wait(10)
        if self.fail:
            raise StoreUnavailable("disk full", store="sqlite:x", operation="inbox.put")
        if self.broken == "raise" and len(events) > 1:
            raise RuntimeError("redis://:hunter2@cache.internal lost")
        answers = super().put_many(events)
        return answers[:-1] if self.broken == "short" and len(events) > 1 else answers


def arrive_together(inbox: HeldInbox, receiver: WebhookReceiver, count: int) -> list[httpx.Response]:
    """One request whose commit is held, then ``count - 1`` more queued behind it, then the gate opens."""
    with serve_in_thread(receiver) as url, ThreadPoolExecutor(count) as pool:
        first = pool.submit(post, url, b"{}", SIGNER.sign(b"{}", msg_id="e0"))
        assert inbox.entered.wait(10)
        rest = [pool.submit(post, url, b"{}", SIGNER.sign(b"{}", msg_id=f"e{i}")) for i in range(1, count)]
        for _ in range(1000):  # bounded: until every queued request waits for the commit
            if len(receiver._commits.waiting) == count - 1:
                break
            threading.Event().wait(0.01)
        inbox.gate.set()
        return [first.result(), *(f.result() for f in rest)]


def test_events_arriving_during_a_commit_are_committed_together(tmp_path: Path) -> None:
    inbox = HeldInbox(tmp_path / "inbox.db")
    receiver = WebhookReceiver(StandardWebhooks(SECRET), inbox)
    answers = arrive_together(inbox, receiver, 5)
    assert [a.json()["status"] for a in answers] == ["accepted"] * 5
    assert [a.json()["id"] for a in answers] == [f"e{i}" for i in range(5)]
    assert inbox.batches == [1, 4]
    assert (receiver.stats["commits"], receiver.stats["accepted"]) == (2, 5)
    inbox.close()


def test_a_failed_commit_answers_503_to_every_request_in_it(tmp_path: Path) -> None:
    inbox = HeldInbox(tmp_path / "inbox.db", fail=True)
    receiver = WebhookReceiver(StandardWebhooks(SECRET), inbox)
    answers = arrive_together(inbox, receiver, 4)
    assert [a.status_code for a in answers] == [503] * 4
    assert all(a.headers["retry-after"] == "5" for a in answers)
    assert problem(answers[1])["detail"] == "the inbox could not store the event"
    assert problem(answers[1])["title"] == "Service Unavailable"
    assert inbox.batches == [1, 3]
    assert (receiver.stats["unavailable"], receiver.stats["commits"], receiver.stats["accepted"]) == (4, 2, 0)
    inbox.close()


@pytest.mark.parametrize("broken", ["raise", "short"])
def test_an_inbox_that_breaks_its_contract_answers_503_to_every_request_never_duplicate(
    tmp_path: Path, broken: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An inbox whose put_many raises something other than StoreUnavailable, or answers one event short, leaves no
    request of the batch answered "duplicate" for an event it did not store (once, the waiters of such a batch
    committed again with nothing and answered "duplicate": the sender dropped the event), and its text, which may
    hold a store's address, reaches no answer."""
    inbox = HeldInbox(tmp_path / "inbox.db", broken=broken)
    receiver = WebhookReceiver(StandardWebhooks(SECRET), inbox)
    answers = arrive_together(inbox, receiver, 4)
    assert answers[0].json() == {"status": "accepted", "id": "e0"}  # the first batch held one event: stored
    assert [a.status_code for a in answers[1:]] == [503] * 3
    assert all("hunter2" not in a.text for a in answers)
    assert "hunter2" not in caplog.text
    what = "put_many raised RuntimeError" if broken == "raise" else "put_many answered 2 times for 3 events"
    logged = [r.getMessage() for r in caplog.records if r.name == "integration_kit.webhooks"]
    assert len(logged) == 3
    assert logged[0].startswith("webhook receiver webhooks: event e")
    assert logged[0].endswith(f"not stored, answered 503: store {inbox.name} unavailable during put_many: {what}")
    assert inbox.batches == [1, 3]
    assert (receiver.stats["unavailable"], receiver.stats["accepted"]) == (3, 1)
    inbox.close()


def test_the_lifespan_is_answered_and_other_scopes_are_ignored(tmp_path: Path) -> None:
    inbox = SQLiteInbox(tmp_path / "inbox.db")
    receiver = WebhookReceiver(StandardWebhooks(SECRET), inbox)

    async def body() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.other"}, {"type": "lifespan.shutdown"}]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return incoming.pop(0)

        async def send(message: Any) -> None:
            sent.append(dict(message))

        await asyncio.wait_for(receiver({"type": "lifespan"}, receive, send), 5)
        assert incoming == []  # an unknown lifespan message is skipped: the shutdown after it is answered
        ignored: list[dict[str, Any]] = []

        async def record(message: Any) -> None:
            ignored.append(dict(message))

        await receiver({"type": "websocket"}, receive, record)
        return sent, ignored

    sent, ignored = asyncio.run(body())
    assert sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]
    assert ignored == []
    inbox.close()


def test_the_kept_headers_by_default_carry_no_secret() -> None:
    assert (
        frozenset(
            {"content-type", "x-github-event", "x-github-hook-id", "webhook-timestamp", "user-agent", "x-event-type"}
        )
        == KEPT_HEADERS
    )


def test_the_asgi_messages_follow_the_spec(tmp_path: Path) -> None:
    """Lower-case header names (the ASGI spec asks for them) and a final body message that says so."""
    inbox = SQLiteInbox(tmp_path / "inbox.db")
    receiver = WebhookReceiver(StandardWebhooks(SECRET), inbox)

    def call(method: str, body: bytes, headers: Mapping[str, str]) -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Any) -> None:
            sent.append(dict(message))

        scope = {"type": "http", "method": method, "headers": [(k.encode(), v.encode()) for k, v in headers.items()]}
        asyncio.run(receiver(scope, receive, send))
        return sent

    accepted = call("POST", b"{}", SIGNER.sign(b"{}", msg_id="a1"))
    payload = b'{"status": "accepted", "id": "a1"}'
    assert accepted == [
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
        },
        {"type": "http.response.body", "body": payload, "more_body": False},
    ]
    refused = call("GET", b"", {})
    assert (b"allow", b"POST") in refused[0]["headers"]
    assert refused[-1]["more_body"] is False

    def broken(events: Sequence[InboxEvent]) -> list[bool]:
        raise StoreUnavailable("disk full", store="sqlite:x", operation="inbox.put")

    inbox.put_many = broken  # type: ignore[method-assign]
    unavailable = call("POST", b"{}", SIGNER.sign(b"{}", msg_id="a2"))
    assert unavailable[0]["status"] == 503
    assert (b"retry-after", b"5") in unavailable[0]["headers"]
    inbox.close()


def test_the_error_of_a_broken_inbox_keeps_its_cause(tmp_path: Path) -> None:
    """The inbox's own exception is the cause of the StoreUnavailable the receiver answers 503 for (for a traceback
    in the operator's logs), not shown in its text."""

    class Raising(SQLiteInbox):
        def put_many(self, events: Sequence[InboxEvent]) -> list[bool]:
            raise RuntimeError("redis://:hunter2@cache.internal lost")

    inbox = Raising(tmp_path / "inbox.db")
    commits = _GroupCommit(inbox, Counter())
    with pytest.raises(StoreUnavailable) as caught:
        asyncio.run(commits.put(InboxEvent("e1", "shop", 0.0, b"{}")))
    assert str(caught.value) == f"store {inbox.name} unavailable during put_many: put_many raised RuntimeError"
    assert isinstance(caught.value.__cause__, RuntimeError)
    inbox.close()


def test_an_inbox_without_a_name_is_named_by_its_class(tmp_path: Path) -> None:
    """``name`` is not part of the Inbox contract: the error of one without it names its class."""

    class Nameless(SQLiteInbox):
        @property
        def name(self) -> str:
            raise AttributeError("name")

        def put_many(self, events: Sequence[InboxEvent]) -> list[bool]:
            raise RuntimeError("lost")

    inbox = Nameless(tmp_path / "inbox.db")
    with pytest.raises(StoreUnavailable) as caught:
        asyncio.run(_GroupCommit(inbox, Counter()).put(InboxEvent("e1", "shop", 0.0, b"{}")))
    assert caught.value.store == "Nameless"
    assert str(caught.value) == "store Nameless unavailable during put_many: put_many raised RuntimeError"
    inbox.close()
