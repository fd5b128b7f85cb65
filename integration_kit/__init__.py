"""integration_kit: resilient integrations with external services, on httpx.

Timeouts and deadlines, retries with jittered backoff and Retry-After, retry budgets, circuit breakers,
bulkheads and rate limits, idempotency keys, redaction, typed errors and events, made by one sans-I/O call engine
that the sync client, the async client and the simulator all drive. See README.md.
"""

import warnings

from integration_kit import _moved
from integration_kit.clock import Clock, ManualClock, SystemClock
from integration_kit.engine.call import CallEngine
from integration_kit.engine.decorator import resilient
from integration_kit.errors import AttemptTimeout, CircuitOpenError, IntegrationError
from integration_kit.events import Recorder
from integration_kit.http.auth import BasicAuth, BearerAuth, HeaderAuth
from integration_kit.http.client import AsyncResilientClient, ResilientClient
from integration_kit.http.config import ClientConfig
from integration_kit.policies.breaker import CircuitBreaker, CircuitState
from integration_kit.policies.budget import RetryBudget
from integration_kit.policies.config import BreakerPolicy, BudgetPolicy, Limits, RetryPolicy, Timeouts
from integration_kit.policies.retry import parse_retry_after
from integration_kit.server.keyed import idempotent
from integration_kit.server.middleware import IdempotencyMiddleware
from integration_kit.server.webhook_receiver import WebhookReceiver
from integration_kit.sim.scenarios import Scenario, load_scenario
from integration_kit.sim.simulate import SimulationResult, simulate
from integration_kit.stores import MemoryStore, RedisStore, SQLiteStore
from integration_kit.webhooks.sender import WebhookSender

_moved.install()  # the 0.2 import paths of moved modules keep working for one release

__all__ = [
    "AsyncResilientClient",
    "BasicAuth",
    "BearerAuth",
    "BreakerPolicy",
    "BudgetPolicy",
    "CallEngine",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "ClientConfig",
    "Clock",
    "HeaderAuth",
    "IdempotencyMiddleware",
    "IntegrationError",
    "Limits",
    "ManualClock",
    "MemoryStore",
    "Recorder",
    "RedisStore",
    "ResilientClient",
    "RetryBudget",
    "RetryPolicy",
    "SQLiteStore",
    "Scenario",
    "SimulationResult",
    "SystemClock",
    "Timeouts",
    "WebhookReceiver",
    "WebhookSender",
    "idempotent",
    "load_scenario",
    "parse_retry_after",
    "resilient",
    "simulate",
]

__version__ = "0.2.0"


def __getattr__(name: str) -> type[AttemptTimeout]:
    """``TimeoutError``: a deprecated alias of :class:`~integration_kit.errors.AttemptTimeout`, with a warning."""
    if name != "TimeoutError":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        "integration_kit.TimeoutError is deprecated, use integration_kit.errors.AttemptTimeout "
        "(it shadowed the builtin TimeoutError); the alias goes in the next release",
        DeprecationWarning,
        stacklevel=2,
    )
    return AttemptTimeout
