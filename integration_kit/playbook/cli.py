"""The ``integration-kit`` command line: ``list``, ``check``, ``run``, ``simulate``, ``serve`` and ``demo``."""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from integration_kit.clock import ManualClock
from integration_kit.engine.call import CallEngine, Send, run_sync
from integration_kit.errors import ConfigurationError, IntegrationError
from integration_kit.events import Recorder, Summary
from integration_kit.policies.breaker import CircuitBreaker
from integration_kit.policies.budget import RetryBudget
from integration_kit.policies.config import BreakerPolicy, BudgetPolicy, RetryPolicy
from integration_kit.policies.outcome import Outcome, OutcomeKind
from integration_kit.queues import cli as queues_cli
from integration_kit.sim.scenarios import load_scenario

if TYPE_CHECKING:
    from integration_kit.sim.simulate import SimulationResult

__all__ = ["demo", "format_summary", "main", "run_simulation"]


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
) -> SimulationResult:
    """Simulate a bundled scenario (or one of an integration's) with the integration's client policies.

    Without ``integration`` the simulator's defaults are used. ``rate``, ``workers`` and ``duration`` default to
    the integration's ``[exercise]`` settings, else 100 calls/s and the scenario's own duration.
    """
    from integration_kit.sim.simulate import simulate

    if integration is None:
        return simulate(
            load_scenario(scenario_name),
            rate=100.0 if rate is None else rate,
            workers=workers or 0,
            duration=duration,
            seed=seed,
        )
    from integration_kit.playbook.runner import simulate_integration
    from integration_kit.playbook.spec import load_integration

    spec = load_integration(integration)
    names = {s.name for s in spec.scenarios}
    scenario = spec.scenario(scenario_name) if scenario_name in names else load_scenario(scenario_name)
    return simulate_integration(spec, scenario, seed=seed, duration=duration, rate=rate, workers=workers)


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


def main(argv: Sequence[str] | None = None) -> int:  # noqa: PLR0915 - one flat list of sub-commands
    """Entry point of the ``integration-kit`` console script."""
    parser = argparse.ArgumentParser(prog="integration-kit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo_parser = sub.add_parser("demo", help="an outage run through the engine in virtual time")
    demo_parser.add_argument("--calls", type=int, default=3000)
    demo_parser.add_argument("--seed", type=int, default=7)
    sim = sub.add_parser("simulate", help="play a fault scenario through the call engine in virtual time")
    sim.add_argument("--scenario", required=True, help="a bundled scenario name, or a path to a .toml file")
    sim.add_argument("--integration", help="use this integration spec's client policies (data/integrations)")
    sim.add_argument("--rate", type=float, help="open-loop calls per second (default 100, or the spec's)")
    sim.add_argument("--workers", type=int, help="closed-loop workers (default 0, or the spec's)")
    sim.add_argument("--duration", type=float, help="virtual seconds of arrivals (default: the scenario's)")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--events", help="write the events to this file (.csv, .parquet or .jsonl)")
    serve = sub.add_parser("serve", help="serve a fault scenario over HTTP on 127.0.0.1 (a flaky upstream)")
    serve.add_argument("--scenario", required=True)
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--time-scale", type=float, default=1.0, help="play the scenario this many times faster")
    serve.add_argument("--seed", type=int, default=0)
    sub.add_parser("list", help="list the integrations in data/integrations")
    check = sub.add_parser("check", help="validate an integration's spec and run its checklist (exit 1 on failures)")
    check.add_argument("name", help="an integration in data/integrations, or the path of a spec (.toml)")
    run = sub.add_parser("run", help="run the playbook (design, exercise, charts notebooks) and render a report")
    target = run.add_mutually_exclusive_group(required=True)
    target.add_argument("name", nargs="?", help="an integration in data/integrations, or the path of a spec (.toml)")
    target.add_argument("--all", action="store_true", help="every integration in data/integrations")
    run.add_argument("--mode", choices=("simulate", "live"), default="simulate")
    run.add_argument("--scenario", default="all", help="one of the integration's scenarios (default: all)")
    run.add_argument("--out", help="where runs go (default: out/ under the repository)")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--duration", type=float, help="scenario seconds per scenario (default: each scenario's)")
    run.add_argument("--time-scale", type=float, default=10.0, help="live mode: play the local upstream faster")
    run.add_argument("--base-url", help="live mode: exercise this real service (secret from the spec's env var)")
    run.add_argument("--strict", action="store_true", help="fail the run when a checklist item fails")
    queues_cli.add_arguments(sub.add_parser("queues", help="message queues: list and re-drive dead letters"))
    args = parser.parse_args(argv)
    try:
        if args.command == "simulate":
            return _simulate_command(args)
        if args.command == "serve":
            return _serve_command(args)
        if args.command == "list":
            return _list_command()
        if args.command == "check":
            return _check_command(args.name)
        if args.command == "run":
            return _run_command(args)
        if args.command == "queues":
            return queues_cli.run(args)
    except ConfigurationError as exc:
        print(f"integration-kit: {exc}", file=sys.stderr)
        return 2
    if args.command == "demo":
        summary, transitions = demo(calls=args.calls, seed=args.seed)
        print("integration_kit demo: a partner down from t=60s to t=120s, virtual time\n")
        print(format_summary(summary))
        print("\nbreaker transitions:")
        print("\n".join(f"  {t}" for t in transitions) or "  (none)")
        return 0
    return 2  # pragma: no cover - argparse rejects unknown commands


def _list_command() -> int:
    from integration_kit.playbook.spec import bundled_integrations

    for name, spec in bundled_integrations().items():
        scenarios = ", ".join(s.name for s in spec.scenarios)
        print(f"{name:<12} {spec.description}\n{'':<12} scenarios: {scenarios}")
    return 0


def _check_command(name: str) -> int:
    from integration_kit.playbook.design import checklist
    from integration_kit.playbook.spec import load_integration

    spec = load_integration(name)
    items = checklist(spec)
    for item in items:
        print(f"{item.mark} {item.title}: {item.detail}")
    failed = [item for item in items if not item.passed]
    print(f"\n{spec.name}: {len(items) - len(failed)}/{len(items)} checklist items pass")
    return 1 if failed else 0


def _run_command(args: argparse.Namespace) -> int:
    from integration_kit.playbook.runner import new_run_id, run_playbook
    from integration_kit.playbook.spec import integration_names, load_integration

    names = integration_names() if args.all else [args.name]
    for name in names:
        load_integration(name)  # every spec is validated before the first notebook runs
    if args.mode == "simulate" and args.base_url:
        raise ConfigurationError("--base-url needs --mode live")
    run_id = new_run_id()
    failures = 0
    rows = []
    for name in names:
        print(f"running the playbook for {name} ({args.mode}) ...", flush=True)
        run = run_playbook(
            name,
            mode=args.mode,
            scenario=args.scenario,
            out=args.out,
            seed=args.seed,
            duration=args.duration,
            time_scale=args.time_scale,
            base_url=args.base_url,
            strict=args.strict,
            run_id=run_id,
        )
        if not run.ok:
            failures += 1
            print(f"integration-kit: {name}: a notebook failed: {run.error}", file=sys.stderr)
        for scenario, figures in run.summary.get("scenarios", {}).items():
            rows.append((name, scenario, figures))
        print(f"  report: {run.report}")
    print()
    print(_run_table(rows))
    return 1 if failures else 0


def _run_table(rows: list[tuple[str, str, dict[str, object]]]) -> str:
    """The summary table printed after ``run``: one line per integration and scenario."""
    header = f"{'integration':<12} {'scenario':<24} {'calls':>7} {'success':>8} {'rejected':>8} {'ampl.':>6} " + (
        f"{'p99 s':>7} {'transitions':>11}"
    )
    lines = [header, "-" * len(header)]
    for name, scenario, f in rows:
        success = f.get("success_rate")
        p99 = f.get("latency_p99")
        amplification = f.get("amplification")
        lines.append(
            f"{name:<12} {scenario:<24} {f.get('calls', 0):>7,} "
            f"{success if success is None else format(success, '.1%'):>8} {f.get('rejected', 0):>8,} "
            f"{amplification if amplification is None else format(amplification, '.2f'):>6} "
            f"{p99 if p99 is None else format(p99, '.3f'):>7} {len(f.get('transitions', [])):>11}"  # type: ignore[arg-type]
        )
    return "\n".join(lines)


def _simulate_command(args: argparse.Namespace) -> int:
    result = run_simulation(
        args.scenario,
        integration=args.integration,
        rate=args.rate,
        duration=args.duration,
        seed=args.seed,
        workers=args.workers,
    )
    title = f"scenario {result.scenario.name}"
    if args.integration:
        title += f", integration {args.integration}"
    print(f"integration_kit simulate: {title}, {result.duration:g} virtual seconds, seed {result.seed}")
    print(f"({result.calls_started:,} calls in {result.wall_seconds:.2f} s of wall time)\n")
    print(format_summary(result.summary))
    print(f"{'partner received (peak/s)':<25}  {result.server.received:,} ({result.server.peak:,})")
    print("\nbreaker transitions:")
    print("\n".join(f"  {line}" for line in result.transition_lines()) or "  (none)")
    if args.events:
        path = _write_events(result, args.events)
        print(f"\nevents written to {path}")
    return 0


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
    import uvicorn

    from integration_kit.sim.upstream import FlakyUpstream

    upstream = FlakyUpstream(load_scenario(args.scenario), seed=args.seed, time_scale=args.time_scale)
    print(f"integration_kit serve: scenario {upstream.scenario.name} on http://127.0.0.1:{args.port} (Ctrl-C stops)")
    uvicorn.run(upstream.app, host="127.0.0.1", port=args.port, log_level="warning", lifespan="off")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
