"""The ``integration-kit`` command line: ``list``, ``check``, ``run``, ``clean``, ``simulate``, ``serve`` and
``demo``; ``alerts`` and ``dashboard`` (telemetry from a spec's objectives).

``run`` is a gate: it exits 1 when any objective fails (after writing the whole report) and prints the failing
rows; ``--no-gate`` reports without failing. ``webhooks`` lists and replays the dead letters of a webhook inbox
(:mod:`integration_kit.playbook.webhook_cli`).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from integration_kit.clock import ManualClock
from integration_kit.engine.call import CallEngine, Send, run_sync
from integration_kit.errors import ConfigurationError, IntegrationError
from integration_kit.events import Recorder, Summary
from integration_kit.playbook.spec import MAX_DURATION, MAX_RATE, MAX_WORKERS
from integration_kit.playbook.tune_cli import add_tune_parser, tune_command
from integration_kit.playbook.webhook_cli import add_webhook_commands, webhook_command
from integration_kit.policies.breaker import CircuitBreaker
from integration_kit.policies.budget import RetryBudget
from integration_kit.policies.config import BreakerPolicy, BudgetPolicy, RetryPolicy
from integration_kit.policies.outcome import Outcome, OutcomeKind
from integration_kit.queues import cli as queues_cli
from integration_kit.sim.scenarios import load_scenario

if TYPE_CHECKING:
    from integration_kit.playbook.verdict import Verdict
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
        scenario = load_scenario(scenario_name)
        _check_size(100.0 if rate is None else rate, scenario.duration if duration is None else duration)
        return simulate(
            scenario,
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
    _check_size(
        spec.exercise.rate if rate is None else rate,
        (spec.exercise.duration or scenario.duration) if duration is None else duration,
    )
    return simulate_integration(spec, scenario, seed=seed, duration=duration, rate=rate, workers=workers)


def _check_size(rate: float, duration: float) -> None:
    """Refuse a simulation larger than :data:`MAX_SIMULATED_CALLS` before it starts."""
    if rate * duration > MAX_SIMULATED_CALLS:
        raise ConfigurationError(
            f"rate x duration = {rate:g} calls/s x {duration:g} s asks for more than {MAX_SIMULATED_CALLS:,} simulated "
            "calls; lower --rate or --duration"
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


#: The most simulated calls one command may ask for (rate x duration): a few seconds of simulation and well
#: under a gigabyte of recorded events. A larger run is a ConfigurationError, not an out-of-memory crash.
MAX_SIMULATED_CALLS = 2_000_000


class _Parser(argparse.ArgumentParser):
    """argparse, with a misuse reported in one line (no usage block) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def _bounded(kind: type[float] | type[int], low: float, high: float, *, low_open: bool = False) -> Any:
    """An argparse type: a finite ``kind`` within [low, high] (or (low, high]), else a one-line error."""

    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            kind_name = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {kind_name}, got {text!r}") from None
        if not math.isfinite(value) or value > high or value < low or (low_open and value == low):
            bracket = "(" if low_open else "["
            raise argparse.ArgumentTypeError(f"must be in {bracket}{low:g}, {high:g}], got {text!r}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


_RATE = _bounded(float, 0.0, MAX_RATE, low_open=True)
_WORKERS = _bounded(int, 0, MAX_WORKERS)
_DURATION = _bounded(float, 0.0, MAX_DURATION, low_open=True)
_SEED = _bounded(int, 0, 2**32 - 1)
_PORT = _bounded(int, 1, 65535)
_TIME_SCALE = _bounded(float, 0.0, 1000.0, low_open=True)
_KEEP = _bounded(int, 0, 100_000)


def build_parser() -> argparse.ArgumentParser:
    """The ``integration-kit`` argument parser: every sub-command and its bounded, typed options."""
    parser = _Parser(prog="integration-kit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo_parser = sub.add_parser("demo", help="an outage run through the engine in virtual time")
    demo_parser.add_argument("--calls", type=_bounded(int, 1, 1_000_000), default=3000)
    demo_parser.add_argument("--seed", type=_SEED, default=7)
    sim = sub.add_parser("simulate", help="play a fault scenario through the call engine in virtual time")
    sim.add_argument("--scenario", required=True, help="a bundled scenario name, or a path to a .toml file")
    sim.add_argument("--integration", help="use this integration spec's client policies (data/integrations)")
    sim.add_argument("--rate", type=_RATE, help="open-loop calls per second (default 100, or the spec's)")
    sim.add_argument("--workers", type=_WORKERS, help="closed-loop workers (default 0, or the spec's)")
    sim.add_argument("--duration", type=_DURATION, help="virtual seconds of arrivals (default: the scenario's)")
    sim.add_argument("--seed", type=_SEED, default=0)
    sim.add_argument("--events", help="write the events to this file (.csv, .parquet or .jsonl)")
    serve = sub.add_parser("serve", help="serve a fault scenario over HTTP on 127.0.0.1 (a flaky upstream)")
    serve.add_argument("--scenario", required=True)
    serve.add_argument("--port", type=_PORT, default=8000)
    serve.add_argument("--time-scale", type=_TIME_SCALE, default=1.0, help="play the scenario this many times faster")
    serve.add_argument("--seed", type=_SEED, default=0)
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
    run.add_argument("--seed", type=_SEED, default=0)
    run.add_argument("--duration", type=_DURATION, help="scenario seconds per scenario (default: each scenario's)")
    run.add_argument(
        "--time-scale",
        type=_TIME_SCALE,
        help="live mode: play scenario time this many times faster (default 10; 20 for queue specs)",
    )
    run.add_argument("--base-url", help="live mode: exercise this real service (secret from the spec's env var)")
    run.add_argument("--strict", action="store_true", help="fail the run when a checklist item fails")
    _add_telemetry_commands(sub)
    add_webhook_commands(sub)
    _add_gate_and_clean(sub, run)
    add_tune_parser(sub)
    queues_cli.add_arguments(sub.add_parser("queues", help="message queues: list and re-drive dead letters"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``integration-kit`` console script.

    Returns 0 on success, 1 when a checklist item or an objective fails, and 2 on misuse (a bad argument, a spec
    or scenario that does not load, a file that cannot be written), reported in one line without a traceback.
    """
    args = build_parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except ConfigurationError as exc:
        print(f"integration-kit: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file that cannot be read or written: the user's to fix, not a crash
        print(f"integration-kit: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2


def _demo_command(args: argparse.Namespace) -> int:
    summary, transitions = demo(calls=args.calls, seed=args.seed)
    print("integration_kit demo: a partner down from t=60s to t=120s, virtual time\n")
    print(format_summary(summary))
    print("\nbreaker transitions:")
    print("\n".join(f"  {t}" for t in transitions) or "  (none)")
    return 0


def _add_telemetry_commands(sub: Any) -> None:
    for command, what in (("alerts", "Prometheus alerting rules (YAML)"), ("dashboard", "a Grafana dashboard (JSON)")):
        telemetry = sub.add_parser(command, help=f"write {what} from an integration's objectives and metrics")
        telemetry.add_argument("name", help="an integration in data/integrations, or the path of a spec (.toml)")
        telemetry.add_argument("--out", help="write to this file (default: standard output)")


def _telemetry_command(args: argparse.Namespace) -> int:
    """``alerts`` / ``dashboard``: the spec's objectives when it has them (else the defaults), its deadline as the
    latency bound when no p99 objective is set."""
    import json

    from integration_kit.playbook.spec import load_integration
    from integration_kit.telemetry.alerts import render_rules, thresholds_from
    from integration_kit.telemetry.dashboard import dashboard

    spec = load_integration(args.name)
    thresholds = thresholds_from(getattr(spec, "objectives", None), deadline=spec.client.deadline)
    name = spec.client.name
    if args.command == "alerts":
        text = render_rules(name, thresholds)
    else:
        text = json.dumps(dashboard(name, thresholds), indent=2) + "\n"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _list_command() -> int:
    """``list``: every spec in data/integrations, HTTP ones first, the others with their kind."""
    from integration_kit.playbook.spec import integration_names
    from integration_kit.playbook.specs import load_spec

    specs = [load_spec(name) for name in integration_names()]
    for spec in sorted(specs, key=lambda spec: spec.kind != "http"):
        scenarios = ", ".join(s.name for s in spec.scenarios)
        kind = "" if spec.kind == "http" else f"[{spec.kind}] "
        print(f"{spec.name:<12} {kind}{spec.description}\n{'':<12} scenarios: {scenarios}")
    return 0


def _check_command(name: str) -> int:
    """``check``: print the checklist of a spec of any kind; 1 when an item fails."""
    from integration_kit.playbook.specs import load_spec, spec_checklist

    spec = load_spec(name)
    items = spec_checklist(spec)
    for item in items:
        print(f"{item.mark} {item.title}: {item.detail}")
    failed = [item for item in items if not item.passed]
    kind = "" if spec.kind == "http" else f" ({spec.kind})"
    print(f"\n{spec.name}{kind}: {len(items) - len(failed)}/{len(items)} checklist items pass")
    return 1 if failed else 0


def _run_command(args: argparse.Namespace) -> int:
    from integration_kit.playbook.runner import new_run_id, run_playbook

    names = _selected(args)  # every spec and the scenario are validated before the first notebook runs
    if args.mode == "simulate" and args.base_url:
        raise ConfigurationError("--base-url needs --mode live")
    run_id = new_run_id()
    failures = 0
    rows = []
    verdicts = []
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
            rows.append((run.integration, scenario, figures))
        if run.verdict is not None:
            verdicts.append(run.verdict)
        print(f"  report: {run.report}")
    print()
    print(_run_table(rows))
    if args.keep is not None:
        _clean_after_run(args, [r[0] for r in rows])
    missed = _print_verdicts(verdicts)
    if missed and not args.no_gate:
        print(
            f"\nintegration-kit: {missed} objective check(s) failed (--no-gate reports without failing)",
            file=sys.stderr,
        )
    return 1 if failures or (missed and not args.no_gate) else 0


def _add_gate_and_clean(sub: Any, run: argparse.ArgumentParser) -> None:
    run.add_argument("--no-gate", action="store_true", help="report the verdict without failing on missed objectives")
    run.add_argument("--keep", type=_KEEP, help="afterwards, delete all but the newest KEEP runs of each integration")
    clean = sub.add_parser("clean", help="delete old run folders, keeping the newest runs of each integration")
    clean.add_argument("name", nargs="*", help="integrations to clean (default: every one under --out)")
    clean.add_argument("--keep", type=_KEEP, default=3, help="runs to keep per integration (default 3)")
    clean.add_argument("--out", help="where runs go (default: out/ under the repository)")


def _selected(args: argparse.Namespace) -> list[str]:
    """The integrations ``run`` will play, each spec (and ``--scenario``) validated before any notebook starts.

    Every spec is loaded here (any kind); a queue or webhook spec's runner validates its scenario. With ``--all``
    and one ``--scenario``, only the integrations (of any kind) that have that scenario are kept.
    """
    from integration_kit.playbook.spec import IntegrationSpec, integration_names
    from integration_kit.playbook.specs import load_spec

    names = integration_names() if args.all else [args.name]
    specs = {name: load_spec(name) for name in names}
    if args.scenario == "all":
        return names
    if not args.all:
        spec = specs[args.name]
        if isinstance(spec, IntegrationSpec):
            spec.scenario(args.scenario)  # raises, naming the scenarios there are
        return names
    kept = [name for name, spec in specs.items() if args.scenario in {s.name for s in spec.scenarios}]
    if not kept:
        raise ConfigurationError(f"no integration has a scenario named {args.scenario!r}")
    return kept


def _print_verdicts(verdicts: list[Verdict]) -> int:
    """Print each integration's verdict table, its failing rows and its findings; return the failed checks."""
    missed = 0
    for verdict in verdicts:
        state = "PASS" if verdict.passed else "FAIL"
        print(f"\nverdict: {verdict.integration} {state} ({verdict.load_model})")
        print(verdict.to_text())
        for check in verdict.failures:
            print(f"  FAILED: {verdict.integration} {check.describe()}")
        for line in verdict.findings_text():
            print(f"  finding: {line}")
        missed += len(verdict.failures)
    return missed


def _clean_after_run(args: argparse.Namespace, integrations: list[str]) -> None:
    from integration_kit.playbook.runner import DEFAULT_OUT
    from integration_kit.playbook.runs import clean_runs

    deleted = clean_runs(args.out or DEFAULT_OUT, keep=args.keep, integrations=sorted(set(integrations)))
    if deleted:
        print(f"\n{len(deleted)} old run folder(s) deleted (--keep {args.keep})")


def _clean_command(args: argparse.Namespace) -> int:
    from integration_kit.playbook.runner import DEFAULT_OUT
    from integration_kit.playbook.runs import clean_runs

    deleted = clean_runs(args.out or DEFAULT_OUT, keep=args.keep, integrations=args.name or None)
    for folder in deleted:
        print(f"deleted {folder}")
    print(f"{len(deleted)} run folder(s) deleted, the newest {args.keep} of each integration kept")
    return 0


def _run_table(rows: list[tuple[str, str, dict[str, object]]]) -> str:
    """The summary tables printed after ``run``: one line per integration and scenario, queue integrations in
    their own table (messages, lost, applied twice, dead letters, latency, lag and whether the objectives held)."""
    calls = [r for r in rows if "applied_twice" not in r[2]]
    queues = [r for r in rows if "applied_twice" in r[2]]
    width = max([len("integration"), *(len(name) for name, _, _ in rows)])
    tables = []
    if calls or not queues:
        header = (
            f"{'integration':<{width}} {'scenario':<24} {'calls':>7} {'success':>8} {'rejected':>8} {'ampl.':>6} "
            f"{'p99 s':>7} {'transitions':>11}"
        )
        lines = [header, "-" * len(header)]
        for name, scenario, f in calls:
            success = f.get("success_rate")
            p99 = f.get("latency_p99")
            amplification = f.get("amplification")
            lines.append(
                f"{name:<{width}} {scenario:<24} {f.get('calls', 0):>7,} "
                f"{success if success is None else format(success, '.1%'):>8} {f.get('rejected', 0):>8,} "
                f"{amplification if amplification is None else format(amplification, '.2f'):>6} "
                f"{p99 if p99 is None else format(p99, '.3f'):>7} {len(f.get('transitions', [])):>11}"  # type: ignore[arg-type]
            )
        tables.append("\n".join(lines))
    if queues:
        header = (
            f"{'integration':<{width}} {'scenario':<24} {'messages':>8} {'lost':>5} {'twice':>5} {'dead':>5} "
            f"{'p99 s':>7} {'max lag s':>9} {'objectives':>10}"
        )
        lines = [header, "-" * len(header)]
        for name, scenario, f in queues:
            objectives = f.get("objectives", [])
            verdict = "met" if all(o["met"] for o in objectives) else "NOT met"  # type: ignore[attr-defined]
            lines.append(
                f"{name:<{width}} {scenario:<24} {f['messages']:>8,} {f['lost']:>5,} {f['applied_twice']:>5,} "
                f"{f['dead_letters']:>5,} {f['latency_p99']:>7.1f} {f['max_lag']:>9.1f} {verdict:>10}"
            )
        tables.append("\n".join(lines))
    return "\n\n".join(tables)


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


#: Each sub-command's handler.
_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "demo": _demo_command,
    "simulate": _simulate_command,
    "serve": _serve_command,
    "list": lambda args: _list_command(),
    "check": lambda args: _check_command(args.name),
    "run": _run_command,
    "clean": _clean_command,
    "alerts": _telemetry_command,
    "dashboard": _telemetry_command,
    "webhooks": webhook_command,
    "tune": tune_command,
    "queues": queues_cli.run,
}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
