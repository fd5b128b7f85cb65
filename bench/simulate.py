"""Simulator throughput: one hour of traffic at 100 calls/s (360,000 logical calls) in virtual time.

    python3 dev.py bench bench/simulate.py          # or: .venv/bin/python bench/simulate.py [--hours H]
    .venv/bin/python bench/simulate.py --against d16d6b7 [--rounds 5] [--instructions]

The run has retries, a retry budget, a circuit breaker and full event recording, against the ``steady``
scenario stretched over the hour (and a shorter run of every bundled scenario). It prints calls per second and
events per second of wall time; the issue's target is 150,000 calls/s per core.

``--against REV`` measures this tree and git revision ``REV`` (extracted with ``git archive`` into a temporary
folder) side by side: each round runs the hour once in a fresh process for each, alternately, so a loaded
machine slows both alike; it prints each round, the medians and the ratio. ``--instructions`` adds the CPU
instructions per simulated call of each, counted by ``valgrind --tool=callgrind`` (the difference between a
20 s and a 120 s run, so start-up cancels out): a figure that load does not move.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from integration_kit.sim.scenarios import bundled_scenarios, load_scenario
from integration_kit.sim.simulate import simulate

ROOT = Path(__file__).resolve().parents[1]

#: Run in a fresh process with the tree under test first on ``sys.path``: one run of ``steady``, as JSON.
_PROBE = """
import json, os, sys
from integration_kit.sim.scenarios import load_scenario
from integration_kit.sim.simulate import simulate
rate, duration, seed = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
r = simulate(load_scenario("steady"), rate=rate, duration=duration, seed=seed)
print(json.dumps({"calls": r.calls_started, "events": len(r.recorder), "wall": r.wall_seconds}), flush=True)
os._exit(0)  # skip tearing down millions of events: not part of the run
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--against", metavar="REV", help="also measure git revision REV, side by side")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the side-by-side measurement")
    parser.add_argument("--instructions", action="store_true", help="with --against: count instructions too")
    args = parser.parse_args()
    if args.instructions and shutil.which("valgrind") is None:
        parser.error("--instructions needs valgrind on the PATH (apt-get install valgrind)")
    if args.against:
        compare(args.against, args.rounds, args.hours * 3600, args.rate, args.seed, args.instructions)
        return
    this_tree(args.hours * 3600, args.rate, args.seed)


def this_tree(duration: float, rate: float, seed: int) -> None:
    """The hour (or ``duration``) in this process, then a short run of every bundled scenario."""
    result = simulate(load_scenario("steady"), rate=rate, duration=duration, seed=seed)
    events = len(result.recorder)
    began = time.perf_counter()
    summary = result.summary
    summarize_s = time.perf_counter() - began
    print(f"steady, {duration:,.0f} virtual seconds at {rate:g} calls/s (retry + budget + breaker + recording)")
    print(f"  calls            {result.calls_started:,}")
    print(f"  events           {events:,}")
    print(f"  wall             {result.wall_seconds:.2f} s   (summary afterwards: {summarize_s:.2f} s)")
    print(f"  calls/s          {result.calls_started / result.wall_seconds:,.0f}")
    print(f"  events/s         {events / result.wall_seconds:,.0f}")
    print(f"  us/call          {result.wall_seconds / result.calls_started * 1e6:.2f}")
    print(f"  speed-up         {duration / result.wall_seconds:,.0f}x real time")
    print(f"  amplification    {summary.amplification:.4f}   success rate {summary.success_rate:.4%}")
    print()
    print(f"{'scenario':<22}{'calls':>8}{'events':>9}{'wall s':>8}{'calls/s':>10}{'events/s':>10}")
    for name, scenario in bundled_scenarios().items():
        run = simulate(scenario, rate=rate, seed=seed)
        n = len(run.recorder)
        print(
            f"{name:<22}{run.calls_started:>8,}{n:>9,}{run.wall_seconds:>8.2f}"
            f"{run.calls_started / run.wall_seconds:>10,.0f}{n / run.wall_seconds:>10,.0f}"
        )


def compare(rev: str, rounds: int, duration: float, rate: float, seed: int, instructions: bool) -> None:
    """This tree against revision ``rev``, in alternating fresh processes; the ratio of the medians."""
    with tempfile.TemporaryDirectory(prefix="bench-simulate-") as tmp:
        old = Path(tmp)
        archive = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        trees = {rev: old, "this tree": ROOT}
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
        print(f"steady, {duration:,.0f} virtual seconds at {rate:g} calls/s, seed {seed}; {rounds} alternating rounds")
        print(f"{'round':<7}{'tree':<12}{'calls':>9}{'events':>11}{'wall s':>8}{'calls/s':>10}{'events/s':>11}")
        for i in range(rounds):
            for name, tree in trees.items():
                run = _probe(tree, rate, duration, seed)
                runs[name].append(run)
                print(
                    f"{i + 1:<7}{name:<12}{run['calls']:>9,.0f}{run['events']:>11,.0f}{run['wall']:>8.2f}"
                    f"{run['calls'] / run['wall']:>10,.0f}{run['events'] / run['wall']:>11,.0f}"
                )
        rates = {name: statistics.median(r["calls"] / r["wall"] for r in rs) for name, rs in runs.items()}
        events = {name: statistics.median(r["events"] / r["wall"] for r in rs) for name, rs in runs.items()}
        same = len({(r["calls"], r["events"]) for rs in runs.values() for r in rs}) == 1
        print()
        for name in trees:
            print(f"median {name:<12} {rates[name]:>10,.0f} calls/s {events[name]:>12,.0f} events/s")
        print(f"ratio (this tree / {rev}): {rates['this tree'] / rates[rev]:.3f}   same calls and events: {same}")
        if instructions:
            counts = {name: _instructions_per_call(tree, rate, seed) for name, tree in trees.items()}
            for name, count in counts.items():
                print(f"instructions per call, {name:<12} {count:>10,.0f}")
            print(f"instruction ratio ({rev} / this tree): {counts[rev] / counts['this tree']:.3f}")


def _probe(tree: Path, rate: float, duration: float, seed: int, *, wrap: list[str] | None = None) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [*(wrap or []), sys.executable, "-c", _PROBE, str(rate), str(duration), str(seed)]
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True, cwd=tree)
    data: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    if wrap:
        found = re.search(r"Collected : ([\d,]+)", done.stderr)
        if found is None:
            raise RuntimeError(f"no instruction count in valgrind's output:\n{done.stderr[-2000:]}")
        data["instructions"] = int(found.group(1).replace(",", ""))
    return data


def _instructions_per_call(tree: Path, rate: float, seed: int) -> float:
    """Instructions per call: a 120 s run minus a 20 s run, over the difference in calls (start-up cancels)."""
    with tempfile.TemporaryDirectory() as tmp:
        wrap = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/callgrind.out"]
        short = _probe(tree, rate, 20.0, seed, wrap=wrap)
        long = _probe(tree, rate, 120.0, seed, wrap=wrap)
    return (long["instructions"] - short["instructions"]) / (long["calls"] - short["calls"])


if __name__ == "__main__":
    main()
