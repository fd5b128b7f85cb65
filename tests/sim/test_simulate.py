"""The virtual-time simulator: determinism, breaker and budget behaviour, Retry-After, load models, timeouts."""

from __future__ import annotations

import pytest

from integration_kit.events import FRAME_COLUMNS, AttemptFinished, AttemptStarted, CallFinished, RetryScheduled
from integration_kit.policies.breaker import CircuitState
from integration_kit.policies.config import BreakerPolicy, BudgetPolicy, RetryPolicy, Timeouts
from integration_kit.sim.scenarios import ErrorMix, Latency, Phase, Scenario, load_scenario
from integration_kit.sim.simulate import ServerView, simulate


def test_a_run_is_deterministic_for_a_seed() -> None:
    scenario = load_scenario("flapping")
    first = simulate(scenario, rate=20, seed=4, method="POST")
    again = simulate(scenario, rate=20, seed=4, method="POST")
    other = simulate(scenario, rate=20, seed=5, method="POST")
    assert first.recorder.events == again.recorder.events  # idempotency keys included
    assert first.server == again.server
    assert first.summary == again.summary
    assert first.recorder.events != other.recorder.events
    keys = {e.idempotency_key for e in first.recorder.of(AttemptStarted)}  # type: ignore[attr-defined]
    assert None not in keys
    assert first.server.idempotency_keys == len(keys) - refused_only_keys(first)


def refused_only_keys(result: object) -> int:
    """Keys whose every attempt was refused never reached the server."""
    events = result.recorder.events  # type: ignore[attr-defined]
    attempts: dict[str, set[str]] = {}
    key_of: dict[tuple[int, int], str] = {}
    for e in events:
        if isinstance(e, AttemptStarted) and e.idempotency_key is not None:
            key_of[(e.call_id, e.attempt)] = e.idempotency_key
        elif isinstance(e, AttemptFinished):
            attempts.setdefault(key_of[(e.call_id, e.attempt)], set()).add(e.outcome)
    return sum(1 for outcomes in attempts.values() if outcomes == {"connect_error"})


def test_the_breaker_opens_during_the_outage_and_closes_after() -> None:
    result = simulate(load_scenario("outage-and-recovery"), rate=50, seed=1)
    transitions = result.transitions
    assert transitions, "the breaker never moved"
    assert transitions[0].new is CircuitState.OPEN
    assert 60 <= transitions[0].time < 65  # tripped within seconds of the outage's start
    assert transitions[-1].old is CircuitState.HALF_OPEN
    assert transitions[-1].new is CircuitState.CLOSED
    assert transitions[-1].time >= 120  # closed only once the partner recovered
    assert result.breaker is not None
    assert result.breaker.state is CircuitState.CLOSED
    rejected = result.summary.rejected
    assert rejected > 1000  # calls failed fast instead of hitting the partner
    # While open, the partner saw almost nothing: compare the outage's load with the healthy minute.
    healthy = sum(result.server.per_second[10:50]) / 40
    outage = sum(result.server.per_second[70:88]) / 18
    assert outage < healthy * 0.1


def test_the_budget_caps_amplification_under_brownout() -> None:
    # gRPC A6's example budget (the defaults before issue 12) stops retrying at ~9 % failures, so a 30 % brownout
    # loses its retries; the new defaults (100 tokens, 0.5 back per success) keep them, as a budget-less client does.
    scenario = load_scenario("brownout")
    breaker = BreakerPolicy(failure_rate_threshold=0.9)  # keep the breaker out of it: 30% never trips it
    a6 = simulate(scenario, rate=50, seed=2, breaker=breaker, budget=BudgetPolicy(max_tokens=10, token_ratio=0.1))
    default = simulate(scenario, rate=50, seed=2, breaker=breaker)
    without = simulate(scenario, rate=50, seed=2, breaker=breaker, budget=None)

    def brownout_amplification(result: object) -> float:
        per_second = result.server.per_second  # type: ignore[attr-defined]
        return sum(per_second[40:140]) / (50 * 100)

    assert without.summary.budget_refusals == 0
    assert a6.summary.budget_refusals > 1000
    assert brownout_amplification(without) > 1.35  # three attempts at 30% failures: 1 + 0.3 + 0.09
    assert brownout_amplification(a6) < 1.1
    assert a6.summary.amplification < without.summary.amplification
    assert default.summary.budget_refusals < 20
    assert 1.3 < brownout_amplification(default) < 1.5
    assert default.summary.success_rate > 0.97


def test_retry_after_is_honoured_under_rate_limiting() -> None:
    result = simulate(load_scenario("rate-limited"), rate=20, seed=3, breaker=None, budget=None)
    retries = result.recorder.of(RetryScheduled)
    after = [e for e in retries if e.reason == "retry_after"]  # type: ignore[attr-defined]
    assert len(after) > 100
    assert {e.delay for e in after} == {2.0}  # type: ignore[attr-defined]
    for e in after:
        assert 30 <= e.time <= 92
    assert all(e.reason == "backoff" for e in retries if e not in after)  # type: ignore[attr-defined]
    # With the default budget, a storm of 429s (60 % of attempts, past the third at which it stops) soon stops the
    # retries altogether.
    budgeted = simulate(load_scenario("rate-limited"), rate=20, seed=3, breaker=None)
    assert budgeted.summary.retries < len(retries) / 10
    assert budgeted.summary.budget_refusals > 100


def test_an_attempt_past_its_timeout_is_a_read_timeout_at_the_timeout() -> None:
    slow = Scenario("slow", (Phase(60, latency=Latency.constant(5.0), errors=ErrorMix(hang=0.5)),))
    result = simulate(
        slow,
        rate=2,
        arrivals="constant",
        seed=0,
        timeouts=Timeouts(read=1.5),
        retry=RetryPolicy(max_attempts=1),
        breaker=None,
    )
    finished = result.recorder.of(AttemptFinished)
    assert {e.outcome for e in finished} == {"read_timeout"}  # type: ignore[attr-defined]
    assert {round(e.duration, 9) for e in finished} == {1.5}  # type: ignore[attr-defined]
    assert result.in_flight == 0


def test_a_deadline_clips_the_attempt() -> None:
    slow = Scenario("slow", (Phase(30, latency=Latency.constant(5.0)),))
    result = simulate(slow, rate=1, arrivals="constant", deadline=0.8, breaker=None, timeouts=Timeouts(read=None))
    durations = {round(e.duration, 9) for e in result.recorder.of(AttemptFinished)}  # type: ignore[attr-defined]
    assert durations == {0.8}


def test_a_hang_with_no_timeout_never_ends() -> None:
    hung = Scenario("hung", (Phase(10, errors=ErrorMix(hang=1.0)),))
    result = simulate(hung, rate=1, arrivals="constant", breaker=None, timeouts=Timeouts(read=None))
    assert result.in_flight == 10
    assert result.summary.calls == 0
    assert result.server.received == 10


def test_constant_arrivals_and_poisson_arrivals() -> None:
    steady = Scenario("ok", (Phase(100, latency=Latency.constant(0.01)),))
    constant = simulate(steady, rate=10, arrivals="constant")
    poisson = simulate(steady, rate=10, arrivals="poisson", seed=8)
    assert constant.calls_started == 1000
    assert set(constant.server.per_second) == {10}
    assert poisson.calls_started == pytest.approx(1000, rel=0.1)
    assert len(set(poisson.server.per_second)) > 3


def test_closed_loop_workers_slow_down_with_the_partner_open_loop_does_not() -> None:
    fast = Scenario("fast", (Phase(60, latency=Latency.constant(0.1)),))
    slow = Scenario("slow", (Phase(60, latency=Latency.constant(0.5)),))
    kwargs = {"rate": 0, "workers": 4, "think_time": 0.1, "breaker": None}
    assert simulate(fast, **kwargs).calls_started == 4 * 300  # type: ignore[arg-type]
    assert simulate(slow, **kwargs).calls_started == 4 * 100  # type: ignore[arg-type]
    assert simulate(slow, rate=10, arrivals="constant").calls_started == 600
    both = simulate(fast, rate=10, arrivals="constant", workers=4, think_time=0.1, breaker=None)
    assert both.calls_started == 600 + 1200


def test_workers_survive_an_open_breaker() -> None:
    down = Scenario("down", (Phase(30, errors=ErrorMix(http_503=1.0)),))
    result = simulate(down, rate=0, workers=2, think_time=0.05)
    assert result.breaker is not None
    assert result.summary.rejected > 0
    assert result.end_time < 30


def test_events_and_frame_are_those_of_the_clients() -> None:
    result = simulate(load_scenario("steady"), rate=5, duration=20, seed=1)
    assert {type(e) for e in result.recorder.events} >= {AttemptStarted, AttemptFinished, CallFinished}
    frame = result.to_frame()
    assert list(frame.columns) == list(FRAME_COLUMNS)
    assert len(frame) == len(result.recorder)
    assert result.summary.calls == result.calls_started
    assert result.server.received == result.summary.attempts  # steady has no refusals
    server = result.server.to_frame()
    assert list(server.columns) == ["second", "received"]
    assert server["received"].sum() == result.server.received


def test_server_view_from_live_stats() -> None:
    view = ServerView.from_stats({"per_second": {"0": 3, "2": 5}, "idempotency_keys_seen": 4})
    assert view.per_second == (3, 0, 5)
    assert view.received == 8
    assert view.peak == 5
    assert view.idempotency_keys == 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate": -1}, "rate must be"),
        ({"duration": 0}, "duration must be"),
        ({"arrivals": "bursty"}, "arrivals must be"),
        ({"workers": -2}, "workers must be"),
        ({"workers": 1, "think_time": 0}, "think_time must be"),
        ({"rate": 0}, "no load"),
    ],
)
def test_bad_load_is_rejected(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        simulate(load_scenario("steady"), **kwargs)  # type: ignore[arg-type]
