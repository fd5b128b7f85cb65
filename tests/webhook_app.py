"""A webhook receiver process for the loss proof and the benchmark: ``uvicorn --factory webhook_app:create_app``.

``IK_INBOX`` is the SQLite inbox file (or a ``redis://`` URL, with ``IK_PREFIX``, for a Redis inbox) and
``IK_EFFECTS`` the SQLite store where the handler records what it did: ``runs:<id>`` counts every handler
invocation, and ``effect:<id>`` is the event's effect, claimed with ``Store.add`` so that a redelivered event
cannot apply it twice (the handler's idempotency). ``IK_WORK`` is how long the handler works per event (seconds).
"""

from __future__ import annotations

import os
import time

from integration_kit.server.inbox import Inbox, InboxEvent, SQLiteInbox
from integration_kit.server.redis_inbox import RedisInbox
from integration_kit.server.signatures import StandardWebhooks
from integration_kit.server.webhook_processor import WebhookProcessor
from integration_kit.server.webhook_receiver import WebhookReceiver
from integration_kit.stores import RedisStore, SQLiteStore

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def create_app() -> WebhookReceiver:
    target = os.environ["IK_INBOX"]
    inbox: Inbox
    if target.startswith("redis://"):
        inbox = RedisInbox(RedisStore(target, prefix=os.environ.get("IK_PREFIX", "proof:")))
    else:
        inbox = SQLiteInbox(target)
    receiver = WebhookReceiver(StandardWebhooks(SECRET), inbox, source="proof")
    effects_path = os.environ.get("IK_EFFECTS")
    if effects_path:
        effects = SQLiteStore(effects_path)
        work = float(os.environ.get("IK_WORK", "0.005"))

        def handler(event: InboxEvent) -> None:
            effects.increment(f"runs:{event.id}", 1)
            time.sleep(work)  # the handler's own work
            effects.add(f"effect:{event.id}", b"1")

        WebhookProcessor(inbox, handler, lease=2.0, deadline=1.0).start(poll=0.01)
    return receiver
