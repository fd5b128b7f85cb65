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
}
