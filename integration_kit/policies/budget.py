"""A client-wide retry budget: retries stop when failures dominate, so they cannot amplify an outage.

Semantics are those of gRPC's retry throttling (proposal A6, "gRPC Retry Design", ``retryThrottling``)::

    tokens  starts at max_tokens
    success:  tokens = min(max_tokens, tokens + token_ratio)
    failure:  tokens = max(0, tokens - 1)
    a retry is allowed  <=>  tokens > max_tokens / 2

With gRPC A6's example figures (``max_tokens=10``, ``token_ratio=0.1``) five failures in a row without a success
stop all retries, and each missing token takes ten successes to come back; the kit's defaults
(``max_tokens=100``, ``token_ratio=0.5``, see :class:`~integration_kit.policies.config.BudgetPolicy`) stop them
once more than a third of attempts fail. Unlike a per-call ``max_attempts``, the budget
is shared by every call of a client, which bounds the load the client adds when a partner is already failing.
Finagle's ``RetryBudget`` (``com.twitter.finagle.service.RetryBudget``) takes the same view, with retries as a
percentage of requests; A6's bucket is used here because it needs no clock and is the same figure on every
driver.

Tokens are kept as integer micro-tokens, as gRPC's C-core and Java implementations keep milli-tokens, so that ten
successes of 0.1 give back exactly one token and float drift can never flip a decision at the threshold.
``max_tokens`` and ``token_ratio`` are therefore honoured to six decimal places (A6 asks for three).

*Shared*: given a :class:`~integration_kit.stores.Store`, the tokens live in the store under the budget's
``name`` (one atomic, clamped increment per outcome), so every process of a service spends one budget. The
counters of :meth:`RetryBudget.stats` stay per process. If the store fails, ``fail_open=True`` (default) decides
from this process's own bucket, which is kept all along; ``fail_open=False`` refuses retries.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from integration_kit.clock import Clock, SystemClock
from integration_kit.errors import StoreUnavailable
from integration_kit.events import StoreUnreachable
from integration_kit.policies.config import BudgetPolicy
from integration_kit.stores.base import Store
from integration_kit.stores.fallback import StoreFallback

__all__ = ["BudgetStats", "RetryBudget"]

#: Micro-tokens per token.
_SCALE = 1_000_000


@dataclass(frozen=True, slots=True)
class BudgetStats:
    """A consistent snapshot of a :class:`RetryBudget`: its tokens and what it has been told and answered."""

    tokens: float
    successes: int
    failures: int
    retries_allowed: int
    retries_refused: int


class RetryBudget:
    """Client-wide retry throttling with gRPC A6 semantics; thread-safe, sans-I/O.

    Tell it every attempt's outcome with :meth:`record_success` / :meth:`record_failure` and ask
    :meth:`can_retry` before each retry (never before a first attempt). A disabled policy still keeps count but
    always allows retries. With ``store``, the tokens are shared by every budget of the same ``name`` on it.
    """

    __slots__ = (
        "_allowed",
        "_enabled",
        "_failures",
        "_fallback",
        "_key",
        "_lock",
        "_max",
        "_policy",
        "_ratio",
        "_refused",
        "_store",
        "_successes",
        "_threshold",
        "_tokens",
    )

    def __init__(
        self,
        policy: BudgetPolicy | None = None,
        *,
        store: Store | None = None,
        name: str = "default",
        fail_open: bool = True,
        on_store_error: Callable[[StoreUnreachable], None] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._policy = BudgetPolicy() if policy is None else policy
        self._max = max(1, round(self._policy.max_tokens * _SCALE))
        self._ratio = max(1, round(self._policy.token_ratio * _SCALE))
        # For an integer count t and any real x, t > x exactly when t > floor(x).
        self._threshold = self._max // 2
        self._enabled = self._policy.enabled
        self._lock = threading.Lock()
        self._tokens = self._max
        self._successes = 0
        self._failures = 0
        self._allowed = 0
        self._refused = 0
        if store is not None and not isinstance(store, Store):
            raise TypeError(f"RetryBudget: store must be a Store, got {type(store).__name__}")
        self._store = store
        self._key = f"budget:{name}"
        owner = f"budget {name!r}"
        self._fallback = StoreFallback(
            owner, clock or SystemClock(), fail_open=fail_open, on_store_error=on_store_error
        )

    @property
    def policy(self) -> BudgetPolicy:
        """The policy this budget enforces."""
        return self._policy

    @property
    def tokens(self) -> float:
        """Tokens left now, in ``[0, max_tokens]`` (with a store: the shared tokens, when it is reachable)."""
        return self._as_tokens(self._tokens if self._store is None else max(0, self._shared_tokens()))

    def record_success(self) -> None:
        """Count a successful attempt: give back ``token_ratio`` tokens, up to ``max_tokens``."""
        # Hot path: acquire/release by hand costs half of ``with lock`` on CPython 3.11; the body cannot raise.
        lock = self._lock
        lock.acquire()
        try:
            self._successes += 1
            tokens = self._tokens + self._ratio
            self._tokens = tokens if tokens < self._max else self._max
        finally:
            lock.release()
        if self._store is not None:
            self._shared_add(self._ratio)

    def record_failure(self) -> None:
        """Count a failed attempt (one the retry policy would retry): take one token, down to zero."""
        lock = self._lock
        lock.acquire()
        try:
            self._failures += 1
            tokens = self._tokens - _SCALE
            self._tokens = tokens if tokens > 0 else 0
        finally:
            lock.release()
        if self._store is not None:
            self._shared_add(-_SCALE)

    def can_retry(self) -> bool:
        """Whether a retry may be sent now (more than half of ``max_tokens`` left); the answer is counted."""
        tokens = self._tokens if self._store is None else self._shared_tokens()
        lock = self._lock
        lock.acquire()
        try:
            if tokens > self._threshold or not self._enabled:
                self._allowed += 1
                return True
            self._refused += 1
            return False
        finally:
            lock.release()

    def stats(self) -> BudgetStats:
        """Return a consistent snapshot of the tokens and counters."""
        with self._lock:
            return BudgetStats(
                tokens=self._as_tokens(self._tokens),
                successes=self._successes,
                failures=self._failures,
                retries_allowed=self._allowed,
                retries_refused=self._refused,
            )

    def reset(self) -> None:
        """Refill the bucket and zero the counters, as if newly built."""
        with self._lock:
            self._tokens = self._max
            self._successes = self._failures = self._allowed = self._refused = 0

    def __repr__(self) -> str:
        return f"RetryBudget(tokens={self.tokens!r}, policy={self._policy!r})"

    def _shared_add(self, delta: int) -> None:
        """Apply one outcome to the shared tokens (a failing store is noted, the local bucket already has it)."""
        assert self._store is not None
        try:
            self._store.increment(self._key, delta, initial=self._max, minimum=0, maximum=self._max)
            self._fallback.recovered()
        except StoreUnavailable as exc:
            self._fallback.failed(exc)

    def _shared_tokens(self) -> int:
        """The shared micro-tokens; while the store fails, the local ones (fail open) or -1 (fail closed)."""
        assert self._store is not None
        try:
            raw = self._store.get(self._key)
        except StoreUnavailable as exc:
            self._fallback.failed(exc)
            return self._tokens if self._fallback.fail_open else -1
        self._fallback.recovered()
        return self._max if raw is None else int(raw)

    def _as_tokens(self, micro: int) -> float:
        # A full bucket reads as exactly max_tokens even when max_tokens has more than six decimals.
        return self._policy.max_tokens if micro == self._max else micro / _SCALE
