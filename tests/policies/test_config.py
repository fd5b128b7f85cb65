"""Config dataclasses: defaults, coercion and validation messages."""

from __future__ import annotations

import math

import pytest

from integration_kit.errors import ConfigurationError
from integration_kit.policies.config import BreakerPolicy, BudgetPolicy, Limits, RetryPolicy, Timeouts, build


def test_defaults_are_valid_and_frozen() -> None:
    for cls in (Timeouts, RetryPolicy, BudgetPolicy, BreakerPolicy, Limits):
        instance = cls()
        with pytest.raises(AttributeError):
            instance.__setattr__(next(iter(instance.__dataclass_fields__)), 1)


def test_timeouts_coerce_from_simpler_values() -> None:
    assert Timeouts.coerce(2.5) == Timeouts(2.5, 2.5, 2.5, 2.5)
    assert Timeouts.coerce({"read": 1.0}) == Timeouts(read=1.0)
    t = Timeouts(connect=1)
    assert Timeouts.coerce(t) is t
    assert Timeouts.coerce(None) == Timeouts()
    with pytest.raises(ConfigurationError, match="Timeouts: expected a number"):  # a config error, not a TypeError
        Timeouts.coerce("3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown field"):
        Timeouts.coerce({"reed": 1.0})
    assert Timeouts(read=None).longest is None
    assert Timeouts(1, 2, 3, 4).longest == 4


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: Timeouts(connect=0), "Timeouts.connect must be a finite number > 0, got 0"),
        (lambda: Timeouts(read=math.inf), "Timeouts.read"),
        (lambda: Timeouts(write=True), "Timeouts.write"),
        (lambda: RetryPolicy(max_attempts=0), "RetryPolicy.max_attempts must be an integer >= 1, got 0"),
        (lambda: RetryPolicy(max_attempts=2.5), "RetryPolicy.max_attempts"),
        (lambda: RetryPolicy(base_delay=-1), "RetryPolicy.base_delay"),
        (lambda: RetryPolicy(multiplier=0.5), "RetryPolicy.multiplier"),
        (lambda: RetryPolicy(base_delay=5, max_delay=1), "RetryPolicy.max_delay must be >= base_delay"),
        (lambda: RetryPolicy(jitter="fulll"), "RetryPolicy.jitter must be one of"),
        (lambda: RetryPolicy(retry_on_status=frozenset({700})), "RetryPolicy.retry_on_status"),
        (lambda: RetryPolicy(respect_retry_after="yes"), "RetryPolicy.respect_retry_after"),
        (lambda: RetryPolicy(max_retry_after=-1), "RetryPolicy.max_retry_after"),
        (lambda: BudgetPolicy(max_tokens=0), "BudgetPolicy.max_tokens"),
        (lambda: BudgetPolicy(max_tokens=5000), "BudgetPolicy.max_tokens must be <= 1000"),
        (lambda: BudgetPolicy(token_ratio=-0.1), "BudgetPolicy.token_ratio"),
        (lambda: BudgetPolicy(enabled=1), "BudgetPolicy.enabled"),
        (lambda: BreakerPolicy(failure_threshold=0), "BreakerPolicy.failure_threshold"),
        (lambda: BreakerPolicy(failure_rate_threshold=1.5), "BreakerPolicy.failure_rate_threshold"),
        (lambda: BreakerPolicy(window_type="sliding"), "BreakerPolicy.window_type"),
        (lambda: BreakerPolicy(window_size=0), "BreakerPolicy.window_size"),
        (lambda: BreakerPolicy(window_type="time", window_size=7200), "BreakerPolicy.window_size must be <= 3600"),
        (lambda: BreakerPolicy(minimum_calls=0), "BreakerPolicy.minimum_calls"),
        (lambda: BreakerPolicy(slow_call_duration=-1), "BreakerPolicy.slow_call_duration"),
        (lambda: BreakerPolicy(slow_call_rate_threshold=0), "BreakerPolicy.slow_call_rate_threshold"),
        (lambda: BreakerPolicy(ignore_statuses=frozenset({200})), "BreakerPolicy.ignore_statuses must hold HTTP"),
        (lambda: BreakerPolicy(ignore_statuses="429"), "BreakerPolicy.ignore_statuses must be a collection"),
        (lambda: BreakerPolicy(wait_in_open=0), "BreakerPolicy.wait_in_open"),
        (lambda: BreakerPolicy(wait_in_open_multiplier=0.5), "BreakerPolicy.wait_in_open_multiplier"),
        (lambda: BreakerPolicy(wait_in_open=60, max_wait_in_open=30), "BreakerPolicy.max_wait_in_open"),
        (lambda: BreakerPolicy(half_open_max_calls=0), "BreakerPolicy.half_open_max_calls"),
        (lambda: BreakerPolicy(failure_rate_threshold=None), "BreakerPolicy needs a trip condition"),
        (lambda: Limits(max_concurrent=0), "Limits.max_concurrent"),
        (lambda: Limits(rate=-1), "Limits.rate"),
        (lambda: Limits(burst=0), "Limits.burst"),
        (lambda: Limits(max_wait=-1), "Limits.max_wait"),
    ],
)
def test_bad_values_name_the_field_and_the_value(factory: object, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        factory()  # type: ignore[operator]


def test_build_from_mappings() -> None:
    policy = build(RetryPolicy, {"max_attempts": 5, "retry_on_status": [503]})
    assert policy.max_attempts == 5
    assert policy.retry_on_status == frozenset({503})
    assert build(RetryPolicy, None) == RetryPolicy()
    assert build(RetryPolicy, policy) is policy
    with pytest.raises(ValueError, match="RetryPolicy: unknown field"):
        build(RetryPolicy, {"max_atempts": 5})
    with pytest.raises(ConfigurationError, match="RetryPolicy: expected a mapping"):
        build(RetryPolicy, 5)  # type: ignore[arg-type]
    assert RetryPolicy.disabled().max_attempts == 1
