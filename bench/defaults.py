"""Defaults that win both ways: the issue-12 targets in the simulator, old defaults against new, with no tuning.

    python3 dev.py bench bench/defaults.py      # or: .venv/bin/python bench/defaults.py [--seeds 1 2 3]

Three scenarios at the simulator's default load (100 calls/s, Poisson, default timeouts) and three policies:
*naive* (3 attempts, no budget, no breaker: what tenacity and stamina do by default), *old* (the kit's defaults
before issue 12: gRPC A6's example budget, 10 tokens, 0.1 back per success) and *new* (today's defaults).
Targets: brownout success >= 97 % at <= 1.5 attempts per call (over the brownout phase); outage partner load
<= 0.1x the offered load and >= 98 % success from ``wait_in_open`` + 1 s after the partner is healthy again;
retry storm: recovered after the trigger (not overloaded at the end) where the naive policy is not. Each figure
is the worst over the seeds.
"""

from __future__ import annotations

import argparse

from integration_kit.research.targets import default_targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    rows = default_targets(tuple(args.seeds))
    print(
        f"{'policy':<7}{'brownout success':>18}{'attempts/call':>15}{'outage load':>13}"
        f"{'success after wait+1s':>23}{'storm recovered':>17}{'storm recovery s':>18}"
    )
    for name, row in rows.items():
        print(
            f"{name:<7}{row.brownout_success:>18.1%}{row.brownout_attempts:>15.3f}{row.outage_load:>12.3f}x"
            f"{row.outage_recovered_success:>23.1%}{'yes' if row.storm_recovered else 'no':>17}"
            f"{row.storm_recovery:>18.1f}"
        )


if __name__ == "__main__":
    main()
