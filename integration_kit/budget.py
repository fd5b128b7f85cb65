"""A client-wide retry budget: retries stop when failures dominate, so they cannot amplify an outage.

Semantics are those of gRPC's retry throttling (proposal A6, "gRPC Retry Design", ``retryThrottling``)::

    tokens  starts at max_tokens
    success:  tokens = min(max_tokens, tokens + token_ratio)
    failure:  tokens = max(0, tokens - 1)
    a retry is allowed  <=>  tokens > max_tokens / 2

With the defaults (``max_tokens=10``, ``token_ratio=0.1``) five failures in a row without a success stop all
retries, and each missing token takes ten successes to come back. Unlike a per-call ``max_attempts``, the budget
is shared by every call of a client, which bounds the load the client adds when a partner is already failing.
Finagle's ``RetryBudget`` (``com.twitter.finagle.service.RetryBudget``) takes the same view, with retries as a
percentage of requests; A6's bucket is used here because it needs no clock and is the same figure on every
driver.

Tokens are kept as integer micro-tokens, as gRPC's C-core and Java implementations keep milli-tokens, so that ten
successes of 0.1 give back exactly one token and float drift can never flip a decision at the threshold.
``max_tokens`` and ``token_ratio`` are therefore honoured to six decimal places (A6 asks for three).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from integration_kit.config import BudgetPolicy

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
    always allows retries.
    """

    __slots__ = (
        "_allowed",
        "_enabled",
        "_failures",
        "_lock",
        "_max",
        "_policy",
        "_ratio",
        "_refused",
        "_successes",
        "_threshold",
        "_tokens",
    )

    def __init__(self, policy: BudgetPolicy | None = None) -> None:
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

    @property
    def policy(self) -> BudgetPolicy:
        """The policy this budget enforces."""
        return self._policy

    @property
    def tokens(self) -> float:
        """Tokens left now, in ``[0, max_tokens]``."""
        return self._as_tokens(self._tokens)

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

    def can_retry(self) -> bool:
        """Whether a retry may be sent now (more than half of ``max_tokens`` left); the answer is counted."""
        lock = self._lock
        lock.acquire()
        try:
            if self._tokens > self._threshold or not self._enabled:
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

    def _as_tokens(self, micro: int) -> float:
        # A full bucket reads as exactly max_tokens even when max_tokens has more than six decimals.
        return self._policy.max_tokens if micro == self._max else micro / _SCALE
