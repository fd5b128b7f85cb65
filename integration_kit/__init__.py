"""integration_kit: resilient integrations with external services, on httpx.

Timeouts and deadlines, retries with jittered backoff and Retry-After, retry budgets, circuit breakers,
bulkheads and rate limits, idempotency keys, redaction, typed errors and events, made by one sans-I/O call engine
that the sync client, the async client and the simulator all drive. See README.md.
"""

from integration_kit.breaker import CircuitBreaker, CircuitState
from integration_kit.budget import RetryBudget
from integration_kit.clock import Clock, ManualClock, SystemClock
from integration_kit.config import BreakerPolicy, BudgetPolicy, Limits, RetryPolicy, Timeouts
from integration_kit.engine import CallEngine
from integration_kit.errors import CircuitOpenError, IntegrationError
from integration_kit.events import Recorder
from integration_kit.retry import parse_retry_after

__all__ = [
    "BreakerPolicy",
    "BudgetPolicy",
    "CallEngine",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "Clock",
    "IntegrationError",
    "Limits",
    "ManualClock",
    "Recorder",
    "RetryBudget",
    "RetryPolicy",
    "SystemClock",
    "Timeouts",
    "parse_retry_after",
]

__version__ = "0.1.0"
