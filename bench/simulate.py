"""Simulator throughput: one hour of traffic at 100 calls/s (360,000 logical calls) in virtual time.

    python3 dev.py bench bench/simulate.py          # or: .venv/bin/python bench/simulate.py [--hours H]

The run has retries, a retry budget, a circuit breaker and full event recording, against the ``steady``
scenario stretched over the hour (and a shorter run of every bundled scenario). It prints calls per second and
events per second of wall time; the issue's target is the hour in at most 5 s.
"""

from __future__ import annotations

import argparse
import time

from integration_kit.sim.scenarios import bundled_scenarios, load_scenario
from integration_kit.sim.simulate import simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    duration = args.hours * 3600

    result = simulate(load_scenario("steady"), rate=args.rate, duration=duration, seed=args.seed)
    events = len(result.recorder)
    began = time.perf_counter()
    summary = result.summary
    summarize_s = time.perf_counter() - began
    print(f"steady, {duration:,.0f} virtual seconds at {args.rate:g} calls/s (retry + budget + breaker + recording)")
    print(f"  calls            {result.calls_started:,}")
    print(f"  events           {events:,}")
    print(f"  wall             {result.wall_seconds:.2f} s   (summary afterwards: {summarize_s:.2f} s)")
    print(f"  calls/s          {result.calls_started / result.wall_seconds:,.0f}")
    print(f"  events/s         {events / result.wall_seconds:,.0f}")
    print(f"  speed-up         {duration / result.wall_seconds:,.0f}x real time")
    print(f"  amplification    {summary.amplification:.4f}   success rate {summary.success_rate:.4%}")
    print()
    print(f"{'scenario':<22}{'calls':>8}{'events':>9}{'wall s':>8}{'calls/s':>10}{'events/s':>10}")
    for name, scenario in bundled_scenarios().items():
        run = simulate(scenario, rate=args.rate, seed=args.seed)
        n = len(run.recorder)
        print(
            f"{name:<22}{run.calls_started:>8,}{n:>9,}{run.wall_seconds:>8.2f}"
            f"{run.calls_started / run.wall_seconds:>10,.0f}{n / run.wall_seconds:>10,.0f}"
        )


if __name__ == "__main__":
    main()
