"""Backoff, Retry-After and the retry decision: pure functions of their inputs.

Backoff formulas (AWS Architecture Blog, "Exponential Backoff and Jitter"), with ``n`` the retry number (1 for the
first retry), ``b`` the base delay, ``m`` the multiplier and ``cap`` the maximum delay::

    exp(n)        = min(cap, b * m ** (n - 1))
    none          = exp(n)
    full          = uniform(0, exp(n))
    equal         = exp(n) / 2 + uniform(0, exp(n) / 2)
    decorrelated  = min(cap, uniform(b, previous * 3))      previous starts at b

Randomness always comes from a ``random.Random`` the caller seeds; the exponent is clamped so attempt 10,000
cannot overflow.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from integration_kit.policies.config import IDEMPOTENT_METHODS, RetryPolicy
from integration_kit.policies.outcome import Outcome, Verdict

__all__ = ["RetryDecision", "backoff_delay", "decide_retry", "is_idempotent", "parse_retry_after"]


_TRANSIENT = Verdict.TRANSIENT  # a module constant: ``Verdict.X`` goes through EnumType.__getattr__ (CPython 3.11)
_SUCCESS = Verdict.SUCCESS


def backoff_delay(policy: RetryPolicy, retry_number: int, rng: random.Random, previous: float | None = None) -> float:
    """The wait before retry number ``retry_number`` (1-based), always within ``[0, policy.max_delay]``."""
    cap = policy.max_delay
    base = policy.base_delay
    if policy.jitter == "decorrelated":
        prev = base if previous is None else previous
        high = max(base, prev * 3.0)
        return min(cap, rng.uniform(base, high))
    exp = _exponential(base, policy.multiplier, cap, retry_number)
    if policy.jitter == "none":
        return exp
    if policy.jitter == "full":
        return rng.uniform(0.0, exp)
    half = exp / 2.0
    return half + rng.uniform(0.0, half)


def _exponential(base: float, multiplier: float, cap: float, retry_number: int) -> float:
    """``min(cap, base * multiplier ** (n - 1))`` without overflowing for large ``n``."""
    n = max(1, retry_number) - 1
    if base <= 0 or multiplier == 1.0:
        return min(cap, base)
    try:
        return min(cap, base * multiplier**n)
    except OverflowError:  # multiplier ** n passed the largest float: far past the cap
        return cap


def parse_retry_after(
    value: str | None,
    now: float | datetime,
    *,
    max_delay: float | None = None,
) -> float | None:
    """Seconds to wait from a ``Retry-After`` header value (RFC 9110 section 10.2.3), or ``None`` if malformed.

    Both forms are accepted: delta-seconds (``"120"``) and an HTTP-date (``"Wed, 21 Oct 2015 07:28:00 GMT"``),
    the latter measured from ``now`` (a timezone-aware datetime, or POSIX seconds; prefer the response's ``Date``
    header so clock skew between the hosts does not matter). The result is floored at 0 and capped at
    ``max_delay``. Never raises on any string.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    seconds: float | None
    if text.isascii() and text.isdigit():
        seconds = float(int(text)) if len(text) <= 12 else math.inf
    else:
        seconds = _seconds_until_http_date(text, now)
    if seconds is None:
        return None
    seconds = max(0.0, seconds)
    if max_delay is not None:
        seconds = min(seconds, max_delay)
    return seconds


def _seconds_until_http_date(text: str, now: float | datetime) -> float | None:
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:  # pragma: no cover - older Pythons returned None instead of raising
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT (RFC 9110 section 5.6.7)
        when = when.replace(tzinfo=UTC)
    if isinstance(now, datetime):
        reference = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
        return (when - reference).total_seconds()
    return when.timestamp() - now


def is_idempotent(method: str) -> bool:
    """Whether RFC 9110 defines ``method`` as idempotent (GET, HEAD, OPTIONS, TRACE, PUT, DELETE)."""
    return method.upper() in IDEMPOTENT_METHODS


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """Whether to retry, after how long, and why (the reason is recorded in events)."""

    retry: bool
    delay: float
    reason: str


def decide_retry(
    policy: RetryPolicy,
    *,
    attempt: int,
    outcome: Outcome,
    verdict: Verdict,
    safe_to_repeat: bool,
    elapsed: float,
    deadline: float | None,
    rng: random.Random,
    previous_delay: float | None = None,
) -> RetryDecision:
    """Decide whether attempt number ``attempt`` (1-based), which ended in ``outcome``, is retried.

    A transient failure is retried when the server cannot have acted on the request (a connect failure, a 429)
    or when repeating it is safe (``safe_to_repeat``: an idempotent method or an idempotency key). The wait is the
    server's ``Retry-After`` hint when there is one and the policy respects it, else the backoff. A retry whose wait
    would end at or past the deadline (``deadline`` seconds after the call started; ``elapsed`` so far) is not
    scheduled: the call fails at once instead of sleeping into certain failure.

    A request is never sent before the partner's ``Retry-After``: a hint longer than ``policy.max_retry_after``
    ends the call at once (reason ``retry_after_too_long``), and so does a hint that would end at or past the
    deadline (reason ``retry_after_past_deadline``); the call then fails with the attempt's own error, a
    :class:`~integration_kit.errors.RateLimited` carrying ``retry_after``, so the caller can schedule the call.

    The partner's explicit hint (``outcome.should_retry``) comes first: ``False`` is never retried (reason
    ``partner_said_no_retry``); ``True`` makes a failed or refused answer retryable, within the same safety, attempt
    and deadline rules.
    """
    hint = outcome.should_retry
    if hint is False:
        return RetryDecision(False, 0.0, "partner_said_no_retry")
    if verdict is not _TRANSIENT and not (hint is True and verdict is not _SUCCESS):
        return RetryDecision(False, 0.0, f"not_retryable:{verdict.value}")
    if not safe_to_repeat and outcome.may_have_been_processed:
        return RetryDecision(False, 0.0, "unsafe_to_repeat")
    if attempt >= policy.max_attempts:
        return RetryDecision(False, 0.0, "max_attempts")
    if outcome.retry_after is not None and policy.respect_retry_after:
        delay = max(0.0, outcome.retry_after)
        if not delay <= policy.max_retry_after:  # also NaN
            return RetryDecision(False, delay, "retry_after_too_long")
        if deadline is not None and elapsed + delay >= deadline:
            return RetryDecision(False, delay, "retry_after_past_deadline")
        return RetryDecision(True, delay, "retry_after")
    delay = backoff_delay(policy, attempt, rng, previous_delay)
    if deadline is not None and elapsed + delay >= deadline:
        return RetryDecision(False, delay, "deadline")
    return RetryDecision(True, delay, "backoff")
