"""The call engine, which composes every policy for one logical call, and the drivers that run it.

``call`` holds :class:`CallEngine` (a generator of *send* and *wait* actions); ``actions`` the actions and the
``run_sync`` / ``run_async`` drivers; ``decorator`` holds :func:`resilient`, the engine around any callable.
"""

from integration_kit.engine.call import (
    CallEngine,
    CallGenerator,
    Send,
    Wait,
    error_for_outcome,
    new_idempotency_key,
    run_async,
    run_sync,
)

__all__ = [
    "CallEngine",
    "CallGenerator",
    "Send",
    "Wait",
    "error_for_outcome",
    "new_idempotency_key",
    "run_async",
    "run_sync",
]
