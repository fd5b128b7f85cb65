"""The surviving mutants of the webhook and queue delivery paths (the ``server`` inboxes, receiver and processor,
``webhooks``, ``queues``) that no behaviour can tell from the original, by mutmut's name, with the reason.

:mod:`mutation_equivalent` merges them into ``EQUIVALENT``; the layout is the same (see that module).
"""

from __future__ import annotations

#: The equivalent survivors of these modules, by mutmut's name, with the reason.
DELIVERY_EQUIVALENT: dict[str, str] = {
    # queues.inbox: flags only tested for truth, the renewal's first state, sqlite3's isolation level, SQL's case.
    **{
        f"integration_kit.queues.inbox.{name}": "False -> None: the flag is only ever tested for truth"
        for name in (
            "xǁ_Renewalǁ__init____mutmut_5",
            "xǁ_Renewalǁ__init____mutmut_7",
            "xǁ_Renewalǁ_renew__mutmut_26",
            "xǁ_Pendingǁ__init____mutmut_3",
            "xǁ_Pendingǁ__init____mutmut_5",
        )
    },
    "integration_kit.queues.inbox.xǁ_Renewalǁ__init____mutmut_6": (
        "busy starts True: it is read by stop() only once the renewal task exists, and a task that has not run "
        "yet finds stopped set and ends at once, cancelled or awaited; a task that has run set busy itself"
    ),
    "integration_kit.queues.inbox.xǁSQLiteInboxǁ__init____mutmut_24": (
        "sqlite3's default isolation level only adds an implicit BEGIN before a DML statement outside a "
        "transaction; every INSERT here, and every write a handler makes through the connection it is given, "
        "runs inside the explicit BEGIN IMMEDIATE, and COMMIT/ROLLBACK are explicit too"
    ),
    **{
        f"integration_kit.queues.inbox.xǁSQLiteInboxǁ{name}": (
            "SQLite reads keywords, table and column names and the journal mode without regard to case"
        )
        for name in (
            "__init____mutmut_29",
            "__init____mutmut_30",
            "__init____mutmut_33",
            "__init____mutmut_34",
            "__init____mutmut_36",
            "__init____mutmut_37",
            "seen__mutmut_7",
            "seen__mutmut_8",
        )
    },
    # server.webhook_receiver: the Inbox contract, ASGI's scope, codec names, flags only tested for truth.
    "integration_kit.server.webhook_receiver.xǁ_GroupCommitǁput__mutmut_36": (
        "a failed slot's result False -> True: put raises the slot's error before it would return the result"
    ),
    **{
        f"integration_kit.server.webhook_receiver.xǁ_Slotǁ__init____mutmut_{n}": (
            "a slot's first result is never read: a request reads it only once its slot is done, and a commit "
            "sets every result of its batch (one answer per event, the Inbox contract) or raises for all"
        )
        for n in (4, 5)
    },
    "integration_kit.server.webhook_receiver.xǁ_Slotǁ__init____mutmut_2": (
        "done False -> None: the flag is only ever tested for truth"
    ),
    **{
        f"integration_kit.server.webhook_receiver.x__headers__mutmut_{n}": (
            "an ASGI http scope always holds 'headers' (the ASGI spec; uvicorn always sends it), so the default "
            "is never used"
        )
        for n in (3, 5)
    },
    **{
        f"integration_kit.server.webhook_receiver.x__headers__mutmut_{n}": "codec names are case-insensitive"
        for n in (12, 16)
    },
    # server.webhook_processor: the ordering guard's compare-and-set loop, defaults passed on, the engine's
    # wrapping, flags only tested for truth.
    "integration_kit.server.webhook_processor.xǁOrderingGuardǁrecord__mutmut_7": (
        "16 -> 17 tries of the compare-and-set loop: only reached after 16 consecutive lost races on one key"
    ),
    "integration_kit.server.webhook_processor.xǁOrderingGuardǁrecord__mutmut_13": (
        ">= -> >: a version equal to the stored one is written again as the same bytes (repr of the same float)"
    ),
    "integration_kit.server.webhook_processor.xǁWebhookProcessorǁ__init____mutmut_36": (
        "clock None reaches the CallEngine, whose default is the same SystemClock"
    ),
    "integration_kit.server.webhook_processor.xǁWebhookProcessorǁprocess_due__mutmut_10": (
        "limit=1 dropped: Inbox.claim's limit defaults to 1 (SQLite and Redis inboxes alike)"
    ),
    **{
        f"integration_kit.server.webhook_processor.xǁWebhookProcessorǁprocess__mutmut_{n}": (
            "the root is looked for from the GaveUp itself instead of its last_error: the engine raises a GaveUp "
            "from its last error, so the walk down __cause__ reaches the same root"
        )
        for n in (15, 20, 21)
    },
    "integration_kit.server.webhook_processor.xǁWebhookProcessorǁrun__mutmut_15": (
        "busy after an outage 0 -> None: only tested for truth ('if not busy'), so the loop waits either way"
    ),
    # webhooks.schedule: the Retry-After boundary.
    "integration_kit.webhooks.schedule.xǁRetryScheduleǁnext_delay__mutmut_16": (
        "retry_after > delay -> >=: at retry_after == delay the result is max(delay, min(delay, cap)), which is delay"
    ),
    # webhooks.delivery_store: SQL text upper- or lower-cased, durability flags only tested for truth, zip over a
    # cursor's own description.
    **{
        f"integration_kit.webhooks.delivery_store.{name}": (
            "SQLite reads keywords, table and column names without regard to case (and names a result column as "
            "declared, so cursor.description is unchanged); the quoted literals are left as they were"
        )
        for name in (
            "xǁSQLiteDeliveryStoreǁenqueue__mutmut_11",
            "xǁSQLiteDeliveryStoreǁenqueue__mutmut_12",
            "xǁSQLiteDeliveryStoreǁenqueue__mutmut_19",
            "xǁSQLiteDeliveryStoreǁenqueue__mutmut_20",
            "xǁSQLiteDeliveryStoreǁenqueue__mutmut_22",
            "xǁSQLiteDeliveryStoreǁenqueue__mutmut_23",
            "xǁSQLiteDeliveryStoreǁenqueue__mutmut_25",
            "xǁSQLiteDeliveryStoreǁclaim_due__mutmut_16",
            "xǁSQLiteDeliveryStoreǁclaim_due__mutmut_17",
            "xǁSQLiteDeliveryStoreǁclaim_due__mutmut_19",
            "xǁSQLiteDeliveryStoreǁclaim_due__mutmut_20",
            "xǁSQLiteDeliveryStoreǁclaim_due__mutmut_22",
            "xǁSQLiteDeliveryStoreǁclaim_due__mutmut_25",
            "xǁSQLiteDeliveryStoreǁclaim_due__mutmut_26",
            "xǁSQLiteDeliveryStoreǁclaim_due__mutmut_32",
            "xǁSQLiteDeliveryStoreǁclaim_due__mutmut_33",
            "xǁSQLiteDeliveryStoreǁrecord__mutmut_17",
            "xǁSQLiteDeliveryStoreǁrecord__mutmut_18",
            "xǁSQLiteDeliveryStoreǁrecord__mutmut_24",
            "xǁSQLiteDeliveryStoreǁrecord__mutmut_25",
            "xǁSQLiteDeliveryStoreǁrecord__mutmut_27",
            "xǁSQLiteDeliveryStoreǁrecord__mutmut_29",
            "xǁSQLiteDeliveryStoreǁrecord__mutmut_30",
            "xǁSQLiteDeliveryStoreǁendpoint__mutmut_14",
            "xǁSQLiteDeliveryStoreǁendpoint__mutmut_15",
            "xǁSQLiteDeliveryStoreǁset_failing__mutmut_9",
            "xǁSQLiteDeliveryStoreǁset_failing__mutmut_10",
            "xǁSQLiteDeliveryStoreǁset_failing__mutmut_17",
            "xǁSQLiteDeliveryStoreǁset_failing__mutmut_18",
            "xǁSQLiteDeliveryStoreǁset_failing__mutmut_24",
            "xǁSQLiteDeliveryStoreǁset_failing__mutmut_25",
            "xǁSQLiteDeliveryStoreǁset_failing__mutmut_32",
            "xǁSQLiteDeliveryStoreǁset_failing__mutmut_33",
            "xǁSQLiteDeliveryStoreǁdisable__mutmut_9",
            "xǁSQLiteDeliveryStoreǁdisable__mutmut_10",
            "xǁSQLiteDeliveryStoreǁdisable__mutmut_17",
            "xǁSQLiteDeliveryStoreǁdisable__mutmut_18",
            "xǁSQLiteDeliveryStoreǁdisable__mutmut_24",
            "xǁSQLiteDeliveryStoreǁdisable__mutmut_27",
            "xǁSQLiteDeliveryStoreǁenable__mutmut_9",
            "xǁSQLiteDeliveryStoreǁenable__mutmut_10",
            "xǁSQLiteDeliveryStoreǁenable__mutmut_16",
            "xǁSQLiteDeliveryStoreǁenable__mutmut_19",
            "xǁSQLiteDeliveryStoreǁlog__mutmut_4",
            "xǁSQLiteDeliveryStoreǁlog__mutmut_5",
            "xǁSQLiteDeliveryStoreǁlog__mutmut_20",
            "xǁSQLiteDeliveryStoreǁlog__mutmut_21",
            "xǁSQLiteDeliveryStoreǁnext_due__mutmut_11",
            "xǁSQLiteDeliveryStoreǁcounts__mutmut_11",
            "xǁSQLiteDeliveryStoreǁcounts__mutmut_12",
            "xǁSQLiteDeliveryStoreǁdelivery__mutmut_14",
            "xǁSQLiteDeliveryStoreǁdelivery__mutmut_15",
            "xǁSQLiteDeliveryStoreǁdelivery__mutmut_17",
            "xǁSQLiteDeliveryStoreǁdelivery__mutmut_18",
        )
    },
    **{
        f"integration_kit.webhooks.delivery_store.{name}": (
            "durable False -> None: only tested for truth ('FULL' if durable else 'NORMAL')"
        )
        for name in (
            "xǁSQLiteDeliveryStoreǁ__init____mutmut_15",
            "xǁSQLiteDeliveryStoreǁclaim_due__mutmut_4",
            "xǁSQLiteDeliveryStoreǁendpoint__mutmut_2",
            "xǁSQLiteDeliveryStoreǁlog__mutmut_7",
            "xǁSQLiteDeliveryStoreǁnext_due__mutmut_2",
            "xǁSQLiteDeliveryStoreǁcounts__mutmut_2",
            "xǁSQLiteDeliveryStoreǁdelivery__mutmut_2",
        )
    },
    **{
        f"integration_kit.webhooks.delivery_store.{name}": (
            "zip(strict=True) dropped: the names are the description of the cursor that returned the row, one "
            "per column"
        )
        for name in (
            "xǁSQLiteDeliveryStoreǁdelivery__mutmut_28",
            "xǁSQLiteDeliveryStoreǁdelivery__mutmut_31",
            "xǁSQLiteDeliveryStoreǁdelivery__mutmut_32",
        )
    },
    # queues.outbox: SQL text upper- or lower-cased, and what SQLite, PostgreSQL and the message format make the same.
    **{
        f"integration_kit.queues.outbox.{name}": (
            "SQLite and PostgreSQL read keywords and unquoted table and column names without regard to case (an "
            "unquoted PostgreSQL name is folded to lower case); the quoted literals are left as they were"
        )
        for name in (
            "xǁSQLiteOutboxǁ__init____mutmut_22",
            "xǁSQLiteOutboxǁ__init____mutmut_23",
            "xǁSQLiteOutboxǁcreate__mutmut_4",
            "xǁSQLiteOutboxǁcreate__mutmut_7",
            "xǁSQLiteOutboxǁclaim__mutmut_6",
            "xǁSQLiteOutboxǁclaim__mutmut_13",
            "xǁSQLiteOutboxǁclaim__mutmut_14",
            "xǁSQLiteOutboxǁclaim__mutmut_18",
            "xǁSQLiteOutboxǁclaim__mutmut_35",
            "xǁSQLiteOutboxǁclaim__mutmut_36",
            "xǁSQLiteOutboxǁclaim__mutmut_60",
            "xǁSQLiteOutboxǁclaim__mutmut_63",
            "xǁSQLiteOutboxǁmark_sent__mutmut_10",
            "xǁSQLiteOutboxǁmark_sent__mutmut_11",
            "xǁSQLiteOutboxǁrelease__mutmut_12",
            "xǁSQLiteOutboxǁrelease__mutmut_13",
            "xǁSQLiteOutboxǁ_update__mutmut_14",
            "xǁSQLiteOutboxǁ_update__mutmut_15",
            "xǁPostgresOutboxǁcreate__mutmut_4",
            "xǁPostgresOutboxǁcreate__mutmut_5",
            "xǁPostgresOutboxǁcreate__mutmut_7",
            "xǁPostgresOutboxǁcreate__mutmut_8",
            "xǁPostgresOutboxǁcreate__mutmut_10",
            "xǁPostgresOutboxǁcreate__mutmut_11",
            "xǁPostgresOutboxǁclaim__mutmut_9",
            "xǁPostgresOutboxǁclaim__mutmut_23",
            "xǁPostgresOutboxǁclaim__mutmut_24",
            "xǁPostgresOutboxǁmark_sent__mutmut_10",
            "xǁPostgresOutboxǁrelease__mutmut_10",
            "xǁPostgresOutboxǁrelease__mutmut_11",
            "xǁPostgresOutboxǁ_update__mutmut_6",
            "xǁPostgresOutboxǁ_update__mutmut_11",
        )
    },
    "integration_kit.queues.outbox.xǁSQLiteOutboxǁclaim__mutmut_39": (
        "seq <= the last row's key instead of its seq: SQLite orders every integer before every text, so the "
        "bound lets in the later unsent rows of those keys too, which all come after every candidate and so "
        "block nothing that in_key_order keeps"
    ),
    "integration_kit.queues.outbox.xǁPostgresOutboxǁcreate__mutmut_15": (
        "t.split('.')[+1] is t.split('.')[-1]: the table name is always 'schema.table', two parts"
    ),
    "integration_kit.queues.outbox.xǁPostgresOutboxǁmark_sent__mutmut_4": (
        "owner '' -> None: _update only tests it for truth (marking sent is not limited to one owner)"
    ),
    **{
        f"integration_kit.queues.outbox.xǁPostgresOutboxǁpending__mutmut_{n}": (
            "SELECT COUNT(*) always returns one row, so the fallback for no row is never used"
        )
        for n in (4, 7)
    },
    "integration_kit.queues.outbox.x__row__mutmut_10": (
        "key omitted -> its default '': the same value as the keyless rows' stored key (a keyed row's key is "
        "read from its x-ik-key header first)"
    ),
    **{
        f"integration_kit.webhooks.delivery_store.xǁSQLiteDeliveryStoreǁ__init____mutmut_{n}": (
            "the SQLiteStore's clock only expires the rows of its own key-value table, which the delivery store "
            "never uses: every time in its tables is read from its own clock"
        )
        for n in (11, 13)
    },
    # server.inbox: SQL text upper- or lower-cased, and the clock of the SQLiteStore the inbox opens.
    **{
        f"integration_kit.server.inbox.xǁSQLiteInboxǁ{name}": (
            "SQLite reads keywords, table and column names without regard to case; the quoted literals "
            "('pending', 'dead', 'done', 'stale') are left as they were"
        )
        for name in (
            "put_many__mutmut_17",
            "put_many__mutmut_18",
            "put_many__mutmut_20",
            "put_many__mutmut_30",
            "put_many__mutmut_31",
            "claim__mutmut_13",
            "claim__mutmut_14",
            "claim__mutmut_25",
            "claim__mutmut_35",
            "claim__mutmut_36",
            "finish__mutmut_9",
            "finish__mutmut_10",
            "dead_letters__mutmut_11",
            "dead_letters__mutmut_12",
            "replay__mutmut_10",
            "replay__mutmut_13",
            "replay__mutmut_23",
            "replay__mutmut_26",
            "counts__mutmut_10",
            "counts__mutmut_11",
            "purge__mutmut_9",
        )
    },
    **{
        f"integration_kit.server.inbox.xǁSQLiteInboxǁ__init____mutmut_{n}": (
            "the SQLiteStore's clock only expires the rows of its own key-value table, which the inbox never "
            "uses: every time in the inbox's table is read from the inbox's clock"
        )
        for n in (12, 14)
    },
    # server.redis_inbox: the Redis webhook inbox.
    "integration_kit.server.redis_inbox.xǁRedisInboxǁclaim__mutmut_10": (
        "the claim script's sixth argument (error text) is never read by _CLAIM: 'XXXX' instead of '' changes nothing"
    ),
    **{
        f"integration_kit.server.redis_inbox.xǁRedisInboxǁcounts__mutmut_{n}": (
            "zip(InboxState, sizes) strict or not: the pipeline answers one ZCARD per InboxState, always as many"
        )
        for n in (11, 14, 15)
    },
    "integration_kit.server.redis_inbox.xǁRedisInboxǁpurge__mutmut_21": (
        "Redis reads a score's infinity in any case (strtod): ZRANGEBYSCORE's '-INF' is '-inf'"
    ),
    # webhooks.postgres_store: the PostgreSQL delivery store.
    **{
        f"integration_kit.webhooks.postgres_store.xǁPostgresDeliveryStoreǁ{name}": (
            "PostgreSQL reads SQL key words and unquoted names in any case (names fold to lower case, so the "
            "cursor's column names are the same too): the statement is the same"
        )
        for name in (
            "enqueue__mutmut_18",
            "claim_due__mutmut_13",
            "claim_due__mutmut_16",
            "claim_due__mutmut_19",
            "claim_due__mutmut_20",
            "claim_due__mutmut_22",
            "claim_due__mutmut_23",
            "claim_due__mutmut_25",
            "record__mutmut_24",
            "set_failing__mutmut_15",
            "set_failing__mutmut_18",
            "disable__mutmut_19",
            "enable__mutmut_10",
            "enable__mutmut_18",
            "log__mutmut_11",
            "delivery__mutmut_10",
            "delivery__mutmut_11",
        )
    },
    "integration_kit.webhooks.postgres_store.xǁPostgresDeliveryStoreǁ__init____mutmut_23": (
        "the schema script run as one execute (no ';' split) instead of statement by statement: psycopg runs a "
        "parameterless multi-statement query whole, in the same transaction, with the same effect"
    ),
    **{
        f"integration_kit.webhooks.postgres_store.xǁPostgresDeliveryStoreǁdelivery__mutmut_{n}": (
            "zip(names, row) strict or not: the names and the row come from the same cursor, always as many"
        )
        for n in (21, 24, 25)
    },
    **{
        f"integration_kit.webhooks.postgres_store.xǁPostgresDeliveryStoreǁ_connection__mutmut_{n}": (
            "autocommit off: every statement runs inside connection.transaction(), which, with no transaction in "
            "progress, begins one and commits it at its end in psycopg 3 either way; nothing runs outside one"
        )
        for n in (13, 16, 18)
    },
    # queues.consumer: the consumer (by name: _handle, _failed, _settle*, _reason).
    **{
        f"integration_kit.queues.consumer.xǁConsumerǁ_failed__mutmut_{n}": (
            "received=None for a requeue, retry or dead letter: _settle passes it only to _settled_event, which "
            "reads it for an ack's duration alone"
        )
        for n in (7, 22, 33)
    },
    **{
        f"integration_kit.queues.consumer.xǁConsumerǁ_failed__mutmut_{n}": (
            "'dead' is _settle's last branch in every chain (the broker call, the count, the event): any other "
            "text that is not 'ack', 'requeue' or 'retry' dead-letters the same"
        )
        for n in (21, 28, 29)
    },
    # webhooks.sender (the fifth sweep): the endpoint's client never retries, so nothing asks its budget or rng.
    "integration_kit.webhooks.sender.xǁWebhookSenderǁadd_endpoint__mutmut_17": (
        "budget=None dropped (the default BudgetPolicy): retries are disabled (max_attempts=1), so the engine never "
        "asks it for a retry (can_retry, BudgetDepleted); it only counts attempts, in a client the sender keeps private"
    ),
    **{
        f"integration_kit.webhooks.sender.xǁWebhookSenderǁadd_endpoint__mutmut_{n}": (
            "the client's rng None or dropped (its own Random): the engine draws from it only for a retry's jitter, "
            "and retries are disabled; the schedule's jitter draws from the sender's rng (tested)"
        )
        for n in (44, 49)
    },
    "integration_kit.webhooks.sender.xǁWebhookSenderǁ_deliver__mutmut_46": (
        "'CONTENT-TYPE' for 'content-type': HTTP field names are case-insensitive (RFC 9110, 5.1); the signed "
        "headers carry no other content-type for it to shadow"
    ),
    "integration_kit.webhooks.sender.xǁWebhookSenderǁ_deliver__mutmut_59": (
        "'post' for 'POST': ResilientClient.request upper-cases the method (safety.checked_method) before anything "
        "reads it"
    ),
    "integration_kit.queues.consumer.xǁConsumerǁ_finished__mutmut_3": (
        "pop(task) without a default: _finished is the done callback of a task put in _in_flight just before it "
        "was added, runs once per task, and nothing else removes a task: the key is always there"
    ),
    "integration_kit.queues.consumer.xǁConsumerǁ_settle__mutmut_1": (
        "delay's default 1.0: every retry passes its delay, and only a retry reads it (the broker call, the event)"
    ),
    "integration_kit.queues.consumer.xǁConsumerǁ_settle__mutmut_2": (
        "reason's default 'XXXX': every requeue, retry and dead letter passes its reason; an ack never reads it"
    ),
    "integration_kit.queues.consumer.xǁConsumerǁ_settle__mutmut_3": (
        "duplicate's default True: the one ack (_handle's) passes duplicate=not ran, and only an ack reads it"
    ),
    **{
        f"integration_kit.queues.consumer.{name}": (
            "received=None for a requeue, retry or dead letter (or a failed attempt, which ends in one of those): "
            "_settle passes it only to _settled_event, which reads it for an ack's duration alone"
        )
        for name in (
            "xǁConsumerǁ_fetch__mutmut_58",
            *(f"xǁConsumerǁ_handle__mutmut_{n}" for n in (17, 32, 43, 53, 65, 75)),
        )
    },
    **{
        f"integration_kit.queues.consumer.xǁConsumerǁ_fetch__mutmut_{n}": (
            "the reconnect backoff without the previous delay: RECONNECT's jitter is 'full' (RetryPolicy's "
            "default), and backoff_delay reads the previous delay only for 'decorrelated' jitter"
        )
        for n in (16, 20)
    },
}
