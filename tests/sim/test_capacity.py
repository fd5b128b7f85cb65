"""Partners with finite capacity (the queue model, the simulator, the live upstream's real queue) and keyed draws."""

from __future__ import annotations

import concurrent.futures
import random
import time

import httpx
import pytest

from integration_kit.clock import ManualClock
from integration_kit.errors import ConfigurationError
from integration_kit.policies.config import RetryPolicy
from integration_kit.sim.capacity import Capacity, ServerQueue
from integration_kit.sim.keyed import BLOCK, KeyedRandom, request_key
from integration_kit.sim.scenarios import Scenario, load_scenario
from integration_kit.sim.simulate import simulate
from integration_kit.sim.upstream import FlakyUpstream, serve_scenario


def scenario(capacity: dict[str, object] | None = None, **phase: object) -> Scenario:
    data: dict[str, object] = {"name": "cap", "phases": [{"duration": 100, "latency": 0.1, **phase}]}
    if capacity is not None:
        data["capacity"] = capacity
    return Scenario.from_mapping(data)


# --- the pure queue model -------------------------------------------------------------------------------------


def test_concurrency_queues_fifo_and_the_wait_adds_to_latency() -> None:
    queue = ServerQueue(2)
    cap = Capacity(concurrency=2)
    assert queue.admit(0.0, cap, 1.0) == 1.0  # slot 0 free
    assert queue.admit(0.0, cap, 1.0) == 1.0  # slot 1 free
    assert queue.admit(0.0, cap, 1.0) == 2.0  # waits a second for a slot
    assert queue.waiting(0.5) == 1
    assert queue.waiting(1.0) == 0


def test_rate_paces_starts_and_a_full_queue_overflows() -> None:
    queue = ServerQueue()
    cap = Capacity(rate=10, queue=2)
    waits = [queue.admit(0.0, cap, 0.0) for _ in range(4)]
    assert waits[:3] == [0.0, pytest.approx(0.1), pytest.approx(0.2)]
    assert waits[3] is None  # two already waiting: overflow, takes no capacity
    assert queue.admit(0.15, cap, 0.0) == pytest.approx(0.15)  # one started at 0.1; one waiting; starts at 0.3


def test_a_smaller_concurrency_in_a_phase_uses_fewer_slots() -> None:
    queue = ServerQueue(4)
    small = Capacity(concurrency=1)
    assert queue.admit(0.0, small, 1.0) == 1.0
    assert queue.admit(0.0, small, 1.0) == 2.0  # slots 1-3 idle in this phase


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"rate": 0}, "capacity.rate: must be a finite number > 0"),
        ({"concurrency": 1.5}, "capacity.concurrency: must be an integer >= 1"),
        ({"rate": 5, "queue": -1}, "capacity.queue: must be an integer >= 0"),
        ({"queue": 3}, "capacity.rate: give rate and/or concurrency"),
        ({"rate": 5, "overflow": 200}, "capacity.overflow: must be an HTTP error status"),
        ({"rate": 5, "burst": 2}, "capacity.burst: unknown key"),
    ],
)
def test_a_bad_capacity_names_the_field(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message.replace(".", r"\.")):
        scenario(table)


def test_a_phase_capacity_wins_over_the_scenario_capacity() -> None:
    storm = load_scenario("retry-storm")
    assert storm.has_capacity
    assert storm.capacity_at(0) == Capacity(rate=150, queue=2000)
    assert storm.capacity_at(35) == Capacity(rate=40, queue=2000)
    assert storm.capacity_at(60) == Capacity(rate=150, queue=2000)
    assert load_scenario("steady").capacity_at(0) is None


# --- the simulator -----------------------------------------------------------------------------------------------


def test_the_simulator_queues_past_capacity_and_answers_overflows_with_503() -> None:
    # 50 calls/s against 20/s of capacity and a queue of 10: most requests overflow with an immediate 503.
    tight = scenario({"rate": 20, "queue": 10})
    result = simulate(tight, rate=50, duration=20, arrivals="constant", retry=RetryPolicy.disabled(), breaker=None)
    frame = result.to_frame()
    finished = frame[frame.event == "attempt_finished"]
    assert result.server.overflowed == (finished.status == 503).sum()
    assert 550 < result.server.overflowed < 650  # about 30 of the 50 per second
    served = finished[finished.status == 200]
    assert served.duration.max() > 0.5  # 10 in line at 20/s: a ~0.5 s wait on top of 0.1 s of service
    ample = simulate(scenario({"rate": 1000}), rate=50, duration=20, arrivals="constant", breaker=None)
    assert ample.server.overflowed == 0
    assert ample.to_frame().duration.max() == pytest.approx(0.1)


def test_the_retry_storm_is_metastable_for_a_naive_retrier_only() -> None:
    storm = load_scenario("retry-storm")
    naive = simulate(storm, seed=1, retry=RetryPolicy(max_attempts=3), budget=None, breaker=None)
    ours = simulate(storm, seed=1)
    late = slice(int(storm.duration) - 60, int(storm.duration))
    assert min(naive.server.per_second[late]) > 150  # still offered ~3x: the queue never drains
    assert naive.summary.success_rate < 0.5
    assert max(ours.server.per_second[late]) < 150
    assert ours.summary.success_rate > 0.8


# --- the live upstream's real queue ------------------------------------------------------------------------------


def test_the_live_upstream_serves_through_a_real_bounded_queue() -> None:
    # One slot, 1 s of service, one place in line: of three requests a moment apart one is served, one waits for
    # it (about 2 s in all), and the third finds the line full and gets a 503 at once.
    tight = scenario({"concurrency": 1, "queue": 1}, latency=1.0)
    with serve_scenario(tight, seed=3) as url, httpx.Client(base_url=url, timeout=5) as http:
        http.get("/stats")  # a warm connection pool is not needed, but the server is surely up

        def timed(delay: float) -> tuple[int, float]:
            time.sleep(delay)
            began = time.monotonic()
            with httpx.Client(base_url=url, timeout=5) as own:
                status = own.get("/x").status_code
            return status, time.monotonic() - began

        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(timed, [0.0, 0.2, 0.4]))
        stats = http.get("/stats").json()
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200, 200, 503]
    assert max(took for status, took in answers if status == 200) > 1.5
    assert min(took for status, took in answers if status == 503) < 0.8
    assert stats["overflowed"] == 1


# --- keyed draws ------------------------------------------------------------------------------------------------


def test_keyed_draws_depend_on_seed_and_key_only() -> None:
    one, two = KeyedRandom(7), KeyedRandom(7)
    one.rekey(5)
    first = [one.random(), one.gauss()]
    two.random()  # whatever was drawn before does not matter
    two.rekey(5)
    assert [two.random(), two.gauss()] == first
    two.rekey(6)
    assert two.random() != first[0]
    other = KeyedRandom(8)
    other.rekey(5)
    assert other.random() != first[0]
    values = []
    for key in range(20_000):
        one.rekey(key)
        values.append(one.random())
    assert 0.49 < sum(values) / len(values) < 0.51
    assert all(0 <= v < 1 for v in values)
    with pytest.raises(TypeError):
        KeyedRandom("7")  # type: ignore[arg-type]


def test_simulator_and_upstream_give_request_n_the_same_fate() -> None:
    mix = {"503": 0.3, "reset": 0.1, "429": 0.1}
    faults = Scenario.from_mapping(
        {
            "name": "keyed",
            "phases": [{"duration": 1000, "latency": {"kind": "lognormal", "median": 0.1, "p99": 1}, "errors": mix}],
        }
    )
    clock = ManualClock()
    upstream = FlakyUpstream(faults, seed=11, clock=clock)
    order = [(call, attempt) for call in range(1, 101) for attempt in (1, 2)]
    random.Random(1).shuffle(order)  # any order of arrival: a request's fate is its own
    live = {(call, attempt): upstream.decide(fault_key=str(call)) for call, attempt in sorted(order)}
    rng = KeyedRandom(11)
    for call, attempt in order:
        rng.rekey(request_key(call, attempt))
        assert faults.decide(0.0, rng) == live[call, attempt]
    unkeyed = [upstream.decide() for _ in range(50)]  # without the header: keyed by arrival
    assert len({d.latency for d in unkeyed}) == 50


def test_the_fast_rekey_and_gauss_match_their_definitions() -> None:
    one, two = KeyedRandom(3), KeyedRandom(3)
    for call, attempt in [(1, 1), (1, 2), (77, 3), (10**9, 1)]:
        one.rekey(request_key(call, attempt))
        two.rekey_request(call, attempt)
        assert one.random() == two.random()
    normals = []
    for key in range(20_000):
        one.rekey(key)
        normals.append(one.gauss())
    mean = sum(normals) / len(normals)
    variance = sum((x - mean) ** 2 for x in normals) / len(normals)
    assert abs(mean) < 0.03
    assert 0.95 < variance < 1.05


def test_first_attempts_prepared_in_blocks_draw_what_rekey_draws() -> None:
    """rekey_request prepares first attempts BLOCK at a time; every value must be the one rekey() gives, whatever
    the order of calls (in a block, past it, before it: a late first attempt), the attempt and the draws taken."""
    picks = random.Random(2)
    calls = [*range(1, 2 * BLOCK + 50), 5, 3 * BLOCK, 7, 2**47 - 1, 2**47, 2**64 + 9]
    for seed in (0, 11, 2**40):
        fast, slow = KeyedRandom(seed), KeyedRandom(seed)
        for call in calls:
            for attempt in (1, 2) if picks.random() < 0.2 else (1,):
                fast.rekey_request(call, attempt)
                slow.rekey(request_key(call, attempt))
                for _ in range(picks.randrange(0, 5)):  # 0 to 4 draws: past the two prepared outputs too
                    if picks.random() < 0.5:
                        assert fast.random() == slow.random(), (seed, call, attempt)
                    else:
                        assert fast.gauss() == slow.gauss(), (seed, call, attempt)
