"""The simulator's time and peak memory at three sizes, events kept in memory vs streamed to CSV files.

    .venv/bin/python bench/memory.py            # 1,000 calls/s for 60 s, 600 s and an hour (3.6 M calls)
    .venv/bin/python bench/memory.py --quick    # 1,000 calls/s for 10 s, 60 s and 360 s

Each run is a fresh process (``steady``, keyed draws, retry + budget + breaker), so its peak resident memory
(``ru_maxrss``) is its own. Kept: a ``Recorder`` holds every event (as the engine's rows) until the summary;
streamed: an ``EventStream`` writes them to CSV files in a temporary folder every 100,000 events. The largest size
is only streamed: kept, it would hold about eleven million rows. Growth is what to read: time should grow with
the calls, streamed memory should not.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

_PROBE = """
import json, resource, sys, time
from integration_kit.sim.scenarios import load_scenario
from integration_kit.sim.simulate import simulate
from integration_kit.sim.stream import EventStream
duration, folder = float(sys.argv[1]), sys.argv[2]
began = time.perf_counter()
recorder = EventStream(folder) if folder else None
result = simulate(load_scenario("steady"), rate=1000.0, duration=duration, seed=1, recorder=recorder)
summary = result.summary
if recorder is not None:
    recorder.close()
wall = time.perf_counter() - began
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux
print(json.dumps({"calls": result.calls_started, "events": len(result.recorder), "run": result.wall_seconds,
                  "wall": wall, "peak_mb": peak, "p99": summary.latency_p99}))
"""


def probe(duration: float, stream: bool) -> dict[str, float]:
    """One run in a fresh process; its figures."""
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as folder:
        command = [sys.executable, "-c", _PROBE, str(duration), folder if stream else ""]
        done = subprocess.run(command, check=True, capture_output=True, text=True, env=os.environ)
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 s, 60 s and 360 s of virtual time")
    args = parser.parse_args()
    sizes = (10.0, 60.0, 360.0) if args.quick else (60.0, 600.0, 3600.0)
    print(f"steady at 1,000 calls/s; load average {os.getloadavg()[0]:.2f}")
    print(f"{'virtual s':>9}  {'events':<9}{'calls':>11}{'events':>12}{'run s':>8}{'total s':>9}{'peak MB':>9}")
    for size in sizes:
        for stream in (False, True):
            if not stream and size == sizes[-1]:
                continue
            f = probe(size, stream)
            label = "streamed" if stream else "kept"
            print(
                f"{size:>9.0f}  {label:<9}{f['calls']:>11,.0f}{f['events']:>12,.0f}{f['run']:>8.1f}"
                f"{f['wall']:>9.1f}{f['peak_mb']:>9.0f}"
            )


if __name__ == "__main__":
    main()
