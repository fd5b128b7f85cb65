"""A webhook endpoint that recovers is judged afresh (issue 29): a successful delivery clears the endpoint's
"failing since" time, so one failure long after a recovery does not disable a healthy endpoint.

Against a real part: a loopback endpoint (uvicorn) that fails, recovers, then fails again, and the SQLite delivery
store; time runs on a :class:`~integration_kit.clock.ManualClock`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgi_server import serve_in_thread

from integration_kit.clock import ManualClock
from integration_kit.events import Event
from integration_kit.webhooks.delivery_store import SQLiteDeliveryStore
from integration_kit.webhooks.events import WebhookEndpointDisabled
from integration_kit.webhooks.schedule import RetrySchedule
from integration_kit.webhooks.sender import Endpoint, WebhookSender

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SCHEDULE = RetrySchedule(delays=(0, 10, 10, 10), disable_after=25)


class FlakyEndpoint:
    """Answers each POST with the next scripted status (200 once the script is empty), after reading its body."""

    def __init__(self) -> None:
        self.script: deque[int] = deque()
        self.statuses: list[int] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()
            more = bool(message.get("more_body"))
        status = self.script.popleft() if self.script else 200
        self.statuses.append(status)
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture
def endpoint() -> Iterator[tuple[FlakyEndpoint, str]]:
    app = FlakyEndpoint()
    with serve_in_thread(app) as url:
        yield app, url


def test_a_delivery_after_failures_clears_the_failing_time(tmp_path: Path, endpoint: tuple[FlakyEndpoint, str]) -> None:
    app, url = endpoint
    clock = ManualClock(1_700_000_000.0)
    events: list[Event] = []
    store = SQLiteDeliveryStore(tmp_path / "outbox.db", clock=clock)
    hook = Endpoint("shop", url + "/hooks", (SECRET,), allow_private=True)
    sender = WebhookSender(store, [hook], clock=clock, workers=1, schedule=SCHEDULE, hooks=[events.append])
    try:
        # fails at t0, then recovers at t0 + 10: the store must forget t0
        app.script.extend([500])
        first = sender.send("order.paid", {"order": 1})
        sender.deliver_due()
        assert store.endpoint("shop").failing_since == clock.now()
        clock.advance(10)
        sender.deliver_due()
        assert [e.outcome for e in sender.log(message_id=first)] == ["retry", "delivered"]
        assert store.endpoint("shop").failing_since is None

        # fails again long after: well past disable_after from t0, but healthy until a moment ago
        clock.advance(10 * SCHEDULE.disable_after)
        app.script.extend([503] * 4)
        second = sender.send("order.paid", {"order": 2})
        again = clock.now()
        sender.deliver_due()
        assert [e.outcome for e in sender.log(message_id=second)] == ["retry"]
        state = store.endpoint("shop")
        assert (state.enabled, state.failing_since) == (True, again)

        # and it is disabled only once it has failed for disable_after since then
        for _ in range(3):
            clock.advance(10)
            sender.deliver_due()
        assert [e.outcome for e in sender.log(message_id=second)] == ["retry", "retry", "retry", "disabled"]
        [disabled] = [e for e in events if isinstance(e, WebhookEndpointDisabled)]
        assert (disabled.reason, disabled.failing_since) == ("failing", again)
        assert app.statuses == [500, 200, 503, 503, 503, 503]
    finally:
        sender.close()
