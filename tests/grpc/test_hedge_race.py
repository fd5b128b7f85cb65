"""The sans-I/O hedging race (gRFC A6) the channel and the simulator share: pure logic, times given by the test."""

from __future__ import annotations

import pytest

from integration_kit.grpc import hedging as channel_hedging
from integration_kit.policies.budget import RetryBudget
from integration_kit.policies.config import BudgetPolicy
from integration_kit.policies.hedging import HedgeCopy, HedgePolicy, HedgeRace
from integration_kit.policies.outcome import Outcome, OutcomeKind
from integration_kit.sim import hedged as simulator_hedging

POLICY = HedgePolicy(max_attempts=3, delay=0.5, non_fatal=frozenset({14}))
OK = Outcome(OutcomeKind.SUCCESS, status=0)
UNAVAILABLE = Outcome(OutcomeKind.STATUS, status=14)
INTERNAL = Outcome(OutcomeKind.STATUS, status=13)


def race(timeout: float | None = None, budget: RetryBudget | None = None, policy: HedgePolicy = POLICY) -> HedgeRace:
    return HedgeRace(policy, started=10.0, timeout=timeout, budget=budget)


def test_both_drivers_run_the_same_race() -> None:
    assert channel_hedging.HedgeRace is simulator_hedging.HedgeRace is HedgeRace


def test_copies_go_every_delay_up_to_max_attempts() -> None:
    r = race()
    assert r.launch(10.0) == HedgeCopy(0, None)
    assert r.launch(10.0) is None  # not due yet
    assert r.next_launch_at == 10.5
    assert r.launch(10.5) == HedgeCopy(1, None)
    assert r.launch(11.0) == HedgeCopy(2, None)
    assert r.next_launch_at is None
    assert r.launch(20.0) is None
    assert r.in_flight == 3


def test_the_first_success_wins() -> None:
    r = race()
    r.launch(10.0)
    r.launch(10.5)
    assert r.finish(OK, 10.6) is OK


def test_a_fatal_status_ends_the_race_a_non_fatal_one_sends_the_next_copy_at_once() -> None:
    r = race()
    r.launch(10.0)
    assert r.finish(UNAVAILABLE, 10.1) is None
    assert r.next_launch_at == 10.1
    assert r.launch(10.1) == HedgeCopy(1, None)
    assert r.finish(INTERNAL, 10.2) is INTERNAL


def test_when_every_copy_failed_non_fatally_the_last_is_the_outcome() -> None:
    r = race(policy=HedgePolicy(2, 0.5, frozenset({14})))
    r.launch(10.0)
    r.finish(UNAVAILABLE, 10.1)
    r.launch(10.1)
    second = Outcome(OutcomeKind.STATUS, status=14, retry_after=1.0)
    assert r.finish(second, 10.2) is None
    assert r.next_launch_at is None
    assert r.in_flight == 0
    assert r.last is second


def test_hedges_draw_on_the_retry_budget_and_stop_when_it_is_spent() -> None:
    budget = RetryBudget(BudgetPolicy(max_tokens=4, token_ratio=0.1))
    r = race(budget=budget, policy=HedgePolicy(5, 0.5, frozenset({14})))
    r.launch(10.0)
    r.finish(UNAVAILABLE, 10.0)  # handed to the engine: the race does not record it
    assert budget.stats().failures == 0
    r.launch(10.0)
    r.finish(UNAVAILABLE, 10.0)  # a second failure: recorded here
    assert budget.stats().failures == 1
    budget.record_failure()  # 2 of 4 tokens left: at the threshold, no more retries
    assert r.launch(10.0) is None
    assert r.next_launch_at is None


def test_a_do_not_retry_pushback_stops_the_copies() -> None:
    r = race()
    r.launch(10.0)
    r.finish(Outcome(OutcomeKind.STATUS, status=14, should_retry=False), 10.1)
    assert r.next_launch_at is None


def test_no_copy_past_the_attempts_time_limit_and_each_gets_what_is_left() -> None:
    r = race(timeout=0.8)
    assert r.launch(10.0) == HedgeCopy(0, 0.8)
    assert r.launch(10.5) == HedgeCopy(1, pytest.approx(0.3))
    assert r.launch(11.0) is None  # 0.8 s have passed
    assert r.next_launch_at is None


@pytest.mark.parametrize(("field", "kwargs"), [("max_attempts", {"max_attempts": 0}), ("delay", {"delay": -1.0})])
def test_a_bad_policy_names_the_field(field: str, kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=field):
        HedgePolicy(**{"max_attempts": 2, **kwargs})  # type: ignore[arg-type]
