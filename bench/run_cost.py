"""Wall time and peak memory of ``integration-kit run`` (the playbook: three papermill notebooks) at three sizes.

    .venv/bin/python bench/run_cost.py            # payments, steady, 60, 300 and 900 virtual seconds
    .venv/bin/python bench/run_cost.py --quick    # 10, 30 and 90 virtual seconds

Each size is one ``integration-kit run payments --scenario steady --duration N --out <temp folder>`` in a fresh
process, started from the project's root (the current directory). Its memory is polled with psutil every 50 ms
over the whole process tree, the CLI and the Jupyter kernels papermill starts: "tree MB" is the peak of the summed
resident memory of all of them at one poll, "largest MB" the peak of any single process (usually the exercise
notebook's kernel). Polling can miss a peak shorter than 50 ms, and the sum counts shared pages once per process.
Without psutil (ipykernel, the playbook's kernel, brings it), "largest MB" is ``ru_maxrss`` of the waited-for
children (the largest process of any run so far, sizes grow) and "tree MB" is not measured. Growth is what to
read: the calls grow with the duration, so do time and memory where a stage keeps every event.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

try:
    import psutil
except ImportError:  # pragma: no cover - see the module docstring
    psutil = None

#: How often the process tree's memory is read.
POLL_SECONDS = 0.05


@dataclass(frozen=True)
class RunCost:
    """One run's figures: wall seconds, peak summed resident MB of the tree, peak MB of its largest process."""

    wall: float
    tree_mb: float
    largest_mb: float
    status: int


def measure(integration: str, scenario: str, duration: float) -> RunCost:
    """Run the playbook once into a temporary folder, polling its process tree's memory until it ends."""
    cli = Path(sys.executable).with_name("integration-kit")
    with tempfile.TemporaryDirectory(prefix="bench-run-") as out:
        command = [str(cli), "run", integration, "--scenario", scenario, "--duration", f"{duration:g}", "--out", out]
        began = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if psutil is None:
            child.wait()
            largest = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # kilobytes on Linux
            return RunCost(time.perf_counter() - began, float("nan"), largest, child.returncode)
        root = psutil.Process(child.pid)
        tree_peak = largest_peak = 0
        while child.poll() is None:
            tree, largest = _tree_rss(root)
            tree_peak, largest_peak = max(tree_peak, tree), max(largest_peak, largest)
            time.sleep(POLL_SECONDS)
        wall = time.perf_counter() - began
    return RunCost(wall, tree_peak / 2**20, largest_peak / 2**20, child.returncode)


def _tree_rss(root: psutil.Process) -> tuple[int, int]:
    """Summed and largest resident bytes of ``root`` and its descendants now; processes that end meanwhile count 0."""
    sizes = []
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0, 0
    for process in processes:
        try:
            sizes.append(process.memory_info().rss)
        except psutil.Error:
            continue
    return sum(sizes), max(sizes, default=0)


def main() -> None:
    """Print one table row per size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10, 30 and 90 virtual seconds instead of 60, 300, 900")
    parser.add_argument("--integration", default="payments", help="an HTTP integration of the project (payments)")
    parser.add_argument("--scenario", default="steady", help="one of its scenarios (default steady)")
    args = parser.parse_args()
    sizes = (10.0, 30.0, 90.0) if args.quick else (60.0, 300.0, 900.0)
    print(f"integration-kit run {args.integration} --scenario {args.scenario}; load average {os.getloadavg()[0]:.2f}")
    if psutil is not None:
        print("memory: psutil RSS polled every 50 ms, the CLI and its kernels (tree = summed, largest = one process)")
    else:
        print("memory: ru_maxrss of RUSAGE_CHILDREN (largest = one process, largest so far); tree not measured")
    print(f"{'virtual s':>9}{'wall s':>9}{'tree MB':>9}{'largest MB':>12}{'exit':>6}")
    for size in sizes:
        cost = measure(args.integration, args.scenario, size)
        print(f"{size:>9.0f}{cost.wall:>9.1f}{cost.tree_mb:>9.0f}{cost.largest_mb:>12.0f}{cost.status:>6}")


if __name__ == "__main__":
    main()
