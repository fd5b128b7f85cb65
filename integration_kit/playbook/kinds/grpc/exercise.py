"""Exercising a gRPC integration: every scenario in virtual time or against the flaky gRPC upstream.

- **simulate**: each method of the spec is played by the simulator (:func:`~integration_kit.sim.simulate.simulate`,
  the same call engine) at its rate, with its service-config policy. The scenarios' HTTP error mix stands for the
  gRPC statuses the live upstream plays (:data:`~integration_kit.sim.grpc.upstream.STATUS_FOR_HTTP`: 502/503/504 are
  ``UNAVAILABLE``, 429 ``RESOURCE_EXHAUSTED`` with pushback, 500 ``INTERNAL``), so a method retried on
  ``UNAVAILABLE`` is simulated retrying 502, 503 and 504; the gRPC statuses a mix names are simulated by their
  stand-ins (:data:`~integration_kit.sim.faults.GRPC_STAND_INS`: ``ABORTED`` is a 409), and a refused stream is
  resent without using an attempt, as the channel does. A non-idempotent method is simulated as a ``POST``, keyed
  when its calls carry a request id. A hedged (idempotent) method is simulated with its hedges
  (:mod:`integration_kit.sim.hedged`, the same race as the channel's).
- **live**: the flaky gRPC upstream (:mod:`integration_kit.sim.grpc.upstream`) plays each scenario on 127.0.0.1,
  ``time_scale`` times faster than real time, and an
  :class:`~integration_kit.grpc.channel.AsyncResilientChannel` (on a scaled clock, so its waits are in scenario
  seconds) calls each method at its rate, at most :data:`MAX_CALLS` calls per method and scenario (the rate is
  thinned to fit). The stand-in needs no credential and no TLS.

Each scenario's figures come from the call-finished events of every method: calls, success rate, amplification
(attempts per call), p99 latency (scenario seconds); per method too. ``summary.json`` holds them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pandas as pd

from integration_kit.errors import ConfigurationError, IntegrationError
from integration_kit.events import BreakerTransition, CallFinished, Event, Recorder
from integration_kit.grpc.channel import AsyncResilientChannel
from integration_kit.grpc.rpc import MAX_TRANSPARENT
from integration_kit.playbook.kinds.files import SUMMARY_FILE, read_summary
from integration_kit.playbook.kinds.grpc.spec import GrpcMethod, GrpcSpec
from integration_kit.playbook.kinds.protocol import ExerciseOptions
from integration_kit.playbook.verdict.bench import BenchHealth, BenchMonitor
from integration_kit.policies.config import RetryPolicy, Timeouts
from integration_kit.policies.hedging import HedgePolicy
from integration_kit.sim.faults import GRPC_STAND_INS
from integration_kit.sim.grpc import inventory_pb2
from integration_kit.sim.grpc.upstream import STATUS_FOR_HTTP, STATUS_FOR_NAME, GrpcFlakyUpstream, serve_grpc_scenario
from integration_kit.sim.hedged import GrpcAttempts
from integration_kit.sim.scenarios import Scenario
from integration_kit.sim.simulate import Arrivals, SimulationResult, simulate
from integration_kit.sim.upstream import ScaledClock

__all__ = [
    "LIVE_TIME_SCALE",
    "MAX_CALLS",
    "REQUESTS",
    "SUMMARY_FILE",
    "GrpcExercise",
    "load_run",
    "play",
    "simulate_method",
]

#: How many times faster than real time a live gRPC run plays its scenarios by default (as HTTP: at 20 the
#: 2 s deadlines become 100 ms of real time, which a loaded machine misses).
LIVE_TIME_SCALE = 10.0
#: At most this many calls per method and scenario in a live run (the rate is thinned to fit).
MAX_CALLS = 300
#: The requests a live run sends, by method of the bundled test service (any other method gets an empty request).
REQUESTS: dict[str, Any] = {
    "GetItem": inventory_pb2.GetItemRequest(sku="sku-1"),
    "Reserve": inventory_pb2.ReserveRequest(sku="sku-1", quantity=1),
    "WatchStock": inventory_pb2.WatchStockRequest(sku="sku-1", count=3),
}


@dataclass(frozen=True)
class GrpcExercise:
    """The figures of one exercise: ``{scenario: {method: [call-finished events]}}`` and how it was played.

    ``received`` is ``{scenario: {method: requests the partner saw}}`` (attempts, hedges and resends: a method's
    ``requests_per_call`` figure, the load a hedged method adds that ``amplification``, counted in engine attempts,
    does not show)."""

    spec: GrpcSpec
    calls: dict[str, dict[str, list[Event]]]
    mode: str = "simulate"
    seed: int = 0
    live: dict[str, Any] | None = None
    received: dict[str, dict[str, int]] = field(default_factory=dict)
    #: A live run's bench health per scenario (empty when simulated; see integration_kit.playbook.verdict.bench).
    bench: dict[str, BenchHealth] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The summary document: per scenario its figures (all methods, then each), objectives and ``ok``."""
        scenarios: dict[str, Any] = {}
        for scenario, by_method in self.calls.items():
            every = [e for events in by_method.values() for e in events]
            figures = _figures(every)
            figures["methods"] = {name: _figures(events) for name, events in by_method.items()}
            for name, seen in self.received.get(scenario, {}).items():
                method = figures["methods"].get(name)
                if method is not None and method["calls"]:
                    method["requests_per_call"] = seen / method["calls"]
            objectives = self.spec.objectives_for(scenario)
            figures["objectives"] = [
                {"figure": k, "limit": v, "value": figures[k], "met": _met(k, v, figures[k])}
                for k, v in objectives.items()
            ]
            if scenario in self.bench:
                figures["bench"] = self.bench[scenario].as_dict()
            scenarios[scenario] = figures
        summary: dict[str, Any] = {"integration": self.spec.name, "kind": "grpc", "mode": self.mode}
        summary |= {"seed": self.seed, "live": self.live, "scenarios": scenarios}
        summary["ok"] = all(o["met"] for s in scenarios.values() for o in s["objectives"])
        return summary

    def summary_table(self) -> pd.DataFrame:
        """One row per scenario: calls, success rate, amplification, p99 latency."""
        columns = ["calls", "success_rate", "amplification", "latency_p99"]
        rows = [{"scenario": n, **{k: f[k] for k in columns}} for n, f in self.summary()["scenarios"].items()]
        return pd.DataFrame(rows).set_index("scenario") if rows else pd.DataFrame()

    def save(self, out_dir: str | Path) -> Path:
        """Write ``summary.json`` into ``out_dir`` (created); return it."""
        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / SUMMARY_FILE).write_text(json.dumps(self.summary(), indent=2) + "\n")
        return folder


def _figures(events: list[Event]) -> dict[str, Any]:
    calls = [e for e in events if isinstance(e, CallFinished)]
    n = len(calls)
    durations = sorted(e.duration for e in calls)
    return {
        "calls": n,
        "success_rate": sum(e.ok for e in calls) / n if n else None,
        "rejected": sum(e.outcome in ("CircuitOpenError", "BulkheadFull") for e in calls),
        "amplification": sum(e.attempts for e in calls) / n if n else None,
        "latency_p99": durations[min(n - 1, math.ceil(0.99 * n) - 1)] if n else None,
        "transitions": [f"{e.old}->{e.new}" for e in events if isinstance(e, BreakerTransition)],
    }


def _met(figure: str, limit: float, value: float | None) -> bool:
    if value is None:
        return True
    return value >= limit - 1e-12 if figure == "success_rate" else value <= limit + 1e-12


def chosen(spec: GrpcSpec, options: ExerciseOptions) -> list[Scenario]:
    """The scenarios ``options`` pick; ConfigurationError for an unknown one, a bad duration or a base URL."""
    if options.base_url:
        raise ConfigurationError(f"{spec.name}: --base-url: a gRPC integration is exercised on its flaky upstream")
    scenarios = list(spec.scenarios)
    if options.scenario != "all":
        scenarios = [s for s in scenarios if s.name == options.scenario]
        if not scenarios:
            names = ", ".join(s.name for s in spec.scenarios)
            raise ConfigurationError(f"{spec.name}: no scenario {options.scenario!r} (the spec has: {names})")
    if options.duration is not None and not options.duration > 0:
        raise ConfigurationError(
            f"{spec.name}: duration must be a positive number of seconds, got {options.duration!r}"
        )
    if options.time_scale is not None and not options.time_scale > 0:
        raise ConfigurationError(f"{spec.name}: time_scale must be a positive number, got {options.time_scale!r}")
    return scenarios


def play(spec: GrpcSpec, options: ExerciseOptions) -> GrpcExercise:
    """Play the chosen scenarios (see the module docstring)."""
    scenarios = chosen(spec, options)
    if options.mode == "simulate":
        runs = {s.name: {m.short: simulate_method(spec, m, s, options.seed, options.duration) for m in spec.methods}
                for s in scenarios}  # fmt: skip
        calls = {name: {m: _recorded(r) for m, r in by_method.items()} for name, by_method in runs.items()}
        received = {name: {m: r.server.received for m, r in by_method.items()} for name, by_method in runs.items()}
        return GrpcExercise(spec, calls, "simulate", options.seed, received=received)
    scale = options.time_scale or LIVE_TIME_SCALE
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="grpc-live") as pool:  # the kernel runs a loop here
        played = {s.name: pool.submit(asyncio.run, _live(spec, s, options, scale)).result() for s in scenarios}
    calls = {name: events for name, (events, _, _) in played.items()}
    received = {name: seen for name, (_, seen, _) in played.items()}
    bench = {name: health for name, (_, _, health) in played.items()}
    live = {"time_scale": scale, "max_calls": MAX_CALLS}
    return GrpcExercise(spec, calls, "live", options.seed, live, received, bench)


def _http_statuses(codes: frozenset[grpc.StatusCode]) -> frozenset[int]:
    """The HTTP statuses that stand for ``codes`` in the simulator (the HTTP mix's and the gRPC mix's)."""
    mapped = {status for status, code in STATUS_FOR_HTTP.items() if code in codes}
    named = {int(key) for name, key in GRPC_STAND_INS.items() if key.isdigit() and STATUS_FOR_NAME[name] in codes}
    return frozenset(mapped | named)


def simulate_method(
    spec: GrpcSpec,
    method: GrpcMethod,
    scenario: Scenario,
    seed: int = 0,
    duration: float | None = None,
    *,
    rate: float | None = None,
    arrivals: Arrivals = "poisson",
) -> SimulationResult:
    """Simulate ``method`` of ``spec`` on ``scenario`` (see the module docstring) at ``rate`` calls per second
    (default: the method's), for ``duration`` seconds (default: the scenario's)."""
    config = spec.service_config.method(f"/{method.name}")
    hedged = config.hedging if config.hedging is not None and method.idempotency.safe else None
    hedging = HedgePolicy(hedged.max_attempts, hedged.delay, _http_statuses(hedged.non_fatal)) if hedged else None
    refuses = any(phase.errors.grpc_refused_stream > 0 for phase in scenario.phases)
    # the plain hot loop (with the partner's capacity queue) unless there are hedges or refused streams to play
    grpc_attempts = GrpcAttempts(hedging, MAX_TRANSPARENT) if hedging is not None or refuses else None
    retry = RetryPolicy.disabled()
    if config.retry is not None:
        retry = RetryPolicy(
            max_attempts=config.retry.max_attempts,
            base_delay=config.retry.base_delay,
            multiplier=config.retry.multiplier,
            max_delay=config.retry.max_delay,
            jitter="full",
            retry_on_status=_http_statuses(config.retryable),
            max_retry_after=config.retry.max_retry_after,
        )
    return simulate(
        scenario,
        rate=method.rate if rate is None else rate,
        arrivals=arrivals,
        duration=duration,
        seed=seed,
        retry=retry,
        breaker=spec.breaker,
        budget=spec.service_config.throttling,
        deadline=config.timeout,
        timeouts=Timeouts(connect=None, read=None, write=None, pool=None),  # the deadline bounds each attempt
        method="GET" if method.idempotency.safe else "POST",
        idempotency_methods=["POST"] if method.request_id else [],
        name=spec.name,
        grpc=grpc_attempts,
    )


def _recorded(result: SimulationResult) -> list[Event]:
    return result.recorder.of(CallFinished, BreakerTransition)


async def _live(
    spec: GrpcSpec, scenario: Scenario, options: ExerciseOptions, scale: float
) -> tuple[dict[str, list[Event]], dict[str, int], BenchHealth]:
    upstream = GrpcFlakyUpstream(scenario, seed=options.seed, time_scale=scale, max_hang=10.0)
    duration = options.duration or scenario.duration
    clock = ScaledClock(scale)
    with serve_grpc_scenario(upstream) as target:
        upstream.restart()
        recorder = Recorder()
        async with AsyncResilientChannel(
            target,
            name=spec.name,
            tls=False,
            service_config=spec.service_config,
            breaker=spec.breaker,
            idempotency=spec.idempotency,
            clock=clock,
            hooks=[recorder],
        ) as channel:
            with BenchMonitor(clock, scale) as monitor:
                began = clock.now()
                await asyncio.gather(*(_drive(channel, m, duration, clock, monitor, began) for m in spec.methods))
    finished = recorder.of(CallFinished)
    calls = {m.short: [e for e in finished if e.target.endswith(f"/{m.name}")] for m in spec.methods}  # type: ignore[attr-defined]
    # A breaker is per service: its transitions go with the service's first method, so the run counts each once
    first = {m.service: m.short for m in reversed(spec.methods)}
    for event in recorder.of(BreakerTransition):
        calls[first.get(event.breaker, spec.methods[0].short)].append(event)  # type: ignore[attr-defined]
    return calls, dict(upstream.stats()["methods"]), monitor.health()


async def _drive(
    channel: AsyncResilientChannel,
    method: GrpcMethod,
    duration: float,
    clock: ScaledClock,
    monitor: BenchMonitor,
    began: float,
) -> None:
    """Offer ``method`` at its rate (thinned to :data:`MAX_CALLS`) for ``duration`` scenario seconds, telling
    ``monitor`` how late each call starts against its plan (``began``: the run's start on the channel's clock)."""
    path, scale = f"/{method.name}", clock.time_scale
    request = REQUESTS.get(method.short)
    if request is None:
        return
    serializer = type(request).SerializeToString
    streaming = method.short == "WatchStock"
    count = min(MAX_CALLS, max(1, int(method.rate * duration)))
    gap = duration / count / scale
    tasks = []
    monitor.scheduled(count)
    for i in range(count):
        monitor.started(began + i * gap * scale)
        metadata = (("x-request-id", f"{method.short}-{i}"),) if method.request_id else ()
        if streaming:
            call = channel.unary_stream(path, serializer, lambda b: b)
            tasks.append(asyncio.ensure_future(_consume(call(request, metadata=metadata))))
        else:
            unary = channel.unary_unary(path, serializer, lambda b: b)
            tasks.append(asyncio.ensure_future(_ignore(unary(request, metadata=metadata))))
        # to the next call's planned time, not by a gap: a gap after each call would add every wake-up's delay
        # to all later calls, and the bench would take its own drift for falling behind
        await asyncio.sleep(max(0.0, (began + (i + 1) * gap * scale - clock.now()) / scale))
    await asyncio.gather(*tasks)


async def _ignore(call: Any) -> None:
    with contextlib.suppress(IntegrationError):  # counted by its call-finished event
        await call


async def _consume(stream: Any) -> None:
    try:
        async for _ in stream:
            pass
    except IntegrationError:
        pass


def load_run(out_dir: str | Path) -> dict[str, Any]:
    """Read back the summary :meth:`GrpcExercise.save` wrote; ConfigurationError when there is none."""
    return read_summary(out_dir)
