"""Every row of issue 28's speed table in one run: ours beside the peer (or the raw library), as ratios.

    .venv/bin/python bench/speed.py            # about 3 minutes on a quiet 2-core machine
    .venv/bin/python bench/speed.py --quick    # fewer rounds, a shorter simulation, 20 tune candidates

Rows, each measured in interleaved rounds (ours and the peer alternate, so machine noise hits both alike; the
figure is the median of the per-round ratios):

- sequential GET over loopback, ``ResilientClient`` (retry, breaker, budget, a Recorder) vs raw ``httpx.Client``
  (bench/overhead.py's server and rounds);
- 16 threads sharing one client, calls per second, ours vs raw httpx;
- the whole engine (retry + breaker + budget) per call over a bare call vs tenacity's retry alone;
- the breaker alone per call (``CircuitBreaker.call``) vs pybreaker's ``call``;
- the simulator, calls per second of wall time on one core (``steady`` at 100 calls/s, keyed draws, recording);
- ``tune payments`` wall time (100 candidates x scenarios x 2 seeds on the machine's cores; ``--quick``: 20);
- the OpenTelemetry hook per call over the SDK's own floor for the same spans and records (bench/telemetry.py's
  yardstick), and the hook with head sampling off (``ALWAYS_OFF``) and metrics kept, over no hook, also with
  ``attempts_histogram=False`` (two histogram records per call, not three), beside one bare SDK record.

``--only GROUP`` (http, engine, simulator, tune, otel) runs one group of rows.

The load average is printed first and last: on a shared machine, compare the ratios, not the absolute figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import overhead
import policies
import pybreaker
import telemetry
from integration_kit.playbook.spec import load_integration
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from integration_kit import BreakerPolicy, CircuitBreaker, SystemClock
from integration_kit.events import Hook
from integration_kit.playbook.tune import tune
from integration_kit.sim.scenarios import load_scenario
from integration_kit.sim.simulate import simulate
from integration_kit.telemetry.otel import OpenTelemetryHook


@dataclass(frozen=True)
class Row:
    """One row of the table: our figure, the peer's, the ratio (median of per-round ratios) and the goal."""

    figure: str
    unit: str
    ours: float
    peer: float | None
    peer_name: str
    ratio: float | None
    goal: str
    met: bool


def interleaved(contenders: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Each contender's figure per round, the contenders taking turns (the first one rotating)."""
    results: dict[str, list[float]] = {name: [] for name in contenders}
    order = list(contenders.items())
    for i in range(rounds):
        for name, measure in order[i % len(order) :] + order[: i % len(order)]:
            results[name].append(measure())
    return results


def ratio(ours: list[float], peer: list[float]) -> float:
    return statistics.median(o / p for o, p in zip(ours, peer, strict=True))


def per_call(fn: Callable[[], object], n: int) -> Callable[[], float]:
    def measure() -> float:
        began = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - began) / n * 1e6

    return measure


# -- the rows ------------------------------------------------------------------------------------------------------


def http_rows(quick: bool) -> list[Row]:
    overhead.SEQUENTIAL_ROUNDS = 7 if quick else 21
    overhead.CONCURRENT_ROUNDS = 5 if quick else 11
    process, url = overhead.start_server()
    try:
        seq = overhead.sequential(url)
        thr = overhead.threaded(url)
    finally:
        process.terminate()
        process.wait(timeout=10)
    seq_ratio = ratio(seq["ResilientClient"], seq["raw httpx"])
    thr_ratio = ratio(thr["ResilientClient"], thr["raw httpx"])
    return [
        Row(
            "sequential GET over loopback",
            "us/call",
            statistics.median(seq["ResilientClient"]),
            statistics.median(seq["raw httpx"]),
            "raw httpx",
            seq_ratio,
            "<= 1.03x",
            seq_ratio <= 1.03,
        ),
        Row(
            "16 threads, one client",
            "calls/s",
            statistics.median(thr["ResilientClient"]),
            statistics.median(thr["raw httpx"]),
            "raw httpx",
            thr_ratio,
            ">= 0.97x",
            thr_ratio >= 0.97,
        ),
    ]


def engine_rows(quick: bool) -> list[Row]:
    n = 5_000 if quick else 20_000
    contenders = policies.make_contenders()
    breaker = CircuitBreaker(BreakerPolicy(), name="bench", clock=SystemClock())
    peer_breaker = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=30)
    noop = policies.noop
    measured = {
        "bare": per_call(noop, n),
        "engine": per_call(contenders["integration_kit engine"], n),
        "tenacity": per_call(contenders["tenacity"], n),
        "breaker": per_call(lambda: breaker.call(noop), n),
        "pybreaker": per_call(lambda: peer_breaker.call(noop), n),
    }
    times = interleaved(measured, 5 if quick else 9)
    over = {k: [v - b for v, b in zip(vs, times["bare"], strict=True)] for k, vs in times.items() if k != "bare"}
    engine, breaker_ratio = ratio(over["engine"], over["tenacity"]), ratio(over["breaker"], over["pybreaker"])
    return [
        Row(
            "engine (retry+breaker+budget) per call",
            "us over bare",
            statistics.median(over["engine"]),
            statistics.median(over["tenacity"]),
            "tenacity retry",
            engine,
            "<= 0.2x",
            engine <= 0.2,
        ),
        Row(
            "breaker per call",
            "us over bare",
            statistics.median(over["breaker"]),
            statistics.median(over["pybreaker"]),
            "pybreaker",
            breaker_ratio,
            "<= 0.9x",
            breaker_ratio <= 0.9,
        ),
    ]


def simulator_row(quick: bool) -> Row:
    scenario = load_scenario("steady")
    rates = []
    for _ in range(3):
        result = simulate(scenario, rate=100.0, duration=600.0 if quick else 1800.0, seed=1)
        rates.append(result.calls_started / result.wall_seconds)
    rate = statistics.median(rates)
    return Row("simulator, keyed draws", "calls/s", rate, None, "-", None, ">= 150k calls/s", rate >= 150_000)


def tune_row(quick: bool) -> Row:
    trials = 20 if quick else 100
    spec = load_integration("payments")
    began = time.perf_counter()
    tune(spec, trials=trials, seed=0, seeds=2, jobs=os.cpu_count() or 1)
    wall = time.perf_counter() - began
    return Row(f"tune payments, {trials} candidates", "s", wall, None, "-", None, "<= 30 s (100)", wall <= 30.0)


class OneRecord:
    """A yardstick: one SDK histogram record per call with the attempt histogram's five attributes."""

    def __init__(self, meters: MeterProvider) -> None:
        self.histogram = meters.get_meter("yardstick").create_histogram("yardstick")
        self.attributes = {
            "integration_kit.integration": "bench",
            "http.request.method": "GET",
            "server.address": "127.0.0.1",
            "server.port": 8080,
            "http.response.status_code": 200,
        }

    def __call__(self, event: Any) -> None:
        if event.kind == "call_finished":
            self.histogram.record(0.001, self.attributes)

    def watch(self, engine: object) -> None:
        pass


def otel_rows(quick: bool) -> list[Row]:
    telemetry.ROUNDS = 5 if quick else 9
    traced = TracerProvider()
    traced.add_span_processor(BatchSpanProcessor(telemetry.Drop(), max_queue_size=65536))
    unsampled = TracerProvider(sampler=ALWAYS_OFF)
    meters = MeterProvider(metric_readers=[InMemoryMetricReader()])
    hooks: dict[str, list[Hook]] = {
        "no hook": [],
        "hook": [OpenTelemetryHook(tracer_provider=traced, meter_provider=meters)],
        "floor": [telemetry.SdkFloor(traced, meters)],
        "sampled off": [OpenTelemetryHook(tracer_provider=unsampled, meter_provider=meters)],
        "fast path": [OpenTelemetryHook(tracer_provider=unsampled, meter_provider=meters, attempts_histogram=False)],
        "one record": [OneRecord(meters)],
    }
    try:
        times = telemetry.bench_in_process(hooks)
    finally:
        traced.shutdown()
        meters.shutdown()
    us = {k: [v * 1e6 for v in vs] for k, vs in times.items()}
    added = {k: [v - b for v, b in zip(vs, us["no hook"], strict=True)] for k, vs in us.items() if k != "no hook"}
    hook, floor, off, fast, one = (
        statistics.median(added[k]) for k in ("hook", "floor", "sampled off", "fast path", "one record")
    )
    hook_ratio = ratio(added["hook"], added["floor"])
    return [
        Row("OpenTelemetry hook per call", "us added", hook, floor, "SDK floor", hook_ratio, "at the floor", False),
        Row("OTel, sampling off, metrics on", "us added", off, None, "-", None, "<= 15 us", off <= 15.0),
        Row("  same, attempts_histogram=False", "us added", fast, None, "-", None, "<= 15 us", fast <= 15.0),
        Row("  (yardstick: one SDK histogram record)", "us added", one, None, "-", None, "-", False),
    ]


def show(rows: list[Row]) -> None:
    print(f"{'figure':<40}{'unit':>13}{'ours':>11}{'peer':>11}  {'peer is':<16}{'ratio':>8}  {'goal':<17}met")
    for r in rows:
        peer = f"{r.peer:>11.1f}" if r.peer is not None else f"{'-':>11}"
        shown = f"{r.ratio:>7.2f}x" if r.ratio is not None else f"{'-':>8}"
        met = "yes" if r.met else ("see note" if r.goal == "at the floor" else "no")
        print(f"{r.figure:<40}{r.unit:>13}{r.ours:>11.1f}{peer}  {r.peer_name:<16}{shown}  {r.goal:<17}{met}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, a shorter simulation, 20 candidates")
    parser.add_argument("--skip-tune", action="store_true", help="leave the tune row out (it takes the longest)")
    parser.add_argument(
        "--only", choices=("http", "engine", "simulator", "tune", "otel"), help="one group of rows, not every row"
    )
    args = parser.parse_args()
    began = time.monotonic()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    groups: dict[str, Callable[[bool], list[Row]]] = {
        "http": http_rows,
        "engine": engine_rows,
        "simulator": lambda quick: [simulator_row(quick)],
        "tune": lambda quick: [] if args.skip_tune else [tune_row(quick)],
        "otel": otel_rows,
    }
    rows = [row for name, group in groups.items() if args.only in (None, name) for row in group(args.quick)]
    print()
    show(rows)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end; {time.monotonic() - began:.0f} s in all")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        overhead.serve(int(sys.argv[2]))
    else:
        main()
