"""The ``integration-kit`` command line."""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Sequence

from integration_kit.breaker import CircuitBreaker
from integration_kit.budget import RetryBudget
from integration_kit.clock import ManualClock
from integration_kit.config import BreakerPolicy, BudgetPolicy, RetryPolicy
from integration_kit.engine import CallEngine, Send, run_sync
from integration_kit.errors import IntegrationError
from integration_kit.events import Recorder, Summary
from integration_kit.outcome import Outcome, OutcomeKind

__all__ = ["demo", "format_summary", "main"]


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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``integration-kit`` console script."""
    parser = argparse.ArgumentParser(prog="integration-kit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo_parser = sub.add_parser("demo", help="an outage run through the engine in virtual time")
    demo_parser.add_argument("--calls", type=int, default=3000)
    demo_parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.command == "demo":
        summary, transitions = demo(calls=args.calls, seed=args.seed)
        print("integration_kit demo: a partner down from t=60s to t=120s, virtual time\n")
        print(format_summary(summary))
        print("\nbreaker transitions:")
        print("\n".join(f"  {t}" for t in transitions) or "  (none)")
        return 0
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
