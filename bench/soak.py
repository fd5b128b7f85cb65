"""Soak: sync threads and async tasks hammer the flaky upstream through a brownout; nothing may deadlock or leak.

    python3 dev.py bench bench/soak.py              # 32 threads + 256 async tasks for 60 s
    .venv/bin/python bench/soak.py --duration 10    # the short form (tests/faults/test_soak.py runs it)

The upstream plays `the bundled `brownout` scenario` (healthy, 30 % transient errors and resets, healthy again)
on 127.0.0.1 in its own process (so it does not compete for the clients' GIL), its 180 scenario seconds
compressed into the run. Every call has a deadline; one
``ResilientClient`` is shared by the threads and one ``AsyncResilientClient`` by the tasks. The run checks:

- no deadlock: every worker ends within ``duration + deadline + 5 s``;
- every call accounted for: calls started = successes + typed failures = call-finished events, and no
  exception outside the kit's tree;
- how late the latest call ended past its deadline, as the caller saw it (sync and async) and as the engine's
  call-finished event measured it (the difference is the caller waiting for the GIL or the event loop);
- tracemalloc growth between the end of warm-up and the end of the run stays under ``max_growth`` bytes;
- no file descriptor growth once the clients are closed.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from integration_kit import AsyncResilientClient, ClientConfig, ResilientClient
from integration_kit.errors import CallRejected, IntegrationError
from integration_kit.events import CallFinished, Event
from integration_kit.policies.config import Limits, RetryPolicy, Timeouts
from integration_kit.sim.scenarios import SCENARIO_DIR

ROOT = Path(__file__).resolve().parent.parent
DEADLINE = 2.0
#: How long a worker the client refused (breaker open, budget spent) waits before its next call, as a caller
#: would (seconds); without it the workers spin on instant refusals and only measure the GIL.
REFUSED_PAUSE = 0.02
#: httpx's default pool size. Calls past it queue in the kit's bulkhead (bounded by the deadline), not in
#: httpcore's pool, whose queue costs O(connections x waiting requests) of event-loop time per change.
POOL_SIZE = 100


@dataclass
class Report:
    """What a soak run counted and measured."""

    duration: float
    threads: int
    tasks: int
    started: int = 0
    succeeded: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    foreign: list[str] = field(default_factory=list)
    finished_events: int = 0
    stuck_workers: int = 0
    worst_overrun: dict[str, float] = field(default_factory=dict)
    worst_overrun_engine: float = 0.0
    memory_growth: int = 0
    fd_growth: int = 0

    @property
    def accounted(self) -> bool:
        ended = self.succeeded + sum(self.failed.values())
        return self.started == ended == self.finished_events and not self.foreign


class _Tally:
    """Thread-safe counters shared by every worker."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started = 0
        self.succeeded = 0
        self.failed: collections.Counter[str] = collections.Counter()
        self.foreign: list[str] = []
        self.finished = 0
        self.worst: dict[str, float] = {"sync": 0.0, "async": 0.0}
        self.worst_engine = 0.0

    def hook(self, event: Event) -> None:
        if isinstance(event, CallFinished):
            with self.lock:
                self.finished += 1
                self.worst_engine = max(self.worst_engine, event.duration - DEADLINE)

    def begin(self) -> None:
        with self.lock:
            self.started += 1

    def end(self, mode: str, elapsed: float, error: BaseException | None) -> None:
        with self.lock:
            self.worst[mode] = max(self.worst[mode], elapsed - DEADLINE)
            if error is None:
                self.succeeded += 1
            elif isinstance(error, IntegrationError):
                self.failed[type(error).__name__] += 1
            else:
                self.foreign.append(repr(error)[:200])


def _config(base_url: str) -> ClientConfig:
    return ClientConfig(
        name="soak",
        base_url=base_url,
        deadline=DEADLINE,
        timeouts=Timeouts(connect=1.0, read=1.0, write=1.0, pool=1.0),
        retry=RetryPolicy(max_attempts=3, base_delay=0.05, max_delay=0.5),
        limits=Limits(max_concurrent=POOL_SIZE),
    )


_SERVE = """
import sys, time
from integration_kit.sim.scenarios import Scenario
from integration_kit.sim.upstream import serve_scenario
scenario = Scenario.from_toml(sys.argv[1])
with serve_scenario(scenario, seed=7, time_scale=scenario.duration / float(sys.argv[2]), max_hang=5.0) as url:
    print(url, flush=True)
    time.sleep(float(sys.argv[2]) + 30)
"""


@contextmanager
def _upstream(duration: float) -> Iterator[str]:
    """The flaky upstream in a brownout, in a process of its own; yields its base URL."""
    scenario = SCENARIO_DIR / "brownout.toml"  # the bundled one
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVE, str(scenario), str(duration)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def run_soak(duration: float = 60.0, threads: int = 32, tasks: int = 256) -> Report:
    """Run the soak for ``duration`` seconds with ``threads`` sync workers and ``tasks`` async tasks."""
    report = Report(duration, threads, tasks)
    tally = _Tally()
    with _upstream(duration) as base_url:
        fds_before = _fds()
        tracemalloc.start()
        stop_at = time.monotonic() + duration
        sync_client = ResilientClient(_config(base_url), hooks=[tally.hook])
        async_done = threading.Event()

        def worker() -> None:
            while time.monotonic() < stop_at:
                tally.begin()
                began = time.monotonic()
                error: BaseException | None = None
                try:
                    sync_client.get("/soak")
                except Exception as exc:  # counted: anything outside the tree is a finding
                    error = exc
                tally.end("sync", time.monotonic() - began, error)
                if isinstance(error, CallRejected):
                    time.sleep(REFUSED_PAUSE)

        async def async_main() -> None:
            async with AsyncResilientClient(_config(base_url), hooks=[tally.hook]) as client:

                async def task() -> None:
                    while time.monotonic() < stop_at:
                        tally.begin()
                        began = time.monotonic()
                        error: BaseException | None = None
                        try:
                            await client.get("/soak")
                        except Exception as exc:
                            error = exc
                        tally.end("async", time.monotonic() - began, error)
                        if isinstance(error, CallRejected):
                            await asyncio.sleep(REFUSED_PAUSE)

                await asyncio.gather(*(task() for _ in range(tasks)))
            async_done.set()

        workers = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
        loop_thread = threading.Thread(target=asyncio.run, args=(async_main(),), daemon=True)
        for thread in [*workers, loop_thread]:
            thread.start()
        time.sleep(min(duration * 0.2, 10.0))  # warm-up: pools, caches and interned strings settle
        gc.collect()
        warm = tracemalloc.get_traced_memory()[0]
        join_by = stop_at + DEADLINE + 5.0
        for thread in [*workers, loop_thread]:
            thread.join(max(0.0, join_by - time.monotonic()))
        report.stuck_workers = sum(t.is_alive() for t in [*workers, loop_thread])
        sync_client.close()
        gc.collect()
        report.memory_growth = tracemalloc.get_traced_memory()[0] - warm
        tracemalloc.stop()
        report.fd_growth = _fds() - fds_before
    report.started = tally.started
    report.succeeded = tally.succeeded
    report.failed = dict(tally.failed)
    report.foreign = tally.foreign[:10]
    report.finished_events = tally.finished
    report.worst_overrun = {mode: round(value, 3) for mode, value in tally.worst.items()}
    report.worst_overrun_engine = round(tally.worst_engine, 3)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--tasks", type=int, default=256)
    args = parser.parse_args()
    report = run_soak(args.duration, args.threads, args.tasks)
    print(json.dumps({**asdict(report), "accounted": report.accounted}, indent=2))


if __name__ == "__main__":
    main()
