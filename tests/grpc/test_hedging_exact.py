"""The channel's hedging driver (:func:`integration_kit.grpc.hedging.hedge`) to the letter, with a scripted sender
on the running event loop and a clock that reads the loop's time (scaled, as the live playbook's): which copies go
and when (``hedgingDelay`` in scenario seconds, waited in real ones), each copy's own number and time limit, the
first answer winning, the losers cancelled and awaited, the budget asked for each hedge, the last failure when
every copy failed, and the errors for a method with no hedging policy or a race that ends with nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import grpc
import pytest

from integration_kit.engine.actions import Send
from integration_kit.grpc.config import HedgingPolicy, MethodConfig
from integration_kit.grpc.hedging import hedge
from integration_kit.grpc.rpc import Rpc
from integration_kit.policies.budget import RetryBudget
from integration_kit.policies.config import BudgetPolicy
from integration_kit.policies.hedging import HedgeRace
from integration_kit.policies.outcome import Outcome, OutcomeKind

pytestmark = pytest.mark.anyio

UNAVAILABLE = grpc.StatusCode.UNAVAILABLE


class LoopClock:
    """Scenario seconds since the start, ``time_scale`` of them per real second (the loop's clock)."""

    def __init__(self, time_scale: float = 1.0) -> None:
        self.time_scale = time_scale
        self._loop = asyncio.get_running_loop()
        self._start = self._loop.time()

    def now(self) -> float:
        return (self._loop.time() - self._start) * self.time_scale

    def sleep(self, seconds: float) -> None:  # pragma: no cover - the driver never sleeps
        raise AssertionError("hedge must not sleep")


def ok(value: str) -> Outcome:
    return Outcome(OutcomeKind.SUCCESS, status=0, value=value)


def failed(status: int = 14) -> Outcome:
    return Outcome(OutcomeKind.STATUS, status=status)


class Sender:
    """Copy ``n`` waits ``plan[n][0]`` real seconds, then ends with ``plan[n][1]``; records what each copy got."""

    def __init__(self, clock: LoopClock, *plan: tuple[float, Outcome]) -> None:
        self.clock = clock
        self.plan = plan
        self.sent: list[tuple[int | None, float | None, float, Mapping[str, Any]]] = []
        self.cancelled: list[int] = []
        self.ended: list[int] = []

    async def __call__(self, rpc: Rpc, kwargs: Mapping[str, Any], previous: int | None, action: Send) -> Outcome:
        assert previous is not None
        self.sent.append((previous, action.timeout, self.clock.now(), kwargs))
        delay, outcome = self.plan[previous]
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            self.cancelled.append(previous)
            raise
        self.ended.append(previous)
        return outcome


def rpc(policy: HedgingPolicy | None, time_scale: float = 1.0) -> Rpc:
    return Rpc("/t.S/Unary", b"", (), MethodConfig(hedging=policy), None, time_scale, (), policy)  # type: ignore[arg-type]


def policy(attempts: int = 3, delay: float = 0.05) -> HedgingPolicy:
    return HedgingPolicy(attempts, delay, frozenset({UNAVAILABLE}))


KWARGS = {"wait_for_ready": True}


async def test_a_method_without_hedging_is_refused() -> None:
    clock = LoopClock()
    with pytest.raises(ValueError) as info:
        await hedge(rpc(None), Send(1, None, None), Sender(clock), None, clock, KWARGS)
    assert str(info.value) == "hedge: /t.S/Unary has no hedging policy"


async def test_the_first_copy_that_answers_wins_and_the_others_are_cancelled() -> None:
    clock = LoopClock()
    send = Sender(clock, (1.0, ok("first")), (0.01, ok("second")), (1.0, ok("third")))
    outcome = await hedge(rpc(policy()), Send(1, None, None), send, None, clock, KWARGS)
    assert outcome.value == "second"
    assert [s[0] for s in send.sent] == [0, 1]  # the third was not due yet
    assert 0.05 <= send.sent[1][2] < 0.5  # sent hedgingDelay after the first, never before
    assert all(s[3] is KWARGS for s in send.sent)
    assert send.cancelled == [0]  # the loser was cancelled, and awaited before hedge returned


async def test_hedges_go_every_delay_up_to_max_attempts() -> None:
    clock = LoopClock()
    send = Sender(clock, (0.6, ok("first")), (1.0, ok("x")), (1.0, ok("y")), (0.0, ok("z")))
    outcome = await hedge(rpc(policy(3)), Send(1, None, None), send, None, clock, KWARGS)
    assert outcome.value == "first"
    assert [s[0] for s in send.sent] == [0, 1, 2]
    first, second, third = (s[2] for s in send.sent)
    assert first < 0.05
    assert 0.05 <= second < 0.3
    assert second + 0.05 <= third < 0.5
    assert sorted(send.cancelled) == [1, 2]


async def test_the_delay_is_scenario_seconds_waited_in_real_ones() -> None:
    clock = LoopClock(time_scale=10.0)
    send = Sender(clock, (0.2, ok("first")), (1.0, ok("x")))
    loop = asyncio.get_running_loop()
    began = loop.time()
    outcome = await hedge(rpc(policy(2, delay=1.0), time_scale=10.0), Send(1, None, None), send, None, clock, {})
    assert outcome.value == "first"
    assert loop.time() - began < 1.0
    assert 1.0 <= send.sent[1][2] < 2.0  # one scenario second: a tenth of a real one


async def test_each_copy_gets_what_is_left_of_the_attempt() -> None:
    clock = LoopClock()
    send = Sender(clock, (1.0, ok("first")), (0.01, ok("second")))
    outcome = await hedge(rpc(policy(2, delay=0.1)), Send(1, 2.0, None), send, None, clock, {})
    assert outcome.value == "second"
    first, second = send.sent
    assert first[1] == pytest.approx(2.0, abs=0.01)
    assert second[1] == pytest.approx(2.0 - second[2], abs=0.05)
    assert 1.6 < second[1] <= 1.9 + 1e-9


async def test_a_non_fatal_failure_sends_the_next_copy_at_once_and_the_last_failure_is_the_outcome() -> None:
    clock = LoopClock()
    last = failed()
    send = Sender(clock, (0.01, failed()), (0.01, failed()), (0.01, last))
    outcome = await hedge(rpc(policy(3, delay=10.0)), Send(1, None, None), send, None, clock, {})
    assert outcome is last
    assert [s[0] for s in send.sent] == [0, 1, 2]
    assert send.sent[2][2] < 0.5  # never waited the 10 s delay
    assert send.cancelled == []


async def test_a_fatal_failure_ends_the_race_at_once() -> None:
    clock = LoopClock()
    fatal = failed(13)
    send = Sender(clock, (1.0, ok("x")), (0.01, fatal), (1.0, ok("y")))
    outcome = await hedge(rpc(policy(3, delay=0.02)), Send(1, None, None), send, None, clock, {})
    assert outcome is fatal
    assert sorted(send.cancelled) == [0]


async def test_every_hedge_asks_the_budget() -> None:
    clock = LoopClock()
    budget = RetryBudget(BudgetPolicy(max_tokens=4, token_ratio=0.1))
    for _ in range(2):
        budget.record_failure()  # at the threshold: no hedge may go
    send = Sender(clock, (0.1, ok("first")), (0.0, ok("hedge")))
    outcome = await hedge(rpc(policy(2, delay=0.01)), Send(1, None, None), send, budget, clock, {})
    assert outcome.value == "first"
    assert len(send.sent) == 1
    assert budget.stats().retries_refused == 1


async def test_a_race_that_ends_with_nothing_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = LoopClock()
    monkeypatch.setattr(HedgeRace, "launch", lambda self, now: None)
    with pytest.raises(RuntimeError) as info:
        await hedge(rpc(policy()), Send(1, None, None), Sender(clock), None, clock, {})
    assert str(info.value) == "hedge: the race ended without an outcome"


async def test_a_hedge_cancelled_from_outside_cancels_its_copies() -> None:
    clock = LoopClock()
    send = Sender(clock, (1.0, ok("a")), (1.0, ok("b")))
    task = asyncio.ensure_future(hedge(rpc(policy(2, delay=0.01)), Send(1, None, None), send, None, clock, {}))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(send.cancelled) == [0, 1]
