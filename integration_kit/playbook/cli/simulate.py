"""``demo``, ``simulate`` and ``serve``: the call engine in virtual time, and a flaky upstream on 127.0.0.1."""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path

from integration_kit.clock import ManualClock
from integration_kit.engine.call import CallEngine, Send, run_sync
from integration_kit.errors import ConfigurationError, IntegrationError
from integration_kit.events import Recorder, Summary
from integration_kit.playbook.cli.args import DURATION, PORT, RATE, SEED, TIME_SCALE, WORKERS, Command, bounded
from integration_kit.playbook.kinds.files import scenario_search
from integration_kit.playbook.kinds.http.exercise import simulate_integration
from integration_kit.playbook.kinds.http.spec import load_integration
from integration_kit.policies.breaker import CircuitBreaker
from integration_kit.policies.budget import RetryBudget
from integration_kit.policies.config import BreakerPolicy, BudgetPolicy, RetryPolicy
from integration_kit.policies.outcome import Outcome, OutcomeKind
from integration_kit.sim.scenarios import load_scenario
from integration_kit.sim.simulate import SimulationResult, simulate
from integration_kit.sim.stream import EventStream
from integration_kit.sim.upstream import FlakyUpstream

__all__ = ["COMMANDS", "MAX_SIMULATED_CALLS", "MAX_STREAMED_CALLS", "demo", "format_summary", "run_simulation"]

#: The most simulated calls one command may ask for (rate x duration): a few seconds of simulation and well
#: under a gigabyte of recorded events. A larger run is a ConfigurationError, not an out-of-memory crash.
MAX_SIMULATED_CALLS = 2_000_000
#: The same limit when the events are streamed to files (``--stream``): memory no longer grows with the calls
#: (8 bytes a call for the latency percentiles), so the bound is time and disk, a little over half an hour of wall
#: time and about 4 GB of CSV files at 1,000 calls/s.
MAX_STREAMED_CALLS = 36_000_000


def demo(*, calls: int = 3000, seed: int = 7) -> tuple[Summary, list[str]]:
    """Sequential calls in virtual time against a partner that is down from t=60 s to t=120 s.

    Returns the run's summary and the breaker's transitions with their times. Deterministic for a seed.
    """
    clock = ManualClock()
    rng = random.Random(seed)
    recorder = Recorder()
    breaker = CircuitBreaker(
        BreakerPolicy(failure_rate_threshold=0.5, window_size=20, minimum_calls=10, wait_in_open=10),
        name="demo",
        clock=clock,
    )
    engine = CallEngine(
        name="demo",
        retry=RetryPolicy(max_attempts=3, base_delay=0.1, max_delay=2.0),
        breaker=breaker,
        budget=RetryBudget(BudgetPolicy()),
        deadline=5.0,
        clock=clock,
        rng=rng,
        hooks=[recorder],
    )

    def send(action: Send) -> Outcome:
        clock.advance(rng.uniform(0.02, 0.08))
        down = 60.0 <= clock.now() < 120.0
        failed = rng.random() < (0.95 if down else 0.02)
        return Outcome(OutcomeKind.STATUS, status=503 if failed else 200)

    for _ in range(calls):
        try:
            run_sync(engine.call("GET", "https://partner.example/orders"), send, clock.sleep)
        except IntegrationError:
            clock.advance(0.05)
    transitions = [
        f"t={e.time:7.2f}s  {e.old} -> {e.new}  ({e.reason})"  # type: ignore[attr-defined]
        for e in recorder.events
        if e.kind == "breaker_transition"
    ]
    return recorder.summary(), transitions


def run_simulation(
    scenario_name: str,
    *,
    integration: str | None = None,
    rate: float | None = None,
    duration: float | None = None,
    seed: int = 0,
    workers: int | None = None,
    recorder: Recorder | None = None,
) -> SimulationResult:
    """Simulate a bundled scenario (or one of an integration's) with the integration's client policies.

    A scenario name is looked up in the current project (if any), then among the bundled scenarios. Without
    ``integration`` the simulator's defaults are used. ``rate``, ``workers`` and ``duration`` default to
    the integration's ``[exercise]`` settings, else 100 calls/s and the scenario's own duration. ``recorder``
    collects the events (default: a fresh :class:`~integration_kit.events.Recorder`); an
    :class:`~integration_kit.sim.stream.EventStream` writes them to files and raises the size limit from
    :data:`MAX_SIMULATED_CALLS` to :data:`MAX_STREAMED_CALLS`.
    """
    search = _scenario_search()
    limit = MAX_STREAMED_CALLS if isinstance(recorder, EventStream) else MAX_SIMULATED_CALLS
    if integration is None:
        scenario = load_scenario(scenario_name, search=search)
        _check_size(100.0 if rate is None else rate, scenario.duration if duration is None else duration, limit)
        return simulate(
            scenario,
            rate=100.0 if rate is None else rate,
            workers=workers or 0,
            duration=duration,
            seed=seed,
            recorder=recorder,
        )
    spec = load_integration(integration)
    names = {s.name for s in spec.scenarios}
    scenario = spec.scenario(scenario_name) if scenario_name in names else load_scenario(scenario_name, search=search)
    _check_size(
        spec.exercise.rate if rate is None else rate,
        (spec.exercise.duration or scenario.duration) if duration is None else duration,
        limit,
    )
    return simulate_integration(
        spec, scenario, seed=seed, duration=duration, rate=rate, workers=workers, recorder=recorder
    )


def _check_size(rate: float, duration: float, limit: int) -> None:
    """Refuse a simulation of more than ``limit`` calls before it starts."""
    if rate * duration > limit:
        hint = (
            "lower --rate or --duration" if limit >= MAX_STREAMED_CALLS else "lower --rate or --duration, or --stream"
        )
        raise ConfigurationError(
            f"rate x duration = {rate:g} calls/s x {duration:g} s asks for more than {limit:,} simulated calls; {hint}"
        )


def format_summary(summary: Summary) -> str:
    """A summary as an aligned two-column table."""
    rows = [
        ("calls", f"{summary.calls:,}"),
        ("succeeded", f"{summary.succeeded:,}"),
        ("rejected (breaker open)", f"{summary.rejected:,}"),
        ("attempts", f"{summary.attempts:,}"),
        ("retries", f"{summary.retries:,}"),
        ("retries refused by budget", f"{summary.budget_refusals:,}"),
        ("success rate", f"{summary.success_rate:.1%}"),
        ("load amplification", f"{summary.amplification:.3f} attempts/call"),
        (
            "latency p50 / p95 / p99",
            f"{summary.latency_p50:.3f} / {summary.latency_p95:.3f} / {summary.latency_p99:.3f} s",
        ),
        ("breaker transitions", str(len(summary.transitions))),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _scenario_search() -> tuple[Path, ...]:
    """The current project's scenarios folder, if the current directory is in a project."""
    return scenario_search(None)


def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--calls", type=bounded(int, 1, 1_000_000), default=3000, help="calls to make (default 3000)")
    parser.add_argument("--seed", type=SEED, default=7, help="seeds every random choice (default 7)")


def _simulate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scenario", required=True, help="a scenario name (the project's, then the bundled ones), or a .toml file"
    )
    parser.add_argument("--integration", help="use this HTTP integration spec's client policies")
    parser.add_argument("--rate", type=RATE, help="open-loop calls per second (default 100, or the spec's)")
    parser.add_argument("--workers", type=WORKERS, help="closed-loop workers (default 0, or the spec's)")
    parser.add_argument("--duration", type=DURATION, help="virtual seconds of arrivals (default: the scenario's)")
    parser.add_argument("--seed", type=SEED, default=0, help="seeds every random choice (default 0)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument(
        "--events", metavar="FILE", help="write the events to this file (.csv, .parquet or .jsonl), kept in memory"
    )
    output.add_argument(
        "--stream",
        metavar="DIR",
        help="stream the events to CSV files in DIR (one per kind of event, created if missing) in bounded memory",
    )


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", required=True, help="a scenario name, or a .toml file")
    parser.add_argument("--port", type=PORT, default=8000, help="the port on 127.0.0.1 (default 8000)")
    parser.add_argument("--time-scale", type=TIME_SCALE, default=1.0, help="play the scenario this many times faster")
    parser.add_argument("--seed", type=SEED, default=0, help="seeds every random choice (default 0)")


def _demo_command(args: argparse.Namespace) -> int:
    summary, transitions = demo(calls=args.calls, seed=args.seed)
    print("integration_kit demo: a partner down from t=60s to t=120s, virtual time\n")
    print(format_summary(summary))
    print("\nbreaker transitions:")
    print("\n".join(f"  {t}" for t in transitions) or "  (none)")
    return 0


def _simulate_command(args: argparse.Namespace) -> int:
    stream = _event_stream(args.stream) if args.stream else None
    try:
        result = run_simulation(
            args.scenario,
            integration=args.integration,
            rate=args.rate,
            duration=args.duration,
            seed=args.seed,
            workers=args.workers,
            recorder=stream,
        )
        summary = result.summary  # for a stream, also writes the last chunk
    finally:
        if stream is not None:
            stream.close()
    title = f"scenario {result.scenario.name}"
    if args.integration:
        title += f", integration {args.integration}"
    print(f"integration_kit simulate: {title}, {result.duration:g} virtual seconds, seed {result.seed}")
    print(f"({result.calls_started:,} calls in {result.wall_seconds:.2f} s of wall time)\n")
    print(format_summary(summary))
    print(f"{'partner received (peak/s)':<25}  {result.server.received:,} ({result.server.peak:,})")
    print("\nbreaker transitions:")
    print("\n".join(f"  {line}" for line in result.transition_lines()) or "  (none)")
    if args.events:
        path = _write_events(result, args.events)
        print(f"\nevents written to {path}")
    if stream is not None:
        files = sorted(p.name for p in stream.folder.glob("events-*.csv"))
        print(f"\n{len(stream):,} events streamed to {stream.folder}: {', '.join(files)}")
    return 0


def _event_stream(target: str) -> EventStream:
    """An :class:`EventStream` into the folder ``target``, created if missing and checked to be writable before the
    simulation starts (an ``OSError`` is the CLI's one-line exit 2)."""
    stream = EventStream(target)
    with tempfile.TemporaryFile(dir=stream.folder):
        pass
    return stream


def _write_events(result: SimulationResult, target: str) -> Path:
    """Write the events as CSV, Parquet or JSON lines, by the file's suffix."""
    path = Path(target)
    frame = result.to_frame()
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_csv(path, index=False)
    return path


def _serve_command(args: argparse.Namespace) -> int:  # pragma: no cover - runs until interrupted
    import uvicorn  # the server extra

    upstream = FlakyUpstream(
        load_scenario(args.scenario, search=_scenario_search()), seed=args.seed, time_scale=args.time_scale
    )
    print(f"integration_kit serve: scenario {upstream.scenario.name} on http://127.0.0.1:{args.port} (Ctrl-C stops)")
    uvicorn.run(upstream.app, host="127.0.0.1", port=args.port, log_level="warning", lifespan="off")
    return 0


#: The commands of this module, for the CLI's table.
COMMANDS = (
    Command("demo", "an outage run through the engine in virtual time", _demo_arguments, _demo_command),
    Command(
        "simulate",
        "play a fault scenario through the call engine in virtual time",
        _simulate_arguments,
        _simulate_command,
    ),
    Command(
        "serve", "serve a fault scenario over HTTP on 127.0.0.1 (a flaky upstream)", _serve_arguments, _serve_command
    ),
)
