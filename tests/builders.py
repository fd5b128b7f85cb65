"""What many tests build the same way: a test integration's client settings, and a quick deterministic retry.

Imported by the test modules as ``from builders import ...`` (this folder is on ``sys.path`` through its
``conftest.py``), so a change to what "a test integration" means is made once.
"""

from __future__ import annotations

from typing import Any

from integration_kit.http.config import ClientConfig
from integration_kit.policies.config import RetryPolicy, Timeouts

__all__ = ["FAST", "QUICK", "client_config"]

#: Three attempts, 0.1 s then 0.2 s apart, no jitter: retries a test can count and time.
FAST = RetryPolicy(max_attempts=3, base_delay=0.1, jitter="none")
#: Timeouts short enough for a test, long enough for a loaded CI machine.
QUICK = Timeouts(connect=1.0, read=2.0, write=2.0, pool=1.0)


def client_config(base_url: str = "http://127.0.0.1:9", **overrides: Any) -> ClientConfig:
    """A test integration ``partner`` at ``base_url``: :data:`FAST` retries, :data:`QUICK` timeouts, breaker and
    budget off unless ``overrides`` turn them on."""
    values: dict[str, Any] = {
        "name": "partner",
        "base_url": base_url,
        "retry": FAST,
        "timeouts": QUICK,
        "breaker": None,
        "budget": None,
    }
    values.update(overrides)
    return ClientConfig(**values)
