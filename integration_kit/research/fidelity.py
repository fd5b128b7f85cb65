"""Does the simulation predict reality? One scenario, simulated and then played live, compared.

:func:`compare` runs a scenario twice with the same client policies and the same load (open-loop arrivals evenly
spaced at ``rate`` calls per scenario second, or ``workers`` closed-loop callers each pausing ``think_time``
between calls): once in the simulator, once live, with a
:class:`~integration_kit.http.client.ResilientClient` calling the flaky upstream
(:func:`~integration_kit.sim.upstream.serve_scenario`) over real sockets on 127.0.0.1. The live run is time-scaled:
the upstream plays ``time_scale`` times faster, and the client runs on a
:class:`~integration_kit.sim.upstream.ScaledClock` with its httpx timeouts divided by ``time_scale``, so backoff,
Retry-After and breaker waits all happen in scenario seconds, as in the simulator.

Both sides draw each attempt's fate from the same stream keyed by the seed, the call's number and the attempt
(:class:`~integration_kit.sim.keyed.KeyedRandom`; the live client names its call in an ``X-Fault-Key`` header),
and the client's backoff jitter from the same seed, so a small difference in timing no longer shifts every later
draw. The :class:`FidelityReport` says whether both tell the same story: the same sequence of breaker transitions,
and load amplification and success rate within a tolerance (10 % by default) of each other. Calls have no
deadline on either side (a deadline would be measured in scenario seconds by the engine but in real seconds by
httpx). A live run also pays real per-request overhead, which the time scale magnifies in scenario time, so
latency percentiles are not compared.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import itertools
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from integration_kit.errors import IntegrationError
from integration_kit.events import Recorder, Summary
from integration_kit.http.client import ResilientClient
from integration_kit.http.config import ClientConfig
from integration_kit.policies.config import Timeouts
from integration_kit.sim.scenarios import Scenario
from integration_kit.sim.simulate import simulate
from integration_kit.sim.upstream import ScaledClock, serve_scenario

__all__ = ["FIDELITY_RATE", "FIDELITY_RATES", "FidelityReport", "compare", "fidelity_rate", "relative_gap"]

#: The open-loop rate (calls per scenario second) at which a scenario is compared by default. The check compares
#: breaker transitions exactly, so a transition must not sit within a few milliseconds (the live overhead, times the
#: time scale) of a phase boundary or of the arrival that becomes a half-open probe. At 10 calls/s the default
#: breaker's transitions fall well inside every bundled scenario's phases, except in ``outage-and-recovery``, whose
#: second probe then lands in the 10 s recovery ramp (about a third of requests still failing there), so which
#: arrival becomes the probe decides the run; at 4 calls/s its probes land in the outage and after the ramp.
FIDELITY_RATES: dict[str, float] = {
    "outage-and-recovery": 4.0,
    # Slack's Tier 3 allows 50 calls a minute: at 10/s the breaker flaps on its 429s every few seconds and one probe
    # more or less decides the sequence; at 1/s (60 a minute) the limit is still passed in every window.
    "slack-tiers": 1.0,
}
FIDELITY_RATE = 10.0


def fidelity_rate(scenario: str) -> float:
    """The default open-loop rate for comparing ``scenario`` (see :data:`FIDELITY_RATES`)."""
    return FIDELITY_RATES.get(scenario, FIDELITY_RATE)


def relative_gap(a: float, b: float) -> float:
    """``|a - b| / max(|a|, |b|)``: 0 when equal (both zero included), 1 when one is zero and the other not."""
    scale = max(abs(a), abs(b))
    return abs(a - b) / scale if scale else 0.0


@dataclass(frozen=True, slots=True)
class FidelityReport:
    """The simulated and the live run of one scenario, side by side."""

    scenario: str
    simulated: Summary
    live: Summary
    simulated_transitions: tuple[tuple[str, str], ...]
    live_transitions: tuple[tuple[str, str], ...]
    simulated_received: int
    live_received: int
    live_seconds: float

    @property
    def same_transitions(self) -> bool:
        """Whether the breaker went through the same states in the same order."""
        return self.simulated_transitions == self.live_transitions

    @property
    def amplification_gap(self) -> float:
        """The relative gap between the runs' load amplification (attempts per call)."""
        return relative_gap(self.simulated.amplification, self.live.amplification)

    @property
    def success_gap(self) -> float:
        """The relative gap between the runs' success rates."""
        return relative_gap(self.simulated.success_rate, self.live.success_rate)

    def agrees(self, tolerance: float = 0.10) -> bool:
        """Same transitions, and amplification and success rate within ``tolerance`` of each other."""
        return self.same_transitions and self.amplification_gap <= tolerance and self.success_gap <= tolerance

    def lines(self) -> list[str]:
        """A readable comparison, one figure per line."""

        def path(pairs: tuple[tuple[str, str], ...]) -> str:
            return " ".join(f"{old}->{new}" for old, new in pairs) or "(none)"

        sim, live = self.simulated, self.live
        return [
            f"scenario {self.scenario} (live run: {self.live_seconds:.1f} s)",
            f"  calls            sim {sim.calls:>7,}   live {live.calls:>7,}",
            f"  success rate     sim {sim.success_rate:>7.1%}   live {live.success_rate:>7.1%}"
            f"   gap {self.success_gap:.1%}",
            f"  amplification    sim {sim.amplification:>7.3f}   live {live.amplification:>7.3f}"
            f"   gap {self.amplification_gap:.1%}",
            f"  partner received sim {self.simulated_received:>7,}   live {self.live_received:>7,}",
            f"  transitions sim  {path(self.simulated_transitions)}",
            f"  transitions live {path(self.live_transitions)}",
            f"  agrees (same transitions, gaps <= 10%): {self.agrees()}",
        ]


def compare(
    scenario: Scenario,
    *,
    config: ClientConfig | None = None,
    seed: int = 0,
    time_scale: float = 10.0,
    workers: int = 1,
    think_time: float = 0.2,
    rate: float | None = None,
    duration: float | None = None,
    path: str = "/resource",
) -> FidelityReport:
    """Run ``scenario`` simulated and live with the same policies and load, and compare (see the module docstring).

    ``config`` gives the client policies (its ``base_url`` is replaced by the upstream's; its deadline is
    dropped); the default is :class:`~integration_kit.policies.config.ClientConfig`'s defaults. The load is
    ``workers`` closed-loop callers, or with ``rate`` open-loop arrivals evenly spaced at ``rate`` calls per
    scenario second on both sides (the live calls run on a bounded thread pool), which keeps a slow or rejected call
    from changing how many calls the partner is offered. Needs the ``server`` extra.
    """
    base = config or ClientConfig(name="fidelity", base_url="http://127.0.0.1")
    base = dataclasses.replace(base, deadline=None)
    duration = scenario.duration if duration is None else duration
    if rate is not None:
        simulated = simulate(scenario, config=base, rate=rate, arrivals="constant", duration=duration, seed=seed)
    else:
        simulated = simulate(
            scenario, config=base, rate=0, workers=workers, think_time=think_time, duration=duration, seed=seed
        )
    recorder = Recorder()
    clock = ScaledClock(time_scale)
    transitions: list[tuple[str, str]] = []
    began = time.monotonic()
    with serve_scenario(scenario, seed=seed, time_scale=time_scale) as url:
        live_config = dataclasses.replace(base, base_url=url, timeouts=_scaled(base.timeouts, time_scale))
        with ResilientClient(live_config, clock=clock, hooks=[recorder], rng=random.Random(f"{seed}/engine")) as client:
            if client.breaker is not None:
                client.breaker.add_listener(lambda t: transitions.append((t.old.value, t.new.value)))
            start = clock.now()
            end = start + duration

            numbers = itertools.count(1)  # calls in start order, as the simulator numbers them

            def one_call(number: int) -> None:
                with contextlib.suppress(IntegrationError):
                    client.get(path, headers={"x-fault-key": str(number)})

            def worker() -> None:
                while clock.now() < end:
                    one_call(next(numbers))
                    clock.sleep(think_time)

            if rate is not None:
                _open_loop(one_call, clock, start, rate, duration)
            else:
                threads = [threading.Thread(target=worker, name=f"fidelity-{i}") for i in range(workers)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
            stats = client._http.get(f"{url}/stats").json()
    return FidelityReport(
        scenario=scenario.name,
        simulated=simulated.summary,
        live=recorder.summary(),
        simulated_transitions=tuple(simulated.transition_pairs),
        live_transitions=tuple(transitions),
        simulated_received=simulated.server.received,
        live_received=int(stats["received"]),
        live_seconds=time.monotonic() - began,
    )


#: The most live calls in flight at once in an open-loop comparison (threads of the pool).
MAX_IN_FLIGHT = 64


def _open_loop(one_call: Callable[[int], None], clock: ScaledClock, start: float, rate: float, duration: float) -> None:
    """Start call number ``n + 1`` at ``start + n / rate`` scenario seconds, for every arrival before ``duration``."""
    arrivals = math.ceil(duration * rate - 1e-9)
    with concurrent.futures.ThreadPoolExecutor(MAX_IN_FLIGHT, thread_name_prefix="fidelity") as pool:
        for n in range(arrivals):
            clock.sleep(start + n / rate - clock.now())
            pool.submit(one_call, n + 1)


def _scaled(timeouts: Timeouts, time_scale: float) -> Timeouts:
    """Each phase's timeout in real seconds for an upstream played ``time_scale`` times faster."""
    return Timeouts(
        **{
            f.name: None if (v := getattr(timeouts, f.name)) is None else v / time_scale
            for f in dataclasses.fields(timeouts)
        }
    )
