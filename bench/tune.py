"""``tune`` speed: candidates per second of a search on a bundled spec (the issue's target: >= 100 candidates x
all scenarios x 2 seeds in <= 60 s on a 2-core machine).

    python3 dev.py bench bench/tune.py                  # or: .venv/bin/python bench/tune.py [payments] [--trials N]
    .venv/bin/python bench/tune.py catalog --compare    # the same search without the early stop, side by side

Prints the wall time, candidates per second, the CPU seconds of every process (divided by the processes: about
the wall time the search would take with the cores to itself), the scenario runs simulated (an infeasible
candidate stops at its first failed run; a repeated candidate is not run again) against the runs a full evaluation
of every candidate would take, what was recommended, and the hypervolume of the feasible Pareto front (partner
load x p99 latency, both minimised, against the reference point :data:`REFERENCE`): the same seed on two trees
must give the same front, so the figure compares the quality of two versions of the search. Figures vary with the
machine's load: compare the two lines of one run.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

from integration_kit.playbook.kinds.http.spec import load_integration
from integration_kit.playbook.tune.study import TuneResult, tune


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("integration", nargs="?", default="payments")
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--compare", action="store_true", help="also run without the early stop")
    args = parser.parse_args()
    spec = load_integration(args.integration)
    full = args.trials * len(spec.scenarios) * args.seeds
    print(
        f"tune {spec.name}: {args.trials} candidates x {len(spec.scenarios)} scenarios x {args.seeds} seeds "
        f"({full} runs if every candidate ran in full), {args.jobs} processes, load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    for stop_early in (True, False) if args.compare else (True,):
        began, cpu_before = time.perf_counter(), _cpu()
        result = tune(spec, trials=args.trials, seed=args.seed, seeds=args.seeds, jobs=args.jobs, stop_early=stop_early)
        wall, cpu = time.perf_counter() - began, _cpu() - cpu_before  # the pool's workers are reaped by now
        label = "early stop" if stop_early else "full runs "
        print(
            f"  {label}  {wall:6.1f} s wall  {args.trials / wall:5.2f} candidates/s  CPU {cpu:6.1f} s "
            f"(/{args.jobs} = {cpu / args.jobs:5.1f} s)  runs simulated {_runs(result):4d}  feasible "
            f"{sum(c.feasible for c in result.candidates):3d}  recommended "
            f"{'none' if result.recommended is None else result.recommended.number}  hypervolume "
            f"{hypervolume(result):.4f}"
        )


#: The hypervolume's reference point: (attempts per call, p99 seconds), beyond any candidate worth keeping.
REFERENCE = (3.0, 10.0)


def hypervolume(result: TuneResult) -> float:
    """The area the feasible front dominates up to :data:`REFERENCE` (0.0 without a feasible candidate)."""
    points = sorted((c.partner_load, c.p99_latency) for c in result.front if c.feasible)
    area, ceiling = 0.0, REFERENCE[1]
    for load, p99 in points:
        if load < REFERENCE[0] and p99 < ceiling:
            area += (REFERENCE[0] - load) * (ceiling - p99)
            ceiling = p99
    return area


def _cpu() -> float:
    """CPU seconds of this process and its reaped children (the worker processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _runs(result: TuneResult) -> int:
    """Scenario runs the search simulated: each distinct candidate once, as far as it got."""
    distinct = {tuple(sorted(c.settings.items())): c for c in result.candidates}
    return sum(score.seeds for c in distinct.values() for score in c.scores.values())


if __name__ == "__main__":
    main()
