"""The surviving mutants of the webhook and queue delivery paths (the ``server`` inboxes, receiver and processor,
``webhooks``, ``queues``) that no behaviour can tell from the original, by mutmut's name, with the reason.

:mod:`mutation_equivalent` merges them into ``EQUIVALENT``; the layout is the same (see that module).
"""

from __future__ import annotations

#: The equivalent survivors of these modules, by mutmut's name, with the reason.
DELIVERY_EQUIVALENT: dict[str, str] = {
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
}
