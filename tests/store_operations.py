"""Every operation of an inbox or a delivery store, by the name it gives in ``StoreUnavailable.operation``: the one
table the per-store tests walk when their store is down (SQLite, Redis, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable

from integration_kit.server.inbox import Inbox, InboxEvent, InboxState
from integration_kit.webhooks.delivery_store import AttemptLogEntry, DeliveryStore

Step = Callable[[], object]


def inbox_operations(inbox: Inbox, event: InboxEvent) -> dict[str, Step]:
    """Each of ``inbox``'s operations, on ``event`` where it takes one, by its operation name."""
    return {
        "inbox.put": lambda: inbox.put(event),
        "inbox.claim": lambda: inbox.claim(lease=1),
        "inbox.finish": lambda: inbox.finish(event.id, InboxState.DONE),
        "inbox.dead_letters": inbox.dead_letters,
        "inbox.replay": inbox.replay,
        "inbox.counts": inbox.counts,
        "inbox.get": lambda: inbox.get(event.id),
        "inbox.purge": inbox.purge,
    }


def delivery_store_operations(store: DeliveryStore, message_id: str, entry: AttemptLogEntry) -> dict[str, Step]:
    """Each of ``store``'s operations (endpoint ``a``), enqueueing ``message_id`` and recording ``entry``."""
    return {
        "webhooks.enqueue": lambda: store.enqueue(message_id, "t", b"{}", ["a"]),
        "webhooks.claim": lambda: store.claim_due(lease=1),
        "webhooks.record": lambda: store.record(entry),
        "webhooks.endpoint": lambda: store.endpoint("a"),
        "webhooks.set_failing": lambda: store.set_failing("a", 1.0),
        "webhooks.disable": lambda: store.disable("a", "x"),
        "webhooks.enable": lambda: store.enable("a"),
        "webhooks.log": store.log,
        "webhooks.next_due": store.next_due,
        "webhooks.counts": store.counts,
        "webhooks.delivery": lambda: store.delivery("m", "a"),
    }
