"""Proof: 4 processes behind one Redis-backed breaker against an upstream that always fails.

The breaker must open for all of them within one window of the first trip, and after that the upstream must see
at most ``half_open_max_calls`` calls per wait period (the probes), whichever processes send them.
"""

from __future__ import annotations

import multiprocessing
import time
import uuid
from typing import Any

import pytest
from redis_server import redis_url

from integration_kit import BreakerPolicy, CircuitBreaker, RedisStore
from integration_kit.policies.breaker import Transition

__all__ = ["redis_url"]

PROCESSES = 4
WAIT = 1.0  # long enough that a process stalled on a loaded 2-core machine still lands in the right window
POLICY = BreakerPolicy(failure_threshold=3, failure_rate_threshold=None, wait_in_open=WAIT, half_open_max_calls=2)
RUN = 4.5  # seconds of load: about four wait periods


def _worker(url: str, prefix: str, barrier: Any, results: Any) -> None:
    """Call the failing upstream through the shared breaker as fast as it lets us, for RUN seconds."""
    transitions: list[tuple[float, str, str]] = []

    def on_transition(t: Transition) -> None:
        transitions.append((time.time(), t.new.value, t.reason))

    store = RedisStore(url, prefix=prefix)
    breaker = CircuitBreaker(POLICY, name="upstream", store=store, listeners=[on_transition])
    calls: list[tuple[float, bool]] = []
    first_rejection: float | None = None
    barrier.wait(timeout=30)
    end = time.time() + RUN
    while time.time() < end:
        permit = breaker.try_acquire()
        if permit is None:
            first_rejection = first_rejection or time.time()
            time.sleep(0.002)  # a rejected caller backs off briefly; this is real load, not a wait for a state
            continue
        calls.append((time.time(), permit.is_probe))  # the upstream sees a call now, and it fails
        permit.record_failure(0.001)
    results.put((calls, first_rejection, transitions))
    store.close()


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.timeout(120)
def test_four_processes_share_one_breaker(redis_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    prefix = f"breaker-proof:{uuid.uuid4().hex}:"
    processes = [context.Process(target=_worker, args=(redis_url, prefix, barrier, results)) for _ in range(PROCESSES)]
    for p in processes:
        p.start()
    outcomes = [results.get(timeout=60) for _ in processes]
    for p in processes:
        p.join(timeout=10)
        assert p.exitcode == 0

    trips = sorted(t for _, _, transitions in outcomes for t, new, reason in transitions if new == "open")
    first_open = trips[0]
    # Every process saw the breaker open within one wait period of the first trip.
    for _, first_rejection, _ in outcomes:
        assert first_rejection is not None
        assert first_rejection - first_open < WAIT
    # After the trip, the upstream sees only stragglers admitted before it, then bursts of probes.
    after = sorted(c for calls, _, _ in outcomes for c in calls if c[0] > first_open)
    stragglers = [c for c in after if c[0] < first_open + WAIT / 2]
    assert len(stragglers) <= PROCESSES - 1
    assert not any(probe for _, probe in stragglers)
    bursts: list[list[tuple[float, bool]]] = []
    for call in after[len(stragglers) :]:
        if bursts and call[0] - bursts[-1][-1][0] < WAIT / 2:
            bursts[-1].append(call)
        else:
            bursts.append([call])
    assert len(bursts) >= 2, bursts
    for burst in bursts:
        assert len(burst) <= POLICY.half_open_max_calls, burst
        assert all(probe for _, probe in burst)
    print(f"shared breaker: opened at +0, {len(stragglers)} stragglers, probes per period {[len(b) for b in bursts]}")
