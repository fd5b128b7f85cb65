"""Simulation against reality: every bundled scenario, simulated and then played live over real sockets.

    python3 dev.py bench bench/fidelity.py      # or: .venv/bin/python bench/fidelity.py [--time-scale 20]

For each scenario the same client policies (the client defaults, no deadline) and the same open-loop load
(``--rate`` calls per scenario second, evenly spaced; ``--rate 0`` for ``--workers`` closed-loop callers) run in
the simulator and against the flaky upstream on 127.0.0.1 with a ResilientClient, time-scaled so a run takes
seconds. It prints both runs' success rate, load amplification and breaker transitions, and whether they agree
(the same transitions, gaps within 10%).
"""

from __future__ import annotations

import argparse

from integration_kit.research.fidelity import compare, fidelity_rate
from integration_kit.sim.scenarios import bundled_scenarios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Each live request costs a few real milliseconds that the time scale magnifies into scenario time (and the
    # simulator has no such cost); a modest scale and a think time well above it keep that distortion small.
    parser.add_argument("--time-scale", type=float, default=10.0)
    parser.add_argument("--think-time", type=float, default=0.5)
    parser.add_argument(
        "--rate", type=float, help="open-loop calls per scenario second (default: fidelity_rate(); 0: workers)"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scenario", action="append", help="only these scenarios (repeatable)")
    args = parser.parse_args()
    agreed = 0
    scenarios = bundled_scenarios()
    names = args.scenario or list(scenarios)
    for name in names:
        report = compare(
            scenarios[name],
            seed=args.seed,
            time_scale=args.time_scale,
            workers=args.workers,
            think_time=args.think_time,
            rate=fidelity_rate(name) if args.rate is None else args.rate or None,
        )
        print("\n".join(report.lines()))
        print()
        agreed += report.agrees()
    print(f"{agreed} of {len(names)} scenarios agree")


if __name__ == "__main__":
    main()
