"""The hedging race to the letter (pure logic, times given by the test): the policy's checks and their messages,
each copy's due time and time limit at the exact edges, the first copy sent without asking the budget and every
later one asking it once, which non-fatal failures the race records, and the race's counters."""

from __future__ import annotations

import math
from typing import Any

import pytest

from integration_kit.policies.budget import RetryBudget
from integration_kit.policies.config import BudgetPolicy
from integration_kit.policies.hedging import HedgeCopy, HedgePolicy, HedgeRace
from integration_kit.policies.outcome import Outcome, OutcomeKind

OK = Outcome(OutcomeKind.SUCCESS, status=0)
UNAVAILABLE = Outcome(OutcomeKind.STATUS, status=14)
INTERNAL = Outcome(OutcomeKind.STATUS, status=13)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_attempts": 0}, "max_attempts: must be an integer >= 1, got 0"),
        ({"max_attempts": True}, "max_attempts: must be an integer >= 1, got True"),
        ({"max_attempts": 2.0}, "max_attempts: must be an integer >= 1, got 2.0"),
        ({"max_attempts": 2, "delay": -0.001}, "delay: must be a finite number of seconds >= 0, got -0.001"),
        ({"max_attempts": 2, "delay": math.inf}, "delay: must be a finite number of seconds >= 0, got inf"),
        ({"max_attempts": 2, "delay": math.nan}, "delay: must be a finite number of seconds >= 0, got nan"),
        ({"max_attempts": 2, "delay": "1"}, "delay: must be a finite number of seconds >= 0, got '1'"),
    ],
)
def test_a_bad_policy_says_what_is_wrong(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        HedgePolicy(**kwargs)
    assert str(info.value) == message


def test_the_edges_of_a_policy_are_accepted() -> None:
    policy = HedgePolicy(1, 0)
    assert (policy.max_attempts, policy.delay, policy.non_fatal) == (1, 0, frozenset())
    assert HedgePolicy(2).delay == 0.0
    assert HedgePolicy(2, 0.5, frozenset({14})).is_non_fatal(UNAVAILABLE)
    assert not HedgePolicy(2, 0.5, frozenset({14})).is_non_fatal(INTERNAL)
    assert not HedgePolicy(2).is_non_fatal(UNAVAILABLE)


def test_one_attempt_is_one_copy_due_at_the_start() -> None:
    race = HedgeRace(HedgePolicy(1, 0.5), started=3.0, timeout=None, budget=None)
    assert race.next_launch_at == 3.0
    assert race.launch(2.999) is None  # before the start
    assert (race.launched, race.in_flight) == (0, 0)
    assert race.launch(3.0) == HedgeCopy(0, None)
    assert race.next_launch_at is None
    assert race.launch(3.5) is None
    assert (race.launched, race.in_flight, race.last) == (1, 1, None)


def test_a_copy_is_due_exactly_delay_after_the_previous_one_was_sent() -> None:
    race = HedgeRace(HedgePolicy(3, 0.5), started=10.0, timeout=None, budget=None)
    assert race.launch(10.2) == HedgeCopy(0, None)  # sent late: the next is due from when it went
    assert race.next_launch_at == 10.7
    assert race.launch(10.699) is None
    assert race.launch(10.7) == HedgeCopy(1, None)
    assert race.next_launch_at == pytest.approx(11.2)


def test_each_copy_gets_what_is_left_of_the_attempt_and_none_goes_at_the_limit() -> None:
    race = HedgeRace(HedgePolicy(3, 0.25), started=10.0, timeout=1.0, budget=None)
    assert race.launch(10.5) == HedgeCopy(0, 0.5)
    assert race.launch(10.75) == HedgeCopy(1, 0.25)
    assert race.launch(11.0) is None  # exactly at the limit: nothing left to give
    assert race.next_launch_at is None  # and the race sends no more
    assert (race.launched, race.in_flight) == (2, 2)


def test_the_first_copy_never_asks_the_budget_and_each_hedge_asks_once() -> None:
    budget = RetryBudget(BudgetPolicy(max_tokens=4, token_ratio=0.1))
    for _ in range(2):
        budget.record_failure()  # at the threshold: the budget refuses any retry
    race = HedgeRace(HedgePolicy(3, 0.5), started=0.0, timeout=None, budget=budget)
    assert race.launch(0.0) == HedgeCopy(0, None)
    assert budget.stats().retries_refused == 0
    assert race.launch(0.5) is None
    assert (budget.stats().retries_refused, budget.stats().retries_allowed) == (1, 0)
    assert race.next_launch_at is None
    assert race.launch(1.0) is None  # stopped: not asked again
    assert budget.stats().retries_refused == 1
    free = RetryBudget(BudgetPolicy(max_tokens=4, token_ratio=0.1))
    allowed = HedgeRace(HedgePolicy(3, 0.5), started=0.0, timeout=None, budget=free)
    assert allowed.launch(0.0) == HedgeCopy(0, None)
    assert allowed.launch(0.5) == HedgeCopy(1, None)
    assert free.stats().retries_allowed == 1


def test_the_first_non_fatal_failure_is_left_to_the_engine_and_each_later_one_is_recorded() -> None:
    budget = RetryBudget(BudgetPolicy(max_tokens=100, token_ratio=0.1))
    race = HedgeRace(HedgePolicy(4, 0.5, frozenset({14})), started=0.0, timeout=None, budget=budget)
    for n in range(3):
        race.launch(float(n))
    first = Outcome(OutcomeKind.STATUS, status=14, retry_after=1.0)
    assert race.finish(first, 2.1) is None
    assert (budget.stats().failures, race.last, race.in_flight) == (0, first, 2)
    assert race.finish(UNAVAILABLE, 2.2) is None
    assert (budget.stats().failures, race.last, race.in_flight) == (1, UNAVAILABLE, 1)
    assert race.finish(UNAVAILABLE, 2.3) is None
    assert (budget.stats().failures, race.in_flight) == (2, 0)


def test_a_non_fatal_failure_brings_the_next_copy_forward_never_back() -> None:
    race = HedgeRace(HedgePolicy(3, 10.0, frozenset({14})), started=0.0, timeout=None, budget=None)
    race.launch(0.0)
    assert race.next_launch_at == 10.0
    assert race.finish(UNAVAILABLE, 4.0) is None
    assert race.next_launch_at == 4.0  # at once, not after the delay
    race.launch(4.0)
    race.launch(5.0)  # not due: nothing
    assert race.launched == 2
    late = HedgeRace(HedgePolicy(3, 1.0, frozenset({14})), started=0.0, timeout=None, budget=None)
    late.launch(0.0)
    late.launch(1.0)
    assert late.finish(UNAVAILABLE, 2.5) is None
    assert late.next_launch_at == 2.0  # already due earlier: stays due


def test_a_failure_with_a_pushback_to_stop_ends_the_copies_but_not_the_race() -> None:
    race = HedgeRace(HedgePolicy(3, 0.5, frozenset({14})), started=0.0, timeout=None, budget=None)
    race.launch(0.0)
    race.launch(0.5)
    stop = Outcome(OutcomeKind.STATUS, status=14, should_retry=False)
    assert race.finish(stop, 0.6) is None
    assert race.next_launch_at is None
    assert race.launch(0.6) is None
    assert race.finish(OK, 0.7) is OK  # the copy still in flight may win
    assert race.in_flight == 0
    keep = HedgeRace(HedgePolicy(3, 0.5, frozenset({14})), started=0.0, timeout=None, budget=None)
    keep.launch(0.0)
    keep.finish(Outcome(OutcomeKind.STATUS, status=14, should_retry=None), 0.1)
    assert keep.next_launch_at == 0.1


def test_a_fatal_failure_or_a_success_is_handed_back_at_once() -> None:
    for outcome in (OK, INTERNAL, Outcome(OutcomeKind.SUCCESS, status=14)):
        race = HedgeRace(HedgePolicy(3, 0.5, frozenset({14})), started=0.0, timeout=None, budget=None)
        race.launch(0.0)
        assert race.finish(outcome, 0.1) is outcome
        assert (race.in_flight, race.last) == (0, None)
