"""The discrete-event simulator: many concurrent calls through one call engine, in virtual time.

:func:`simulate` plays a :class:`~integration_kit.sim.scenarios.Scenario` against a
:class:`~integration_kit.engine.call.CallEngine` built from the same policies the clients use (retry, retry budget,
circuit breaker, limits, deadline, timeouts), for open-loop arrivals at a rate (constant or Poisson) and/or a
number of closed-loop workers. Every logical call is an engine generator; a heap orders what happens next by
virtual time on one :class:`~integration_kit.clock.ManualClock`:

- a ``Send`` draws the partner's answer from the scenario at that time: a response after its latency, a refused
  connection at once, a reset after its latency, a hang forever. An attempt whose latency passes its time limit,
  ``min(timeouts.read, Send.timeout)``, ends as a ``READ_TIMEOUT`` at that limit. The draws of attempt *a*
  of call *n* (calls numbered in the order they start) are keyed by ``(seed, n, a)``
  (:class:`~integration_kit.sim.keyed.KeyedRandom`), as in the live upstream given the call's number, so both
  give the same request the same fate. When the scenario gives the partner a
  :class:`~integration_kit.sim.capacity.Capacity`, the drawn latency is the request's service time and a FIFO
  queue (:class:`~integration_kit.sim.capacity.ServerQueue`) adds the wait for capacity, or answers an overflow
  when the queue is full; the partner keeps serving requests whose client has timed out;
- a ``Wait`` resumes the call after that many seconds.

Events go to a :class:`~integration_kit.events.Recorder` (the same events and frame columns as the clients), and
the server side is counted too: attempts the partner received, per second (a refused connection is not
received). Arrivals stop after ``duration``; calls in flight then run to their end. Every source of randomness
(arrivals, faults and latencies, backoff jitter, idempotency keys) is a :class:`random.Random` seeded from
``seed``, so a run is reproducible.
"""

from __future__ import annotations

import gc
import heapq
import math
import random
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from integration_kit.clock import ManualClock
from integration_kit.engine.call import CallEngine, CallGenerator, Send
from integration_kit.errors import IntegrationError
from integration_kit.events import Hook, Recorder, Summary
from integration_kit.policies.breaker import CircuitBreaker, Transition
from integration_kit.policies.budget import RetryBudget
from integration_kit.policies.config import (
    UNSET,
    BreakerPolicy,
    BudgetPolicy,
    Limits,
    PolicySet,
    RetryPolicy,
    Timeouts,
    Unset,
)
from integration_kit.policies.outcome import Outcome, OutcomeKind
from integration_kit.sim.capacity import ServerQueue
from integration_kit.sim.hedged import GrpcAttempts, GrpcSends
from integration_kit.sim.keyed import KeyedRandom
from integration_kit.sim.provider import ProviderState, paced, simulated_outcome
from integration_kit.sim.scenarios import FAULT_ORDER, GRPC_STAND_INS, Scenario

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DEFAULT_BREAKER", "DEFAULT_BUDGET", "Arrivals", "ServerView", "SimulationResult", "simulate"]

Arrivals = Literal["poisson", "constant"]

#: The breaker a simulation uses unless told otherwise: the foundation's defaults.
DEFAULT_BREAKER = BreakerPolicy()
#: The retry budget a simulation uses unless told otherwise: the kit's defaults (gRPC A6 semantics).
DEFAULT_BUDGET = BudgetPolicy()


@dataclass(frozen=True, slots=True)
class ServerView:
    """What the partner saw: ``per_second[s]`` is the number of attempts it received during second ``s``.

    The live upstream's ``/stats`` has the same shape (:meth:`from_stats`), so load charts work on both.
    """

    per_second: tuple[int, ...]
    idempotency_keys: int = 0
    overflowed: int = 0

    @property
    def received(self) -> int:
        """Attempts received in all."""
        return sum(self.per_second)

    @property
    def peak(self) -> int:
        """The most attempts received in one second."""
        return max(self.per_second, default=0)

    @classmethod
    def from_stats(cls, stats: Mapping[str, Any]) -> ServerView:
        """Build from the live upstream's ``/stats`` JSON (``per_second`` maps a second to its count)."""
        counts = {int(k): int(v) for k, v in stats.get("per_second", {}).items()}
        size = max(counts, default=-1) + 1
        return cls(
            tuple(counts.get(s, 0) for s in range(size)),
            int(stats.get("idempotency_keys_seen", 0)),
            int(stats.get("overflowed", 0)),
        )

    def to_frame(self) -> pd.DataFrame:
        """A DataFrame with columns ``second`` and ``received`` (pandas is imported here, lazily)."""
        import pandas as pd

        return pd.DataFrame({"second": range(len(self.per_second)), "received": list(self.per_second)})


@dataclass(frozen=True)
class SimulationResult:
    """A finished simulation: its events, the server's view, the breaker's transitions and how long it took.

    ``in_flight`` counts calls that never ended (a hang with no timeout and no deadline); ``end_time`` is the
    virtual time at which the last call ended; ``wall_seconds`` is the real time the run took.
    """

    scenario: Scenario
    seed: int
    duration: float
    recorder: Recorder
    server: ServerView
    transitions: tuple[Transition, ...]
    calls_started: int
    in_flight: int
    end_time: float
    wall_seconds: float
    breaker: CircuitBreaker | None = field(default=None, repr=False)
    budget: RetryBudget | None = field(default=None, repr=False)

    @cached_property
    def summary(self) -> Summary:
        """The run's figures (computed once, on first use)."""
        return self.recorder.summary()

    @property
    def transition_pairs(self) -> list[tuple[str, str]]:
        """The breaker's transitions as ``(old, new)`` state values, in order."""
        return [(t.old.value, t.new.value) for t in self.transitions]

    def transition_lines(self) -> list[str]:
        """One readable line per breaker transition, with its virtual time."""
        return [f"t={t.time:8.2f}s  {t.old.value} -> {t.new.value}  ({t.reason})" for t in self.transitions]

    def to_frame(self) -> pd.DataFrame:
        """The events as a DataFrame with :data:`~integration_kit.events.FRAME_COLUMNS`."""
        return self.recorder.to_frame()


def simulate(
    scenario: Scenario,
    *,
    rate: float = 100.0,
    duration: float | None = None,
    arrivals: Arrivals = "poisson",
    workers: int = 0,
    think_time: float = 0.01,
    seed: int = 0,
    config: PolicySet | None = None,
    retry: RetryPolicy | Unset = UNSET,
    breaker: BreakerPolicy | Unset | None = UNSET,
    budget: BudgetPolicy | Unset | None = UNSET,
    limits: Limits | Unset | None = UNSET,
    deadline: float | Unset | None = UNSET,
    timeouts: Timeouts | Unset = UNSET,
    method: str = "GET",
    idempotency_methods: Iterable[str] | Unset = UNSET,
    quota_reserve: int | Unset | None = UNSET,
    name: str | None = None,
    hooks: Iterable[Hook] = (),
    recorder: Recorder | None = None,
    grpc: GrpcAttempts | None = None,  # a gRPC client's attempts: hedges, resent refused streams (sim.hedged)
) -> SimulationResult:
    """Run ``scenario`` for ``duration`` virtual seconds (default: the scenario's) and return the result.

    Load: ``rate`` calls per second arriving open-loop (``arrivals``: ``"poisson"`` or evenly spaced
    ``"constant"``; 0 for none) and ``workers`` closed-loop workers, each starting its next call ``think_time``
    seconds (> 0) after the last ended. Policies come from ``config`` (a client's
    :class:`~integration_kit.http.config.ClientConfig`, so the simulation runs exactly the client's settings), else
    the defaults (retry, budget and breaker on, no deadline, :class:`Timeouts()`: an attempt ends at the read
    timeout); any policy argument given overrides both (``None`` turns a breaker, budget, limits or deadline
    off). ``hooks`` get every event besides the recorder: a fresh :class:`~integration_kit.events.Recorder`, or
    ``recorder`` (an :class:`~integration_kit.sim.stream.EventStream` keeps a long run's memory bounded). A
    scenario's ``provider`` is played with its headers read as the client reads them, and ``quota_reserve`` paces
    calls on the quota they report (:class:`~integration_kit.policies.limits.QuotaPacer`; ``None``: no pacing).
    """
    policy = _Policies.resolve(
        config,
        retry=retry,
        breaker=breaker,
        budget=budget,
        limits=limits,
        deadline=deadline,
        timeouts=timeouts,
        idempotency_methods=idempotency_methods,
    )
    name = name or (config.name if config is not None else "simulated")
    duration = scenario.duration if duration is None else duration
    _check(rate, duration, arrivals, workers, think_time)
    clock = ManualClock()
    recorder = Recorder() if recorder is None else recorder
    circuit = CircuitBreaker(policy.breaker, name=name, clock=clock) if policy.breaker is not None else None
    retry_budget = RetryBudget(policy.budget) if policy.budget is not None else None
    key_rng = random.Random(f"{seed}/keys")
    engine = CallEngine(
        name=name,
        retry=policy.retry,
        breaker=circuit,
        budget=retry_budget,
        limits=policy.limits,
        deadline=policy.deadline,
        idempotency_methods=policy.idempotency_methods,
        key_factory=lambda: str(uuid.UUID(int=key_rng.getrandbits(128), version=4)),
        clock=clock,
        rng=random.Random(f"{seed}/engine"),
        hooks=[recorder, *hooks],  # the recorder alone is handed rows, not events (CallEngine._row_sink)
        pacer=paced(getattr(config, "quota_reserve", None) if quota_reserve is UNSET else quota_reserve, clock, name),
    )
    transitions: list[Transition] = []
    if circuit is not None:
        circuit.add_listener(transitions.append)
    read_timeout = policy.timeouts.read
    loop = _Loop(scenario, engine, clock, seed, method, f"sim://{scenario.name}/", read_timeout)
    loop.sends = GrpcSends.of(loop, grpc, retry_budget)  # None unless a gRPC client's
    began = time.perf_counter()
    # The run allocates millions of small acyclic objects (events) that all stay alive; the cyclic collector would
    # walk them again and again for nothing (measured: ~15% of the run). It is paused for the run only.
    collecting = gc.isenabled()
    gc.disable()
    try:
        loop.run(rate, duration, arrivals, workers, think_time)
    finally:
        if collecting:
            gc.enable()
    wall = time.perf_counter() - began
    return SimulationResult(
        scenario=scenario,
        seed=seed,
        duration=duration,
        recorder=recorder,
        server=ServerView(tuple(loop.per_second[: loop.last_second + 1]), len(loop.keys_seen), loop.overflowed),
        transitions=tuple(transitions),
        calls_started=loop.started,
        in_flight=loop.in_flight,
        end_time=loop.end_time,
        wall_seconds=wall,
        breaker=circuit,
        budget=retry_budget,
    )


@dataclass(frozen=True, slots=True)
class _Policies:
    """The policies of one run, after ``config`` and the explicit arguments are merged."""

    retry: RetryPolicy
    breaker: BreakerPolicy | None
    budget: BudgetPolicy | None
    limits: Limits | None
    deadline: float | None
    timeouts: Timeouts
    idempotency_methods: tuple[str, ...]

    @classmethod
    def resolve(cls, config: PolicySet | None, **given: Any) -> _Policies:
        """An explicit argument wins, then ``config``'s value, then the simulator's default."""
        defaults: dict[str, Any] = {
            "retry": RetryPolicy(),
            "breaker": DEFAULT_BREAKER,
            "budget": DEFAULT_BUDGET,
            "limits": None,
            "deadline": None,
            "timeouts": Timeouts(),
            "idempotency_methods": ("POST", "PATCH"),
        }
        values = {
            key: value if value is not UNSET else getattr(config, key) if config is not None else defaults[key]
            for key, value in given.items()
        }
        values["idempotency_methods"] = tuple(values["idempotency_methods"])
        return cls(**values)


def _check(rate: float, duration: float, arrivals: str, workers: int, think_time: float) -> None:
    """Reject a load that cannot run, naming the argument."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not (math.isfinite(rate) and rate >= 0):
        raise ValueError(f"simulate: rate must be a finite number >= 0, got {rate!r}")
    if not (isinstance(duration, (int, float)) and math.isfinite(duration) and duration > 0):
        raise ValueError(f"simulate: duration must be a finite number > 0, got {duration!r}")
    if arrivals not in ("poisson", "constant"):
        raise ValueError(f"simulate: arrivals must be 'poisson' or 'constant', got {arrivals!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ValueError(f"simulate: workers must be an integer >= 0, got {workers!r}")
    if not (isinstance(think_time, (int, float)) and math.isfinite(think_time) and think_time > 0):
        # zero would let a worker whose calls are rejected at once spin forever at one instant of virtual time
        raise ValueError(f"simulate: think_time must be a finite number > 0, got {think_time!r}")
    if rate == 0 and workers == 0:
        raise ValueError("simulate: no load; give rate > 0 and/or workers > 0")


_NOT_RECEIVED = (FAULT_ORDER.index("refused"), FAULT_ORDER.index("REFUSED_STREAM"))  # refused before reading
_HANG = FAULT_ORDER.index("hang")
_UNQUEUED = (*_NOT_RECEIVED, _HANG)  # faults that take none of the partner's capacity
_READ_TIMEOUT = Outcome(OutcomeKind.READ_TIMEOUT)
_WORKER = Outcome(OutcomeKind.ERROR)  # heap marker: a worker starts its next call (never sent to an engine)

#: A heap entry: (virtual time, sequence number, the call to resume or None for a new call, what to send it, the
#: call's number: 1, 2, ... in start order, the key of its draws; 0 for a new call).
_Entry = tuple[float, int, CallGenerator | None, Outcome | None, int]


class _Loop:
    """The event loop of one run; its state is kept in locals while it runs (attribute access costs)."""

    def __init__(
        self,
        scenario: Scenario,
        engine: CallEngine,
        clock: ManualClock,
        seed: int,
        method: str,
        target: str,
        read_timeout: float | None,
    ) -> None:
        self.scenario = scenario
        self.engine = engine
        self.clock = clock
        self.method = method
        self.target = target
        self.read_timeout = read_timeout
        self.fault_rng = KeyedRandom(seed)  # keyed per request, as in the live upstream
        self.arrival_rng = random.Random(f"{seed}/arrivals")
        # Outcomes per phase, indexed by fault code + 1 (code -1 is a 200); they are immutable and shared.
        self.outcomes = [_phase_outcomes(c.retry_after) for c in scenario._compiled]
        # Capacity per phase (None: unbounded), and the overflow answer of each.
        self.capacities = [c.capacity for c in scenario._compiled]
        self.overflows = [
            None if c.capacity is None or c.capacity.overflow == "hang" else _status(int(c.capacity.overflow))
            for c in scenario._compiled
        ]
        self.queue = ServerQueue(scenario.max_concurrency) if scenario.has_capacity else None
        self.provider = None if scenario.provider is None else ProviderState(scenario.provider, seed=seed, wall=0.0)
        self.overflowed = 0
        self.per_second: list[int] = []
        self.last_second = -1
        self.keys_seen: set[str] = set()
        self.started = 0
        self.in_flight = 0
        self.end_time = 0.0
        self.sends: GrpcSends | None = None

    def run(self, rate: float, duration: float, arrivals: Arrivals, workers: int, think_time: float) -> None:  # noqa: C901, PLR0912, PLR0915 - the hot loop is kept in one frame on purpose
        """Run until no call is left (or only hung ones)."""
        heap: list[_Entry] = []
        push = heapq.heappush
        pop = heapq.heappop
        seq = 0
        if rate > 0:
            push(heap, (0.0, seq, None, None, 0))
        for _ in range(workers):
            seq += 1
            push(heap, (0.0, seq, None, _WORKER, 0))
        poisson = arrivals == "poisson"
        arrived = 0
        arrival_random = self.arrival_rng.random
        log = math.log
        draw = self.scenario.draw
        fault_rng = self.fault_rng
        outcomes = self.outcomes
        read_timeout = self.read_timeout
        call = self.engine.call
        method = self.method
        target = self.target
        clock = self.clock
        per_second = self.per_second = [0] * (int(duration) + 2)
        keys_seen = self.keys_seen
        worker_calls: set[CallGenerator] = set()
        started = 0
        last_end = 0.0
        inf = math.inf
        send_type = Send
        rekey = fault_rng.rekey_request
        queue = self.queue
        admit = queue.admit if queue is not None else None
        capacities = self.capacities
        overflows = self.overflows
        overflowed = 0
        provider, pacer, sends = self.provider, self.engine.pacer, self.sends

        while heap:
            t, _, gen, value, number = pop(heap)
            if t == inf:
                push(heap, (t, _, gen, value, number))
                break  # only hung calls are left: they never end
            clock._now = t  # the loop owns this clock; ManualClock.set() would take its lock twice per event
            if gen is None:
                # A new call: an open-loop arrival (scheduling the next) or a worker's next call.
                if value is None:
                    arrived += 1
                    # ``t + expovariate(rate)`` spelt out (random.Random's own formula): one frame less per call
                    upcoming = t + -log(1.0 - arrival_random()) / rate if poisson else arrived / rate
                    if upcoming < duration:
                        seq += 1
                        push(heap, (upcoming, seq, None, None, 0))
                    gen = call(method, target)
                else:
                    gen = call(method, target)
                    worker_calls.add(gen)
                    value = None
                started += 1
                number = started
            try:
                action = gen.send(value)
            except (StopIteration, IntegrationError):
                last_end = t
                if worker_calls and gen in worker_calls:
                    worker_calls.discard(gen)
                    if t + think_time < duration:
                        seq += 1
                        push(heap, (t + think_time, seq, None, _WORKER, 0))
                continue
            seq += 1
            if type(action) is not send_type:
                push(heap, (t + action.seconds, seq, gen, None, number))  # type: ignore[union-attr]
                continue
            attempt, limit, key = action  # a Send (unpacked at once: NamedTuple attributes are slow to read)
            if sends is not None:  # a gRPC client's attempt: hedges, resent refused streams (see sim.hedged)
                push(heap, sends.entry(t, seq, gen, number, limit, key))
                continue
            rekey(number, attempt)  # = rekey(request_key(number, attempt))
            index, code, latency = draw(t, fault_rng)
            outcome = outcomes[index][code + 1]
            if admit is not None and code not in _UNQUEUED:
                capacity = capacities[index]
                if capacity is not None:
                    waited = admit(t, capacity, latency)
                    if waited is None:  # the queue is full: the overflow answer, at once
                        overflowed += 1
                        overflow = overflows[index]
                        if overflow is None:
                            code = _HANG
                        else:
                            outcome = overflow
                            latency = 0.0
                    else:
                        latency = waited
            if provider is not None and code not in _UNQUEUED:
                outcome = simulated_outcome(provider, t, method, outcome, pacer)
            if code in _NOT_RECEIVED:
                latency = 0.0  # refused at once, and never received
            else:
                if code == _HANG:
                    latency = inf
                second = int(t)
                try:
                    per_second[second] += 1
                except IndexError:
                    per_second.extend([0] * (second + 1 - len(per_second)))
                    per_second[second] += 1
                if key is not None:
                    keys_seen.add(key)
            if read_timeout is not None and (limit is None or read_timeout < limit):
                limit = read_timeout
            if limit is not None and latency > limit:
                latency = limit
                outcome = _READ_TIMEOUT
            push(heap, (t + latency, seq, gen, outcome, number))

        for _, _, gen, _, _ in heap:
            if gen is not None:
                gen.close()  # releases a hung call's bulkhead slot or half-open probe
        self.in_flight = sum(1 for entry in heap if entry[2] is not None)
        self.started = started
        self.overflowed = overflowed
        self.end_time = last_end
        self.last_second = max((s for s, n in enumerate(per_second) if n), default=-1)


def _status(status: int) -> Outcome:
    """The outcome of an HTTP answer with ``status``."""
    return Outcome(OutcomeKind.STATUS, status=status)


def _phase_outcomes(retry_after: float | None) -> tuple[Outcome, ...]:
    """The outcome of each fault code + 1 in one phase (a reset is a lost connection; a hang never answers)."""
    by_fault = {
        "refused": Outcome(OutcomeKind.CONNECT_ERROR),
        "reset": Outcome(OutcomeKind.CONNECTION_LOST),
        "hang": _READ_TIMEOUT,
        "429": Outcome(OutcomeKind.STATUS, status=429, retry_after=retry_after),
    }
    return (
        Outcome(OutcomeKind.STATUS, status=200),
        *(by_fault.get(k := GRPC_STAND_INS.get(key, key)) or _status(int(k)) for key in FAULT_ORDER),
    )
