"""The webhook sender over real sockets: signing, the durable Svix schedule, Retry-After, 410, disabling, the
delivery log, restarts, redirects, the SSRF guard (DNS resolved once, connection to the checked address)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_server import request_body, serve_in_thread

from integration_kit.clock import ManualClock
from integration_kit.errors import ConfigurationError
from integration_kit.events import Event, RetryScheduled
from integration_kit.server.inbox import SQLiteInbox
from integration_kit.server.signatures import StandardWebhooks
from integration_kit.server.webhook_receiver import WebhookReceiver
from integration_kit.webhooks.delivery_store import SQLiteDeliveryStore
from integration_kit.webhooks.errors import UnsafeDestination
from integration_kit.webhooks.events import WebhookEndpointDisabled
from integration_kit.webhooks.schedule import SVIX_SCHEDULE, RetrySchedule
from integration_kit.webhooks.sender import Endpoint, WebhookSender
from integration_kit.webhooks.ssrf import is_refused_address, resolve_destination

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NEW_SECRET = "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="


class ScriptedEndpoint:
    """An ASGI endpoint answering scripted statuses first, then passing requests to a real receiver."""

    def __init__(self, receiver: WebhookReceiver) -> None:
        self.receiver = receiver
        self.script: deque[tuple[int, dict[str, str]]] = deque()
        self.seen: list[dict[str, str]] = []
        self.bodies: list[bytes] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.seen.append({**headers, "path": scope["path"]})
        if self.script:
            status, extra = self.script.popleft()
            body = await request_body(receive)
            self.bodies.append(body)
            raw = [(k.encode(), v.encode()) for k, v in extra.items()] + [(b"content-length", b"0")]
            await send({"type": "http.response.start", "status": status, "headers": raw})
            await send({"type": "http.response.body", "body": b""})
            return
        await self.receiver(scope, receive, send)


@pytest.fixture
def endpoint_app(tmp_path: Path, clock: ManualClock) -> Iterator[tuple[ScriptedEndpoint, SQLiteInbox, str]]:
    inbox = SQLiteInbox(tmp_path / "inbox.db")
    app = ScriptedEndpoint(WebhookReceiver(StandardWebhooks([SECRET, NEW_SECRET], clock=clock), inbox))
    with serve_in_thread(app) as url:
        yield app, inbox, url
    inbox.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(time.time())  # epoch seconds: the receiver checks the signed timestamps on its wall clock


def make_sender(
    tmp_path: Path, url: str, clock: ManualClock, events: list[Event] | None = None, **options: Any
) -> WebhookSender:
    endpoint = Endpoint("shop", url + "/hooks", (SECRET,), allow_private=True)
    store = SQLiteDeliveryStore(tmp_path / "outbox.db", clock=clock)
    hooks = [events.append] if events is not None else []
    return WebhookSender(store, [endpoint], clock=clock, workers=1, hooks=hooks, **options)


def test_delivers_signed_messages_that_the_receiver_verifies(
    tmp_path: Path, endpoint_app: Any, clock: ManualClock
) -> None:
    app, inbox, url = endpoint_app
    sender = make_sender(tmp_path, url, clock)
    ids = [sender.send("order.created", {"order": i}) for i in range(3)]
    assert sender.send("order.created", {"order": 99}, msg_id=ids[0]) == ids[0]  # an id is sent once
    assert sender.deliver_due() == 3
    assert sender.deliver_due() == 0
    assert sorted(e.id for e in (inbox.get(i) for i in ids) if e is not None) == sorted(ids)
    stored = inbox.get(ids[0])
    assert stored is not None
    assert stored.json()["data"] == {"order": 0}  # type: ignore[index]
    log = sender.log(message_id=ids[0])
    assert [(e.attempt, e.status, e.outcome) for e in log] == [(1, 200, "delivered")]
    assert app.seen[0]["path"] == "/hooks"
    assert sender.store.counts()["delivered"] == 3
    sender.close()


def test_svix_schedule_same_id_and_body_on_every_attempt(tmp_path: Path, endpoint_app: Any, clock: ManualClock) -> None:
    app, inbox, url = endpoint_app
    events: list[Event] = []
    sender = make_sender(tmp_path, url, clock, events)
    app.script.extend([(503, {}), (500, {})])
    msg = sender.send("order.paid", {"order": 1})
    start = clock.now()
    assert sender.deliver_due() == 1
    clock.advance(SVIX_SCHEDULE[1] - 0.5)
    assert sender.deliver_due() == 0  # not due yet: the schedule lives in the store
    clock.advance(0.5)
    assert sender.deliver_due() == 1
    clock.advance(SVIX_SCHEDULE[2])
    assert sender.deliver_due() == 1
    log = sender.log(message_id=msg)
    assert [(e.attempt, e.status, e.outcome) for e in log] == [
        (1, 503, "retry"),
        (2, 500, "retry"),
        (3, 200, "delivered"),
    ]
    assert [e.at - start for e in log] == pytest.approx([0, 5, 305])
    assert {h["webhook-id"] for h in app.seen} == {msg}
    assert len({h["webhook-timestamp"] for h in app.seen}) == 3  # re-signed at each attempt
    assert app.bodies[0] == app.bodies[1]
    assert inbox.get(msg) is not None
    assert [e.delay for e in events if isinstance(e, RetryScheduled)] == [5, 300]
    sender.close()


def test_retry_after_is_honoured_and_the_schedule_survives_a_restart(
    tmp_path: Path, endpoint_app: Any, clock: ManualClock
) -> None:
    app, _inbox, url = endpoint_app
    sender = make_sender(tmp_path, url, clock)
    app.script.append((429, {"retry-after": "120"}))
    msg = sender.send("order.paid", {"order": 2})
    sender.deliver_due()
    sender.close()
    sender.store.close()  # the process "dies" between attempts
    restarted = make_sender(tmp_path, url, clock)
    clock.advance(119)
    assert restarted.deliver_due() == 0
    clock.advance(1)
    assert restarted.deliver_due() == 1
    assert [e.outcome for e in restarted.log(message_id=msg)] == ["retry", "delivered"]
    restarted.close()


def test_410_disables_the_endpoint_with_an_event_and_parks_its_deliveries(
    tmp_path: Path, endpoint_app: Any, clock: ManualClock
) -> None:
    app, inbox, url = endpoint_app
    events: list[Event] = []
    sender = make_sender(tmp_path, url, clock, events)
    app.script.append((410, {}))
    first = sender.send("order.paid", {"order": 3})
    sender.deliver_due(limit=1)
    second = sender.send("order.paid", {"order": 4})
    assert sender.deliver_due() == 0
    assert sender.store.endpoint("shop").enabled is False
    assert [(e.endpoint, e.reason) for e in events if isinstance(e, WebhookEndpointDisabled)] == [("shop", "gone")]
    assert sender.store.delivery(first, "shop")["state"] == "disabled"  # type: ignore[index]
    assert sender.store.delivery(second, "shop")["state"] == "disabled"  # type: ignore[index]
    assert sender.store.enable("shop") == 2  # re-enabling sends what was parked
    assert sender.deliver_due() == 2
    assert inbox.get(first) is not None
    assert inbox.get(second) is not None
    sender.close()


def test_an_endpoint_failing_too_long_is_disabled_and_a_schedule_ends(
    tmp_path: Path, endpoint_app: Any, clock: ManualClock
) -> None:
    app, _, url = endpoint_app
    events: list[Event] = []
    schedule = RetrySchedule(delays=(0, 10, 10, 10), disable_after=25)
    sender = make_sender(tmp_path, url, clock, events, schedule=schedule)
    app.script.extend([(500, {})] * 10)
    msg = sender.send("order.paid", {"order": 5})
    for _ in range(4):
        sender.deliver_due()
        clock.advance(10)
    outcomes = [e.outcome for e in sender.log(message_id=msg)]
    assert outcomes == ["retry", "retry", "retry", "disabled"]
    assert any(isinstance(e, WebhookEndpointDisabled) and e.reason == "failing" for e in events)
    sender.store.enable("shop")
    (tmp_path / "other").mkdir()
    short = make_sender(tmp_path / "other", url, clock, schedule=RetrySchedule(delays=(0, 1)))
    other = short.send("order.paid", {"order": 6})
    short.deliver_due()
    clock.advance(1)
    short.deliver_due()
    assert [e.outcome for e in short.log(message_id=other)] == ["retry", "failed"]
    sender.close()
    short.close()


def test_redirects_are_not_followed(tmp_path: Path, endpoint_app: Any, clock: ManualClock) -> None:
    app, _inbox, url = endpoint_app
    sender = make_sender(tmp_path, url, clock)
    app.script.append((307, {"location": url + "/elsewhere"}))
    msg = sender.send("order.paid", {"order": 7})
    sender.deliver_due()
    assert [(e.status, e.outcome) for e in sender.log(message_id=msg)] == [(307, "retry")]
    assert [h["path"] for h in app.seen] == ["/hooks"]
    sender.close()


# -- the SSRF guard ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "::1",
        "fe80::1",
        "fd00:ec2::254",
        "::ffff:127.0.0.1",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "100.100.100.200",
    ],
)
def test_refused_addresses(address: str) -> None:
    assert is_refused_address(address)
    with pytest.raises(UnsafeDestination) as caught:
        resolve_destination("https://hooks.example.com/x", resolver=lambda h, p: [address])
    assert caught.value.address == address


def test_public_addresses_pass_and_metadata_is_refused_even_when_private_is_allowed() -> None:
    destination = resolve_destination("https://hooks.example.com:8443/x?a=1", resolver=lambda h, p: ["93.184.216.34"])
    assert str(destination.url) == "https://93.184.216.34:8443/x?a=1"
    request = destination.request(b"{}", {})
    assert request.headers["host"] == "hooks.example.com:8443"
    assert request.extensions["sni_hostname"] == "hooks.example.com"
    with pytest.raises(UnsafeDestination):
        resolve_destination("http://x.test/", allow_private=True, resolver=lambda h, p: ["169.254.169.254"])
    with pytest.raises(UnsafeDestination):  # one bad address among good ones is enough
        resolve_destination("http://x.test/", resolver=lambda h, p: ["93.184.216.34", "10.0.0.1"])
    for url in ("ftp://x.test/", "https://user:pw@x.test/", "https:///nohost"):
        with pytest.raises(UnsafeDestination):
            resolve_destination(url, resolver=lambda h, p: ["93.184.216.34"])
    with pytest.raises(UnsafeDestination):
        resolve_destination("https://does-not-resolve.invalid/")


def test_unsafe_endpoint_is_refused_before_connecting(tmp_path: Path, endpoint_app: Any, clock: ManualClock) -> None:
    app, _, url = endpoint_app
    store = SQLiteDeliveryStore(tmp_path / "outbox.db", clock=clock)
    sender = WebhookSender(store, [Endpoint("shop", url + "/hooks", (SECRET,))], clock=clock, workers=1)
    msg = sender.send("order.paid", {"order": 8})
    sender.deliver_due()
    [entry] = sender.log(message_id=msg)
    assert entry.outcome == "retry"
    assert entry.error is not None
    assert entry.error.startswith("UnsafeDestination")
    assert app.seen == []
    sender.close()


def test_connects_to_the_checked_address_without_resolving_again(
    tmp_path: Path, endpoint_app: Any, clock: ManualClock
) -> None:
    app, inbox, url = endpoint_app
    port = httpx.URL(url).port
    lookups: list[str] = []

    def rebinding_dns(host: str, _: int) -> list[str]:
        lookups.append(host)  # a second lookup would get a different answer (DNS rebinding)
        return ["127.0.0.1"] if len(lookups) == 1 else ["203.0.113.9"]

    store = SQLiteDeliveryStore(tmp_path / "outbox.db", clock=clock)
    endpoint = Endpoint("shop", f"http://hooks.example.test:{port}/hooks", (SECRET,), allow_private=True)
    sender = WebhookSender(store, [endpoint], clock=clock, workers=1, resolver=rebinding_dns)
    msg = sender.send("order.paid", {"order": 9})
    sender.deliver_due()
    assert lookups == ["hooks.example.test"]
    assert app.seen[0]["host"] == f"hooks.example.test:{port}"
    assert inbox.get(msg) is not None
    sender.close()


def test_endpoint_configuration_errors_name_no_secret() -> None:
    with pytest.raises(ConfigurationError) as caught:
        Endpoint("shop", "https://x.test/", ("whsec_!!not-base64!!",))
    assert "not-base64" not in str(caught.value)
    assert "whsec" not in repr(Endpoint("shop", "https://x.test/", (SECRET,)))


def test_the_endpoint_breaker_refuses_without_counting_an_attempt(
    tmp_path: Path, endpoint_app: Any, clock: ManualClock
) -> None:
    from integration_kit.policies.config import BreakerPolicy

    app, inbox, url = endpoint_app
    breaker = BreakerPolicy(failure_threshold=2, failure_rate_threshold=None, wait_in_open=60.0)
    endpoint = Endpoint("shop", url + "/hooks", (SECRET,), allow_private=True, breaker=breaker)
    store = SQLiteDeliveryStore(tmp_path / "outbox.db", clock=clock)
    sender = WebhookSender(store, [endpoint], clock=clock, workers=1)
    app.script.extend([(500, {}), (500, {})])
    ids = [sender.send("order.paid", {"order": i}) for i in range(3)]
    assert sender.deliver_due() == 3
    assert sender.stats["retry"] == 2
    assert sender.stats["refused"] == 1
    assert len(app.seen) == 2  # the third never reached the endpoint
    rows = {i: store.delivery(i, "shop") or {} for i in ids}
    [refused] = [i for i, row in rows.items() if row["attempts"] == 0]
    assert rows[refused]["next_attempt_at"] - clock.now() == pytest.approx(60)  # not approx(now + 60): 1e-6 of an epoch
    clock.advance(60)
    sender.deliver_due()
    assert inbox.get(refused) is not None  # the probe went through and closed the breaker
    sender.close()


def test_no_secret_in_events_log_or_errors(tmp_path: Path, endpoint_app: Any, clock: ManualClock) -> None:
    app, _, url = endpoint_app
    events: list[Event] = []
    sender = make_sender(tmp_path, url, clock, events)
    app.script.extend([(401, {}), (503, {"retry-after": "10"})])
    for i in range(3):
        sender.send("order.paid", {"order": i})
    sender.deliver_due()
    text = " ".join(repr(e) for e in events) + " ".join(repr(e) for e in sender.log()) + repr(sender)
    assert events
    assert SECRET not in text
    assert SECRET[6:] not in text
    assert all("webhook-signature" not in repr(e) for e in events)
    sender.close()
