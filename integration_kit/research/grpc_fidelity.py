"""Does the simulation predict a gRPC partner? One method of a gRPC spec, simulated and then called live, compared.

:func:`compare_grpc` is :func:`~integration_kit.research.fidelity.compare` for gRPC, by the same rule
(:meth:`~integration_kit.research.fidelity.FidelityReport.agrees`: the same breaker transitions, amplification and
success rate within 10 %). Both sides offer the same open-loop load (calls evenly spaced at ``rate`` per scenario
second) to one method of the spec, with its service-config policy, breaker and retry budget:

- simulated by the gRPC kind (:func:`~integration_kit.playbook.kinds.grpc.exercise.simulate_method`: the HTTP
  stand-ins of the statuses, hedges and refused-stream resends as the channel does them);
- live: an :class:`~integration_kit.grpc.channel.AsyncResilientChannel` on a
  :class:`~integration_kit.sim.upstream.ScaledClock` calls the flaky gRPC upstream
  (:mod:`integration_kit.sim.grpc.upstream`) served on the same event loop on 127.0.0.1, played ``time_scale``
  times faster. Each call names its number in ``x-fault-key`` metadata, so every request (attempt, hedge or
  resend) draws the fate the simulator draws for it, and the backoff jitter comes from the same seed.

Unlike the HTTP check, the calls keep the method's deadline: the channel sends each attempt's remaining time in
real seconds (scenario seconds divided by the time scale), so both sides measure it alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time

from integration_kit.errors import IntegrationError
from integration_kit.events import BreakerTransition, Recorder
from integration_kit.grpc.channel import AsyncResilientChannel
from integration_kit.playbook.kinds.grpc.exercise import REQUESTS, simulate_method
from integration_kit.playbook.kinds.grpc.spec import GrpcMethod, GrpcSpec
from integration_kit.research.fidelity import FidelityReport
from integration_kit.sim.grpc.upstream import GrpcFlakyUpstream, serving
from integration_kit.sim.scenarios import Scenario
from integration_kit.sim.upstream import ScaledClock

__all__ = ["MAX_GRPC_CALLS", "compare_grpc"]

#: The most calls one comparison may make (``rate * duration``): the check is bounded.
MAX_GRPC_CALLS = 2000


def compare_grpc(
    spec: GrpcSpec,
    method: str,
    scenario: Scenario,
    *,
    seed: int = 0,
    rate: float = 10.0,
    time_scale: float = 10.0,
    duration: float | None = None,
) -> FidelityReport:
    """Run ``method`` (its short name, e.g. ``"GetItem"``: a unary method of the bundled test service) of
    ``spec`` on ``scenario`` simulated and live, and compare (see the module docstring).

    Raises ``ValueError`` for a method the spec does not have or the test service cannot call, or for a load
    above :data:`MAX_GRPC_CALLS` calls."""
    chosen = next((m for m in spec.methods if m.short == method), None)
    if chosen is None or chosen.short not in REQUESTS or chosen.short == "WatchStock":
        raise ValueError(f"compare_grpc: {method!r} is not a unary method of the test service in {spec.name}")
    duration = scenario.duration if duration is None else duration
    arrivals = math.ceil(duration * rate - 1e-9)
    if arrivals > MAX_GRPC_CALLS:
        raise ValueError(f"compare_grpc: {arrivals} calls ({rate}/s for {duration} s) is above {MAX_GRPC_CALLS}")
    simulated = simulate_method(spec, chosen, scenario, seed, duration, rate=rate, arrivals="constant")
    began = time.monotonic()
    live, received = asyncio.run(_live(spec, chosen, scenario, seed, rate, time_scale, arrivals))
    return FidelityReport(
        scenario=scenario.name,
        simulated=simulated.summary,
        live=live.summary(),
        simulated_transitions=tuple(simulated.transition_pairs),
        live_transitions=tuple((e.old, e.new) for e in live.of(BreakerTransition)),  # type: ignore[attr-defined]
        simulated_received=simulated.server.received,
        live_received=received,
        live_seconds=time.monotonic() - began,
    )


async def _live(
    spec: GrpcSpec, method: GrpcMethod, scenario: Scenario, seed: int, rate: float, scale: float, arrivals: int
) -> tuple[Recorder, int]:
    upstream = GrpcFlakyUpstream(scenario, seed=seed, time_scale=scale, max_hang=10.0)
    recorder = Recorder()
    clock = ScaledClock(scale)
    async with (
        serving(upstream) as target,
        AsyncResilientChannel(
            target,
            name=spec.name,
            tls=False,
            service_config=spec.service_config,
            breaker=spec.breaker,
            idempotency=spec.idempotency,
            clock=clock,
            rng=random.Random(f"{seed}/engine"),
            hooks=[recorder],
        ) as channel,
    ):
        request = REQUESTS[method.short]
        call = channel.unary_unary(f"/{method.name}", type(request).SerializeToString, lambda b: b)
        upstream.restart()
        start = clock.now()
        tasks = []
        for n in range(arrivals):
            await clock.asleep(start + n / rate - clock.now())
            metadata = [("x-fault-key", str(n + 1))]
            if method.request_id:
                metadata.append(("x-request-id", f"{method.short}-{n + 1}"))
            tasks.append(asyncio.ensure_future(_quietly(call(request, metadata=tuple(metadata)))))
        await asyncio.gather(*tasks)
    return recorder, int(upstream.stats()["received"])


async def _quietly(call: object) -> None:
    with contextlib.suppress(IntegrationError):  # counted by its call-finished event
        await call  # type: ignore[misc]
