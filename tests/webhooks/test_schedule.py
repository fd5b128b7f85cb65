"""The webhook retry schedule, pure: Svix's delays, the defaults, what a schedule refuses, and ``next_delay`` at
every boundary (the end of the schedule, jitter drawn from a seeded generator, a Retry-After longer, equal,
shorter and past its cap)."""

from __future__ import annotations

import math
import random

import pytest

from integration_kit.webhooks.schedule import SVIX_SCHEDULE, RetrySchedule


def test_svix_schedule_and_the_defaults() -> None:
    assert SVIX_SCHEDULE == (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
    schedule = RetrySchedule()
    assert schedule.delays == SVIX_SCHEDULE
    assert (schedule.max_retry_after, schedule.disable_after, schedule.jitter) == (86400.0, 432000.0, 0.0)
    assert schedule.max_attempts == 8
    assert schedule.span == 99305.0  # 27 h 35 min 5 s from the first attempt to the last


def test_delays_are_kept_as_floats_and_of_takes_any_sequence() -> None:
    schedule = RetrySchedule.of([0, 2, 7], jitter=0.5, max_retry_after=9, disable_after=30)
    assert schedule.delays == (0.0, 2.0, 7.0)
    assert all(type(d) is float for d in schedule.delays)
    assert (schedule.jitter, schedule.max_retry_after, schedule.disable_after) == (0.5, 9, 30)
    assert (schedule.max_attempts, schedule.span) == (3, 9.0)
    assert RetrySchedule((0,)).span == 0
    assert RetrySchedule((3.0, 0.0)).span == 0.0  # the wait before the first attempt is not in the span


@pytest.mark.parametrize("delays", [(), (0.0, -1.0), (0.0, math.inf), (math.nan,)])
def test_delays_must_be_finite_non_negative_and_present(delays: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match=r"RetrySchedule\.delays must be finite, non-negative seconds, got"):
        RetrySchedule(delays)


@pytest.mark.parametrize("jitter", [-0.01, 1.0, 1.5])
def test_jitter_must_be_a_fraction_below_one(jitter: float) -> None:
    with pytest.raises(ValueError, match=r"RetrySchedule\.jitter must be in \[0, 1\), got"):
        RetrySchedule(jitter=jitter)


def test_limits_under_a_second_are_accepted() -> None:
    schedule = RetrySchedule(max_retry_after=0.5, disable_after=1.0)
    assert (schedule.max_retry_after, schedule.disable_after) == (0.5, 1.0)


def test_jitter_bounds_accepted() -> None:
    assert RetrySchedule(jitter=0.0).jitter == 0.0
    assert RetrySchedule(jitter=0.99).jitter == 0.99


@pytest.mark.parametrize("name", ["max_retry_after", "disable_after"])
@pytest.mark.parametrize("value", [0.0, -1.0, math.inf, math.nan])
def test_the_limits_must_be_positive_finite_seconds(name: str, value: float) -> None:
    with pytest.raises(ValueError, match=rf"RetrySchedule\.{name} must be positive seconds, got"):
        RetrySchedule(**{name: value})  # type: ignore[arg-type]


def test_next_delay_walks_the_schedule_then_ends() -> None:
    schedule = RetrySchedule((0.0, 5.0, 60.0))
    assert [schedule.next_delay(n) for n in range(4)] == [0.0, 5.0, 60.0, None]
    assert schedule.next_delay(10) is None


def test_jitter_spreads_each_delay_with_the_given_generator() -> None:
    schedule = RetrySchedule((0.0, 100.0, 100.0), jitter=0.2)
    draws = random.Random(7)
    expected = [100.0 * (1 + draws.uniform(-0.2, 0.2)) for _ in range(2)]
    rng = random.Random(7)
    assert [schedule.next_delay(1, rng=rng), schedule.next_delay(2, rng=rng)] == expected
    assert schedule.next_delay(1) == 100.0  # no generator: no jitter
    untouched = random.Random(3)
    assert RetrySchedule((0.0, 100.0)).next_delay(1, rng=untouched) == 100.0
    assert untouched.random() == random.Random(3).random()  # without jitter nothing is drawn


def test_a_longer_retry_after_is_honoured_up_to_its_cap() -> None:
    schedule = RetrySchedule((0.0, 5.0), max_retry_after=60.0)
    assert schedule.next_delay(1, retry_after=30.0) == 30.0
    assert schedule.next_delay(1, retry_after=5.0) == 5.0
    assert schedule.next_delay(1, retry_after=2.0) == 5.0  # shorter than the schedule: the schedule wins
    assert schedule.next_delay(1, retry_after=600.0) == 60.0
    assert schedule.next_delay(2, retry_after=30.0) is None  # exhausted, whatever the receiver asks
    capped = RetrySchedule((0.0, 120.0), max_retry_after=60.0)
    assert capped.next_delay(1, retry_after=600.0) == 120.0  # the cap bounds the Retry-After, not the schedule
    assert capped.next_delay(1, retry_after=121.0) == 120.0
    assert RetrySchedule().next_delay(1, retry_after=10**6) == 86400.0
