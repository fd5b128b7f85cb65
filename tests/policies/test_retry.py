"""Backoff, Retry-After parsing and the retry decision."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from integration_kit.policies.config import RetryPolicy
from integration_kit.policies.outcome import Outcome, OutcomeKind, Verdict
from integration_kit.policies.retry import backoff_delay, decide_retry, is_idempotent, parse_retry_after

JITTERS = ["none", "full", "equal", "decorrelated"]


def test_no_jitter_is_exponential_and_capped() -> None:
    policy = RetryPolicy(base_delay=0.1, multiplier=2, max_delay=1.0, jitter="none")
    rng = random.Random(0)
    delays = [backoff_delay(policy, n, rng) for n in range(1, 8)]
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0])


def test_full_jitter_spans_zero_to_the_exponential() -> None:
    policy = RetryPolicy(base_delay=1.0, multiplier=2, max_delay=100.0, jitter="full")
    rng = random.Random(1)
    samples = [backoff_delay(policy, 3, rng) for _ in range(2000)]
    assert 0 <= min(samples) < 0.2
    assert 3.8 < max(samples) <= 4.0


def test_equal_jitter_keeps_half_the_exponential() -> None:
    policy = RetryPolicy(base_delay=1.0, multiplier=2, max_delay=100.0, jitter="equal")
    rng = random.Random(2)
    samples = [backoff_delay(policy, 3, rng) for _ in range(2000)]
    assert 2.0 <= min(samples) < 2.2
    assert max(samples) <= 4.0


def test_decorrelated_jitter_grows_from_the_previous_delay() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=50.0, jitter="decorrelated")
    rng = random.Random(3)
    samples = [backoff_delay(policy, 2, rng, previous=4.0) for _ in range(2000)]
    assert 1.0 <= min(samples) < 1.5
    assert 11.0 < max(samples) <= 12.0
    assert backoff_delay(policy, 1, rng) <= 3.0  # previous defaults to the base


def test_same_seed_same_delays() -> None:
    policy = RetryPolicy(jitter="full")
    a = [backoff_delay(policy, n, random.Random(7)) for n in range(1, 6)]
    b = [backoff_delay(policy, n, random.Random(7)) for n in range(1, 6)]
    assert a == b


@pytest.mark.parametrize("jitter", JITTERS)
def test_attempt_ten_thousand_does_not_overflow(jitter: str) -> None:
    policy = RetryPolicy(base_delay=0.5, multiplier=3, max_delay=30.0, jitter=jitter)  # type: ignore[arg-type]
    delay = backoff_delay(policy, 10_000, random.Random(0), previous=30.0)
    assert 0 <= delay <= 30.0


@given(
    jitter=st.sampled_from(JITTERS),
    base=st.floats(0, 10),
    extra=st.floats(0, 100),
    multiplier=st.floats(1, 10),
    n=st.integers(1, 100_000),
    previous=st.none() | st.floats(0, 1000),
    seed=st.integers(0, 2**32),
)
def test_backoff_always_within_zero_and_cap(
    jitter: str, base: float, extra: float, multiplier: float, n: int, previous: float | None, seed: int
) -> None:
    policy = RetryPolicy(
        base_delay=base,
        multiplier=multiplier,
        max_delay=base + extra,
        jitter=jitter,  # type: ignore[arg-type]
    )
    delay = backoff_delay(policy, n, random.Random(seed), previous)
    assert 0 <= delay <= policy.max_delay


NOW = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),  # IMF-fixdate
        ("Wednesday, 21-Oct-15 07:28:30 GMT", 30.0),  # obsolete RFC 850 form
        ("Wed Oct 21 07:28:30 2015", 30.0),  # obsolete asctime form
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # in the past: floored at zero
    ],
)
def test_parse_retry_after_both_forms(value: str, expected: float) -> None:
    assert parse_retry_after(value, NOW) == pytest.approx(expected)


def test_parse_retry_after_accepts_posix_now_and_caps() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", NOW.timestamp()) == pytest.approx(30.0)
    assert parse_retry_after("3600", NOW, max_delay=60) == 60.0
    assert parse_retry_after("9" * 40, NOW, max_delay=5) == 5.0
    naive = datetime(2015, 10, 21, 7, 28, 0)  # naive means UTC here
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", naive) == pytest.approx(10.0)


@pytest.mark.parametrize(
    "value", [None, "", "   ", "-5", "1.5", "soon", "Wed, 99 Oct 2015 07:28:00 GMT", "١٢", "1e3", "0x10", "\x00"]
)
def test_parse_retry_after_malformed_is_none(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


@given(st.text())
def test_parse_retry_after_never_raises(value: str) -> None:
    result = parse_retry_after(value, NOW, max_delay=100)
    assert result is None or 0 <= result <= 100


@pytest.mark.parametrize(("method", "expected"), [("GET", True), ("put", True), ("DELETE", True), ("POST", False)])
def test_is_idempotent(method: str, expected: bool) -> None:
    assert is_idempotent(method) is expected


def _decide(outcome: Outcome, verdict: Verdict = Verdict.TRANSIENT, **kw: object) -> tuple[bool, float, str]:
    args: dict[str, object] = {
        "attempt": 1,
        "safe_to_repeat": True,
        "elapsed": 0.0,
        "deadline": None,
        "rng": random.Random(0),
    }
    args.update(kw)
    policy = args.pop("policy", RetryPolicy(jitter="none", base_delay=1.0))
    d = decide_retry(policy, outcome=outcome, verdict=verdict, **args)  # type: ignore[arg-type]
    return d.retry, d.delay, d.reason


S503 = Outcome(OutcomeKind.STATUS, status=503)
READ_TIMEOUT = Outcome(OutcomeKind.READ_TIMEOUT)
REFUSED = Outcome(OutcomeKind.CONNECT_ERROR)


def test_transient_failure_of_a_safe_request_is_retried_after_backoff() -> None:
    assert _decide(S503) == (True, 1.0, "backoff")


def test_connect_failure_is_retried_for_any_method() -> None:
    assert _decide(REFUSED, safe_to_repeat=False)[0] is True


@pytest.mark.parametrize("outcome", [READ_TIMEOUT, S503, Outcome(OutcomeKind.CONNECTION_LOST)])
def test_failure_after_sending_is_not_retried_for_an_unsafe_request(outcome: Outcome) -> None:
    assert _decide(outcome, safe_to_repeat=False) == (False, 0.0, "unsafe_to_repeat")


def test_429_was_not_processed_so_any_method_may_retry() -> None:
    assert _decide(Outcome(OutcomeKind.STATUS, status=429), safe_to_repeat=False)[0] is True


@pytest.mark.parametrize("verdict", [Verdict.SUCCESS, Verdict.FAILURE, Verdict.REJECTED])
def test_non_transient_verdicts_are_not_retried(verdict: Verdict) -> None:
    assert _decide(S503, verdict)[0] is False


def test_max_attempts_stops_retrying() -> None:
    assert _decide(S503, attempt=3) == (False, 0.0, "max_attempts")


def test_retry_after_hint_replaces_backoff_and_is_capped() -> None:
    hinted = Outcome(OutcomeKind.STATUS, status=429, retry_after=7.0)
    assert _decide(hinted) == (True, 7.0, "retry_after")
    capped = RetryPolicy(max_retry_after=2.0)  # never sent before the hint: a longer one ends the call
    assert _decide(hinted, policy=capped) == (False, 7.0, "retry_after_too_long")
    ignoring = RetryPolicy(jitter="none", base_delay=1.0, respect_retry_after=False)
    assert _decide(hinted, policy=ignoring) == (True, 1.0, "backoff")


def test_a_wait_ending_past_the_deadline_is_not_scheduled() -> None:
    hinted = Outcome(OutcomeKind.STATUS, status=503, retry_after=5.0)
    assert _decide(hinted, elapsed=6.0, deadline=10.0) == (False, 5.0, "retry_after_past_deadline")
    assert _decide(S503, elapsed=9.95, deadline=10.0)[2] == "deadline"
    assert _decide(hinted, elapsed=4.0, deadline=10.0)[0] is True


def test_the_edges_of_the_hint_cap_and_the_deadline() -> None:
    """A hint exactly at ``max_retry_after`` is honoured; a wait ending exactly at the deadline is not scheduled
    (there would be no time left to send), whether the wait is a hint or a backoff."""
    at_cap = Outcome(OutcomeKind.STATUS, status=429, retry_after=2.0)
    assert _decide(at_cap, policy=RetryPolicy(max_retry_after=2.0)) == (True, 2.0, "retry_after")
    assert _decide(at_cap, elapsed=8.0, deadline=10.0) == (False, 2.0, "retry_after_past_deadline")
    assert _decide(S503, elapsed=9.0, deadline=10.0) == (False, 1.0, "deadline")
    assert _decide(S503, elapsed=8.5, deadline=10.0) == (True, 1.0, "backoff")


def test_tiny_base_and_huge_attempt_number_is_capped_not_an_overflow() -> None:
    # found by hypothesis: cap / base overflows to inf, and multiplier ** n overflows the float range
    policy = RetryPolicy(base_delay=1.1125369292536007e-308, max_delay=2.0, jitter="none")
    assert backoff_delay(policy, 1025, random.Random(0)) == 2.0


# -- pinned by mutation testing (tests/mutation.py): each kills a mutant that survived the tests above ------------


def test_a_zero_base_delay_stays_zero_at_any_attempt() -> None:
    policy = RetryPolicy(base_delay=0.0, multiplier=2.0, max_delay=30.0, jitter="none")
    assert backoff_delay(policy, 10_000, random.Random(0)) == 0.0  # not the cap an overflow would give


@pytest.mark.parametrize(
    ("value", "expected"),
    [("999999999999", 999999999999.0), ("1000000000000", float("inf")), ("9" * 400, float("inf"))],
)
def test_delta_seconds_past_twelve_digits_are_infinite(value: str, expected: float) -> None:
    assert parse_retry_after(value, NOW) == expected  # 12 digits is 31,000 years; longer never overflows a float


def test_an_http_date_is_measured_from_an_aware_now_in_any_zone() -> None:
    from datetime import timedelta, timezone

    now = datetime(2024, 1, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=2)))  # 12:00 UTC
    assert parse_retry_after("Mon, 01 Jan 2024 12:00:30 GMT", now) == 30.0


@pytest.mark.parametrize("verdict", [Verdict.FAILURE, Verdict.REJECTED])
def test_a_non_transient_decision_says_why_and_waits_nothing(verdict: Verdict) -> None:
    assert _decide(S503, verdict) == (False, 0.0, f"not_retryable:{verdict.value}")


def test_the_decision_passes_the_previous_delay_to_decorrelated_jitter() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=1000.0, jitter="decorrelated")
    delays = {_decide(S503, policy=policy, previous_delay=100.0, rng=random.Random(seed))[1] for seed in range(20)}
    assert max(delays) > 3.0  # from [1, 300], not from [1, 3] as without the previous delay
    assert all(1.0 <= d <= 300.0 for d in delays)


def test_the_partners_no_retry_hint_stops_a_transient_failure() -> None:
    hinted = Outcome(OutcomeKind.STATUS, status=503, should_retry=False)
    assert _decide(hinted) == (False, 0.0, "partner_said_no_retry")


@pytest.mark.parametrize("verdict", [Verdict.FAILURE, Verdict.REJECTED])
def test_the_partners_retry_hint_makes_a_refused_answer_retryable(verdict: Verdict) -> None:
    hinted = Outcome(OutcomeKind.STATUS, status=409, should_retry=True)
    assert _decide(hinted, verdict) == (True, 1.0, "backoff")
    assert _decide(Outcome(OutcomeKind.STATUS, status=409), verdict)[0] is False


def test_the_retry_hint_never_retries_a_success_nor_an_unsafe_write() -> None:
    hinted = Outcome(OutcomeKind.STATUS, status=409, should_retry=True)
    assert _decide(hinted, Verdict.SUCCESS)[0] is False
    assert _decide(hinted, Verdict.REJECTED, safe_to_repeat=False) == (False, 0.0, "unsafe_to_repeat")
