"""The scoreboard: integration_kit against its Python peers, side by side, on live failing partners.

    python3 dev.py bench bench/scoreboard.py            # full: every scenario, 3 repetitions (about 35 min)
    python3 dev.py bench bench/scoreboard.py --quick    # smoke run, under a minute (CI runs it)

Each bundled scenario (outage and recovery, brownout, rate limited, slow partner, flapping, and the retry storm
when `the bundled `retry-storm` scenario` exists) is played by the flaky upstream
(:func:`integration_kit.sim.upstream.serve_scenario`) in a subprocess, over real sockets on 127.0.0.1, ``time_scale``
times faster than real time. The same open-loop load (Poisson arrivals at ``rate`` logical calls per scenario
second, seeded, identical for every policy, on a bounded pool of threads; each run bounded by the scenario's
length, each call by its timeouts, and a call that cannot start within the caller's deadline is abandoned) goes
through each policy of :func:`policies`: no resilience, tenacity, stamina, httpx-retries, pybreaker,
circuitbreaker, tenacity + pybreaker, integration_kit with its defaults and with a spec's settings.

Every peer is configured as its documentation recommends, as close to integration_kit's defaults as its
features allow (3 attempts, exponential backoff from 0.2 s with full jitter up to 20 s, a 30 s deadline where it
has one, the same per-attempt timeouts); every setting is written into the output. Peers sleep in real time, so
every duration they are given is divided by ``time_scale`` (the settings list scenario seconds); integration_kit
runs on a :class:`~integration_kit.sim.upstream.ScaledClock`, as the playbook's live mode does.

Runs are interleaved (each repetition plays every scenario for every policy, in a rotated order), and each
figure is the median and min-max over the repetitions. The figures are defined in
:mod:`integration_kit.research.scoreboard`. The same command then measures the overhead: the engine's in-process
cost (``bench/policies.py``) and the loopback client cost against raw httpx (``bench/overhead.py``).

Output: a Markdown table per scenario, the settings, the overhead and the targets on stdout; a JSON file
(``--out``, default ``bench/results/scoreboard.json``) and one chart per scenario next to it.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib.util
import json
import math
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import circuitbreaker
import httpx
import pybreaker
import stamina
import stamina.instrumentation
import tenacity
from httpx_retries import Retry, RetryTransport

from integration_kit.http.client import ResilientClient
from integration_kit.http.config import ClientConfig
from integration_kit.playbook.kinds.http.live import scaled_timeouts
from integration_kit.playbook.kinds.http.spec import load_integration
from integration_kit.policies.config import Timeouts
from integration_kit.research.scoreboard import (
    CallRecord,
    check_targets,
    markdown_report,
    plot_scenario,
    run_metrics,
    summarize,
)
from integration_kit.sim.scenarios import SCENARIO_DIR, Scenario
from integration_kit.sim.upstream import CALL_ID_HEADER, ScaledClock, serve_scenario

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
SCENARIOS = ["outage-and-recovery", "brownout", "rate-limited", "slow-partner", "flapping", "retry-storm"]
SPEC = ROOT / "data" / "integrations" / "payments.toml"
OUT = BENCH / "results" / "scoreboard.json"
PATH = "/resource"
#: Threads that run calls (the open-loop load's bound on concurrency); httpx pools 100 connections by default.
MAX_WORKERS = 96
#: The caller's deadline (scenario seconds) for policies that have none: integration_kit's default deadline.
CALLER_DEADLINE = 30.0

# The full run plays 15x faster than real time: faster, and scheduling stalls on a busy 2-core machine (tens of
# milliseconds) become seconds of scenario time and trip the tuned spec's short timeouts.
FULL = {"time_scale": 15.0, "rate": 8.0, "repetitions": 3, "scenarios": SCENARIOS}
# A smoke run: one short scenario (120 s played in 3 s), one repetition, small overhead counts.
QUICK = {"time_scale": 40.0, "rate": 4.0, "repetitions": 1, "scenarios": ["rate-limited"]}

# integration_kit's defaults, mirrored in every peer's settings (scenario seconds).
ATTEMPTS = 3
BASE_DELAY = 0.2
MAX_DELAY = 20.0
TIMEOUTS = Timeouts()
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
FAIL_MAX = 5  # pybreaker's and circuitbreaker's documented default: consecutive failures that open the circuit
RESET = 30.0  # integration_kit's wait_in_open (pybreaker's docs use 60, circuitbreaker's default is 30)

SENT = threading.local()  # attempts the current thread's call has sent (0 after a failure: rejected fast)


class CountingTransport(httpx.HTTPTransport):
    """httpx's transport, counting the requests the current call sent (to tell calls rejected fast)."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        SENT.count = getattr(SENT, "count", 0) + 1
        return super().handle_request(request)


@dataclass
class Setup:
    """What every contender is built from: the upstream's URL and the time scale."""

    url: str
    scale: float

    def timeout(self) -> httpx.Timeout:
        t = scaled_timeouts(TIMEOUTS, self.scale)
        return httpx.Timeout(connect=t.connect, read=t.read, write=t.write, pool=t.pool)

    def client(self, transport: httpx.BaseTransport | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=self.timeout(), transport=transport or CountingTransport())


@dataclass
class Contender:
    call: Callable[[str], object]  # one logical call, given its call id; raises on failure
    close: Callable[[], object]
    deadline: float = CALLER_DEADLINE


@dataclass
class Policy:
    name: str
    build: Callable[[Setup], Contender]
    settings: dict[str, Any] = field(default_factory=dict)


def transient(exc: BaseException) -> bool:
    """What every retrying peer retries: transport errors and the statuses integration_kit retries by default."""
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code in RETRY_STATUSES
    return isinstance(exc, httpx.TransportError)


def get(client: httpx.Client, call_id: str) -> httpx.Response:
    response = client.get(PATH, headers={CALL_ID_HEADER: call_id})
    response.raise_for_status()
    return response


COMMON = {
    "timeouts (connect/read/write/pool)": "3.05/10/10/5 s",
    "retry on": "transport errors, 408 429 500 502 503 504",
}


def no_resilience(s: Setup) -> Contender:
    client = s.client()
    return Contender(lambda cid: get(client, cid), client.close)


def with_tenacity(s: Setup) -> Contender:
    client = s.client()
    retrying = tenacity.retry(
        stop=tenacity.stop_after_attempt(ATTEMPTS) | tenacity.stop_after_delay(CALLER_DEADLINE / s.scale),
        wait=tenacity.wait_random_exponential(multiplier=BASE_DELAY / s.scale, max=MAX_DELAY / s.scale),
        retry=tenacity.retry_if_exception(transient),
        reraise=True,
    )(get)
    return Contender(lambda cid: retrying(client, cid), client.close)


def stamina_hook(scale: float) -> Callable[[Exception], bool | float]:
    """stamina's documented backoff hook: retry transient errors, wait a 429's Retry-After (scaled to real time)."""

    def hook(exc: Exception) -> bool | float:
        if isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code == 429:
            after = exc.response.headers.get("retry-after", "")
            if after.isdigit():
                return float(after) / scale
        return transient(exc)

    return hook


def with_stamina(s: Setup) -> Contender:
    client = s.client()
    retrying = stamina.retry(
        on=stamina_hook(s.scale),
        attempts=ATTEMPTS,
        timeout=CALLER_DEADLINE / s.scale,
        wait_initial=BASE_DELAY / s.scale,
        wait_max=MAX_DELAY / s.scale,
        wait_jitter=BASE_DELAY / s.scale,
        wait_exp_base=2,
    )(get)
    return Contender(lambda cid: retrying(client, cid), client.close)


def with_httpx_retries(s: Setup) -> Contender:
    scaled = type(
        "ScaledRetry", (Retry,), {"parse_retry_after": lambda self, v: Retry.parse_retry_after(self, v) / s.scale}
    )
    retry = scaled(
        total=ATTEMPTS - 1,
        backoff_factor=BASE_DELAY / 2 / s.scale,  # sleeps backoff_factor * 2**retries_made * uniform(0, 1)
        backoff_jitter=1.0,
        max_backoff_wait=MAX_DELAY / s.scale,
        status_forcelist=sorted(RETRY_STATUSES),
        respect_retry_after_header=True,
    )
    client = s.client(RetryTransport(transport=CountingTransport(), retry=retry))
    return Contender(lambda cid: get(client, cid), client.close)


def with_pybreaker(s: Setup) -> Contender:
    client = s.client()
    breaker = pybreaker.CircuitBreaker(fail_max=FAIL_MAX, reset_timeout=RESET / s.scale)
    return Contender(lambda cid: breaker.call(get, client, cid), client.close)


def with_circuitbreaker(s: Setup) -> Contender:
    client = s.client()
    breaker = circuitbreaker.CircuitBreaker(failure_threshold=FAIL_MAX, recovery_timeout=RESET / s.scale)
    guarded = breaker(get)
    return Contender(lambda cid: guarded(client, cid), client.close)


def with_tenacity_pybreaker(s: Setup) -> Contender:
    client = s.client()
    breaker = pybreaker.CircuitBreaker(fail_max=FAIL_MAX, reset_timeout=RESET / s.scale)
    retrying = tenacity.retry(
        stop=tenacity.stop_after_attempt(ATTEMPTS) | tenacity.stop_after_delay(CALLER_DEADLINE / s.scale),
        wait=tenacity.wait_random_exponential(multiplier=BASE_DELAY / s.scale, max=MAX_DELAY / s.scale),
        retry=tenacity.retry_if_exception(transient),  # not pybreaker.CircuitBreakerError: an open circuit ends it
        reraise=True,
    )(lambda cid: breaker.call(get, client, cid))
    return Contender(retrying, client.close)


def kit(config: ClientConfig) -> Callable[[Setup], Contender]:
    def build(s: Setup) -> Contender:
        scaled = dataclasses.replace(
            config, base_url=s.url, auth=None, timeouts=scaled_timeouts(config.timeouts, s.scale)
        )
        client = ResilientClient(scaled, transport=CountingTransport(), clock=ScaledClock(s.scale))
        deadline = config.deadline if config.deadline is not None else CALLER_DEADLINE
        return Contender(lambda cid: client.get(PATH, headers={CALL_ID_HEADER: cid}), client.close, deadline)

    return build


def kit_settings(config: ClientConfig) -> dict[str, Any]:
    settings: dict[str, Any] = {"deadline": config.deadline}
    for name in ("timeouts", "retry", "budget", "breaker", "limits"):
        value = getattr(config, name)
        if value is None:
            settings[name] = "off"
            continue
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            settings[f"{name}.{f.name}"] = sorted(v) if isinstance(v, frozenset) else v
    return settings


def policies(spec_path: Path) -> list[Policy]:
    retrier = {"attempts": ATTEMPTS, **COMMON}
    deadline = f"{CALLER_DEADLINE:g} s"
    spec = load_integration(spec_path)
    defaults = ClientConfig(name="scoreboard", base_url="http://127.0.0.1")
    return [
        Policy("no resilience", no_resilience, {"library": "httpx.Client", **COMMON, "retry on": "nothing"}),
        Policy(
            "tenacity",
            with_tenacity,
            {
                **retrier,
                "stop": f"stop_after_attempt({ATTEMPTS}) | stop_after_delay({CALLER_DEADLINE:g})",
                "wait": f"wait_random_exponential(multiplier={BASE_DELAY}, max={MAX_DELAY:g}) (full jitter)",
                "Retry-After": "ignored (no built-in support)",
                "deadline": f"{deadline} between attempts only",
            },
        ),
        Policy(
            "stamina",
            with_stamina,
            {
                **retrier,
                "timeout": deadline,
                "wait_initial": BASE_DELAY,
                "wait_max": MAX_DELAY,
                "wait_jitter": BASE_DELAY,
                "wait_exp_base": 2,
                "Retry-After": "honoured through the backoff hook (stamina's documented recipe)",
            },
        ),
        Policy(
            "httpx-retries",
            with_httpx_retries,
            {
                **retrier,
                "total": ATTEMPTS - 1,
                "backoff_factor": BASE_DELAY / 2,
                "backoff_jitter": 1.0,
                "max_backoff_wait": MAX_DELAY,
                "status_forcelist": sorted(RETRY_STATUSES),
                "Retry-After": "honoured (respect_retry_after_header=True)",
                "deadline": "none",
            },
        ),
        Policy(
            "pybreaker",
            with_pybreaker,
            {"fail_max": FAIL_MAX, "reset_timeout": RESET, **COMMON, "retry on": "nothing", "deadline": "none"},
        ),
        Policy(
            "circuitbreaker",
            with_circuitbreaker,
            {
                "failure_threshold": FAIL_MAX,
                "recovery_timeout": RESET,
                **COMMON,
                "retry on": "nothing",
                "deadline": "none",
            },
        ),
        Policy(
            "tenacity + pybreaker",
            with_tenacity_pybreaker,
            {
                **retrier,
                "tenacity": "as above, the breaker inside the retry (every attempt passes it)",
                "fail_max": FAIL_MAX,
                "reset_timeout": RESET,
            },
        ),
        Policy("integration_kit defaults", kit(defaults), kit_settings(defaults)),
        Policy(
            f"integration_kit {spec.name}",
            kit(spec.client),
            {
                "spec": str(spec_path.relative_to(ROOT)) if spec_path.is_relative_to(ROOT) else str(spec_path),
                **kit_settings(spec.client),
            },
        ),
    ]


# -- the live upstream, in a subprocess (so it does not share the client's GIL) ---------------------------------


def serve() -> None:
    """The subprocess: import everything, then read ``path seed scale port`` from stdin, serve that scenario,
    print the URL, and stop at the next line (or when stdin closes)."""
    line = sys.stdin.readline().split()
    if not line:
        return
    path, seed, scale, port = line[0], int(line[1]), float(line[2]), int(line[3])
    scenario = Scenario.from_toml(path)
    hang = CALLER_DEADLINE / scale + 1
    with serve_scenario(scenario, seed=seed, time_scale=scale, port=port, max_hang=hang) as url:
        print(url, flush=True)
        sys.stdin.readline()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Upstreams:
    """Flaky upstreams in subprocesses, one spare always started ahead, so its imports overlap the current run."""

    def __init__(self) -> None:
        self._spare = self._spawn()

    @staticmethod
    def _spawn() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def start(self, path: Path, seed: int, scale: float, port: int) -> tuple[subprocess.Popen[str], str]:
        """Serve the scenario; its clock starts just before the URL is returned."""
        process, self._spare = self._spare, self._spawn()
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write(f"{path} {seed} {scale} {port}\n")
        process.stdin.flush()
        url = process.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            process.kill()
            raise RuntimeError(f"the flaky upstream did not start for {path}")
        return process, url

    @staticmethod
    def stop(process: subprocess.Popen[str]) -> None:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def close(self) -> None:
        self.stop(self._spare)


def arrivals(rate: float, duration: float, seed: int) -> list[float]:
    """Poisson arrival times (scenario seconds) in [0, duration)."""
    rng = random.Random(seed)
    times, t = [], 0.0
    while True:
        t += rng.expovariate(rate)
        if t >= duration:
            return times
        times.append(t)


def play(
    upstreams: Upstreams, policy: Policy, path: Path, scenario: Scenario, scale: float, rate: float, seed: int
) -> dict[str, Any]:
    """One run: serve the scenario, drive the open-loop load through the policy, and measure."""
    schedule = arrivals(rate, scenario.duration, seed)
    port = free_port()
    contender = policy.build(Setup(f"http://127.0.0.1:{port}", scale))  # before the scenario's clock starts
    process, url = upstreams.start(path, seed, scale, port)
    try:
        with httpx.Client(base_url=url, timeout=5.0) as plain:
            before = time.monotonic()
            upstream_now = plain.get("/stats").json()["time"]
            origin = (before + time.monotonic()) / 2 - upstream_now / scale  # real time of scenario time 0

            def now() -> float:
                return (time.monotonic() - origin) * scale

            records: list[CallRecord | None] = [None] * len(schedule)
            abandoned: list[int] = []

            def one(index: int) -> None:
                SENT.count = 0
                start = now()
                if start - schedule[index] > CALLER_DEADLINE:
                    # every worker was busy for a whole deadline (a policy that serialises calls): the caller
                    # gave up before the call could start; it failed, and took the deadline from its arrival
                    records[index] = CallRecord(schedule[index], start, ok=False)
                    abandoned.append(index)
                    return
                ok = False
                try:
                    contender.call(f"c{index}")
                    ok = True
                except Exception:  # every failure counts; none may stop the load
                    ok = False
                records[index] = CallRecord(start, now(), ok, rejected=not ok and SENT.count == 0)

            workers = min(MAX_WORKERS, max(8, math.ceil(rate * 8)))
            with ThreadPoolExecutor(workers, thread_name_prefix="load") as pool:
                for index, at in enumerate(schedule):
                    if (delay := (at - now()) / scale) > 0:
                        time.sleep(delay)
                    pool.submit(one, index)
            stats = plain.get("/stats").json()
        contender.close()
    finally:
        upstreams.stop(process)
    calls = [r for r in records if r is not None]
    metrics = run_metrics(
        calls,
        scenario=scenario,
        received=int(stats["received"]),
        received_per_second={int(k): int(v) for k, v in stats["per_second"].items()},
        early_retries=int(stats.get("early_retries", 0)),
        deadline=contender.deadline,
    )
    # calls that started more than 0.5 s after their arrival: every worker was busy (or the machine stalled)
    metrics["late_starts"] = float(sum(c.start - a > 0.5 for c, a in zip(calls, schedule, strict=True)))
    metrics["abandoned"] = float(len(abandoned))
    return metrics


# -- overhead: bench/policies.py and bench/overhead.py, imported and run in this command -----------------------


def load_bench(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load bench/{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ratio_median(values: list[float], raw: list[float]) -> float:
    return statistics.median(v / r for v, r in zip(values, raw, strict=True))


def overhead(quick: bool) -> dict[str, Any]:
    """The engine's in-process cost and the loopback client cost against raw httpx, with the printed tables."""
    pol = load_bench("policies")
    ovh = load_bench("overhead")
    if quick:
        pol.N, pol.ROUNDS = 5_000, 3
        ovh.SEQUENTIAL_CALLS, ovh.SEQUENTIAL_ROUNDS, ovh.THREAD_CALLS, ovh.CONCURRENT_ROUNDS = 60, 5, 8, 3
    contenders = pol.make_contenders()
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(pol.ROUNDS):
        for name, fn in contenders.items():
            samples[name].append(pol.per_call(fn))
    bare = statistics.median(samples["bare call"])
    in_process = {name: statistics.median(v) - bare for name, v in samples.items() if name != "bare call"}
    process, url = ovh.start_server()
    try:
        seq = ovh.sequential(url)
        thr = ovh.threaded(url)
    finally:
        process.terminate()
        process.wait(timeout=10)
    text = "\n\n".join(
        [
            "In-process cost over a bare call (us per call, median of "
            f"{pol.ROUNDS} interleaved rounds of {pol.N:,} calls)\n"
            + "\n".join(f"  {name:<26}{cost:>8.2f}" for name, cost in in_process.items()),
            ovh.table(
                f"Sequential loopback GETs ({ovh.SEQUENTIAL_CALLS} calls x {ovh.SEQUENTIAL_ROUNDS} rounds)",
                "us/call",
                seq,
                lower_is_better=True,
            ),
            ovh.table(
                f"{ovh.THREADS} threads, one client ({ovh.THREADS * ovh.THREAD_CALLS} calls x "
                f"{ovh.CONCURRENT_ROUNDS} rounds)",
                "calls/s",
                thr,
                lower_is_better=False,
            ),
        ]
    )
    return {
        "engine_us": in_process["integration_kit engine"],
        "in_process_us": in_process,
        "sequential_us": {k: statistics.median(v) for k, v in seq.items()},
        "sequential_ratio": ratio_median(seq["ResilientClient"], seq["raw httpx"]),
        "sequential_ratio_peer": ratio_median(seq["tenacity + pybreaker"], seq["raw httpx"]),
        "threads_calls_per_s": {k: statistics.median(v) for k, v in thr.items()},
        "threads_ratio": ratio_median(thr["ResilientClient"], thr["raw httpx"]),
        "text": text,
    }


# -- the command ------------------------------------------------------------------------------------------------


def scenario_paths(names: list[str]) -> dict[str, Path]:
    found = {}
    for name in names:
        path = SCENARIO_DIR / f"{name}.toml"
        if path.is_file():
            found[name] = path
        else:
            print(f"(scenario {name} not found at {path}: skipped)")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: one repetition, one scenario, small counts")
    parser.add_argument("--repetitions", type=int)
    parser.add_argument("--time-scale", type=float)
    parser.add_argument("--rate", type=float, help="logical calls per scenario second")
    parser.add_argument("--scenarios", help="comma-separated scenario names")
    parser.add_argument("--policies", help="comma-separated policy names (default: all)")
    parser.add_argument("--spec", type=Path, default=SPEC, help="the spec whose settings the last policy uses")
    parser.add_argument("--out", type=Path, default=None, help=f"the JSON result (default {OUT.relative_to(ROOT)})")
    parser.add_argument("--no-overhead", action="store_true", help="skip the overhead measurements")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    mode = dict(QUICK if args.quick else FULL)
    scale = args.time_scale or mode["time_scale"]
    rate = args.rate or mode["rate"]
    repetitions = args.repetitions or mode["repetitions"]
    names = args.scenarios.split(",") if args.scenarios else mode["scenarios"]
    out = args.out or (OUT.with_name("scoreboard-quick.json") if args.quick else OUT)

    contenders = policies(args.spec)
    if args.policies:
        wanted = set(args.policies.split(","))
        contenders = [p for p in contenders if p.name in wanted or p.name.startswith("integration_kit")]
    ours = [p.name for p in contenders if p.name.startswith("integration_kit")]
    paths = scenario_paths(names)
    scenarios: dict[str, Scenario] = {}
    for name, path in paths.items():
        try:
            scenarios[name] = Scenario.from_toml(path)
        except Exception as exc:  # a scenario another branch adds may need fields this one lacks
            print(f"(scenario {name} could not be loaded: {exc}; skipped)")
    began = time.monotonic()
    print(
        f"scoreboard: {len(scenarios)} scenarios x {len(contenders)} policies x {repetitions} repetitions, "
        f"time scale {scale:g}, {rate:g} calls per scenario second; python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs",
        flush=True,
    )
    stamina.instrumentation.set_on_retry_hooks([])  # no retry logging from stamina during the runs
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {s: {p.name: [] for p in contenders} for s in scenarios}
    upstreams = Upstreams()
    try:
        for rep in range(repetitions):
            for index, (name, scenario) in enumerate(scenarios.items()):
                shift = (rep + index) % len(contenders)
                for policy in contenders[shift:] + contenders[:shift]:
                    seed = args.seed + 1000 * rep + index
                    metrics = play(upstreams, policy, paths[name], scenario, scale, rate, seed)
                    runs[name][policy.name].append(metrics)
                    print(
                        f"  [{time.monotonic() - began:6.1f}s] rep {rep + 1} {name:<20} {policy.name:<28} "
                        f"success {100 * (metrics['success_rate'] or 0):5.1f}%  "
                        f"load {metrics['amplification'] or 0:.2f}x",
                        flush=True,
                    )
    finally:
        upstreams.close()
    result: dict[str, Any] = {
        "meta": {
            "command": "python3 dev.py bench bench/scoreboard.py" + (" --quick" if args.quick else ""),
            "quick": args.quick,
            "time_scale": scale,
            "rate": rate,
            "repetitions": repetitions,
            "seed": args.seed,
            "path": PATH,
            "caller_deadline": CALLER_DEADLINE,
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        },
        "ours": ours,
        "policies": {p.name: {"settings": p.settings} for p in contenders},
        "scenarios": {
            name: {
                "description": scenario.description,
                "duration": scenario.duration,
                "summary": {p: summarize(r) for p, r in runs[name].items()},
                "runs": runs[name],
            }
            for name, scenario in scenarios.items()
        },
    }
    if not args.no_overhead:
        result["overhead"] = overhead(args.quick)
    result["targets"] = check_targets(result)
    print()
    print(markdown_report(result))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=_json_default) + "\n")
    for name in scenarios:
        fig = plot_scenario(result, name)
        fig.savefig(out.with_name(f"{out.stem}-{name}.png"), dpi=90)
    print(f"\nwrote {out} and {len(scenarios)} charts; total {time.monotonic() - began:.0f} s")
    return 0


def _json_default(value: object) -> object:
    return str(value)


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        sys.exit(main())
