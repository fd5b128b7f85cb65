"""Live runs: an integration's real client over real sockets, against the local flaky upstream or a real service.

:func:`live_exercise` is the live half of the playbook's exercise stage. Without ``base_url`` it serves the
scenario on 127.0.0.1 (:func:`~integration_kit.sim.upstream.serve_scenario`) ``time_scale`` times faster than real time,
and gives the client a :class:`~integration_kit.sim.upstream.ScaledClock` and timeouts divided by ``time_scale``, so
backoff, Retry-After and breaker waits happen in scenario seconds as in the simulator. With ``base_url`` it calls
that service in real time, with the secret read from the spec's environment variable.

Load is open-loop, as in the simulator: calls arrive at ``exercise.rate`` per scenario second (Poisson arrivals
from the run's seed) whether or not earlier calls have finished, and a bounded pool of :func:`pool_size` threads
serves them (sized from the rate and the deadline, so a partner that hangs until the deadline does not slow
the arrivals). With ``exercise.workers`` set, load is closed-loop instead: that many threads each pace their
calls so the whole offers about ``exercise.rate`` while calls are quick, and slow calls lower it, as callers
blocked on a slow partner do. Every loop is bounded by the run's duration. Needs the ``server`` extra.

The bench watches itself (:mod:`~integration_kit.playbook.verdict.bench`): each call's lateness against its
scheduled arrival, timer lag, CPU (the machine's and this process's) and the local upstream's own loop lag (its
``/stats``) go into :attr:`LiveResult.bench`, and a generator hopelessly behind stops offering load. When the
first attempts all fail before reaching the partner, the run stops with
:class:`~integration_kit.playbook.kinds.http.bench.UnreachableTarget` naming the URL.

A spec with ``openapi = "..."`` is exercised against its document: the local upstream answers through
:class:`~integration_kit.openapi.stand_in.DocumentedAnswers` (documented bodies, and the scenario's ``malformed``
answers broken by its keyed draws), and, with ``validate_responses``, each answer to ``exercise.method`` and
``exercise.path`` is checked (:class:`~integration_kit.openapi.calls.ResponseCheck`): a malformed one fails the
call as an invalid response and counts in :attr:`LiveResult.malformed_caught`; one handed to the caller
unchecked counts in :attr:`LiveResult.malformed_accepted`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import httpx

from integration_kit.clock import Clock, SystemClock
from integration_kit.errors import ConfigurationError, IntegrationError, InvalidResponse
from integration_kit.events import Recorder, Summary
from integration_kit.http.client import ResilientClient
from integration_kit.http.config import ClientConfig
from integration_kit.openapi.calls import ResponseCheck
from integration_kit.openapi.model import ApiDocument
from integration_kit.openapi.read import read_openapi
from integration_kit.openapi.stand_in import DocumentedAnswers
from integration_kit.playbook.kinds.http.bench import BenchHealth, BenchMonitor, FirstContact
from integration_kit.playbook.kinds.http.spec import IntegrationSpec
from integration_kit.policies.config import Timeouts
from integration_kit.sim.scenarios import Scenario
from integration_kit.sim.upstream import MALFORMED_HEADER, FlakyUpstream, ScaledClock, serve_app

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DEFAULT_WORKERS", "MAX_POOL", "LiveResult", "live_exercise", "pool_size", "scaled_timeouts"]

#: Closed-loop callers some callers default to (open-loop is the live default now).
DEFAULT_WORKERS = 8
#: The most threads an open-loop live run starts.
MAX_POOL = 256
#: How often (real seconds) the progress callback hears about a live run.
PROGRESS_INTERVAL = 0.25


@dataclass(frozen=True)
class LiveResult:
    """A finished live run: the client-side events and summary, and what the partner received."""

    summary: Summary
    frame: pd.DataFrame
    server: pd.DataFrame
    upstream_received: int
    transition_lines: tuple[str, ...]
    #: How well the bench kept up (lateness, timer lag, CPU).
    bench: BenchHealth | None = None
    #: The URL the client called (the local upstream's, or ``base_url``).
    url: str = ""
    #: Calls whose malformed answer the client's response validation caught (an invalid response).
    malformed_caught: int = 0
    #: Calls that handed a malformed answer to the caller (no validation, or one that let it through).
    malformed_accepted: int = 0
    #: Malformed answers the local upstream sent over the spec's OpenAPI document (0 without one).
    malformed_injected: int = 0


def scaled_timeouts(timeouts: Timeouts, time_scale: float) -> Timeouts:
    """Each phase's timeout in real seconds for an upstream played ``time_scale`` times faster."""
    return Timeouts(
        **{
            f.name: None if (v := getattr(timeouts, f.name)) is None else v / time_scale
            for f in dataclasses.fields(timeouts)
        }
    )


def live_exercise(
    spec: IntegrationSpec,
    scenario: Scenario,
    *,
    seed: int = 0,
    duration: float | None = None,
    time_scale: float = 10.0,
    base_url: str | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> LiveResult:
    """Run ``scenario`` live for ``duration`` scenario seconds (default: the spec's, else the scenario's).

    Raises :class:`~integration_kit.playbook.kinds.http.bench.UnreachableTarget` when the first attempts all fail
    before reaching the partner.
    """
    import pandas as pd

    length = duration if duration is not None else spec.exercise.duration or scenario.duration
    document = read_openapi(spec.openapi) if spec.openapi is not None else None
    check = _response_check(spec, document)  # before serving: a bad exercise.path fails at once
    target = _target(spec, scenario, seed=seed, time_scale=time_scale, base_url=base_url, document=document)
    with target as (config, clock, stats, stand_in):
        recorder = Recorder()
        contact = FirstContact(config.base_url)
        lines: list[str] = []
        scale = time_scale if base_url is None else 1.0
        with (
            ResilientClient(config, clock=clock, hooks=[recorder, contact], rng=random.Random(seed)) as raw,
            BenchMonitor(clock, scale) as monitor,
        ):
            client = _Checked(raw, check)
            if raw.engine.breaker is not None:
                raw.engine.breaker.add_listener(
                    lambda t: lines.append(f"t={t.time - began:8.2f}s  {t.old.value} -> {t.new.value}  ({t.reason})")
                )
            began = clock.now()
            _drive(client, spec, _Load(clock, began, length, scenario.name, progress, seed, monitor, contact))
        if contact.unreachable.is_set():
            raise contact.error()
        frame = recorder.to_frame()
        if not frame.empty:
            frame["time"] = frame["time"] - began
        view = stats(frame)
    server = pd.DataFrame({"second": list(range(len(view.per_second))), "received": view.per_second})
    return LiveResult(
        recorder.summary(),
        frame,
        server,
        view.received,
        tuple(lines),
        monitor.health(view.loop_lag),
        config.base_url,
        client.caught,
        client.accepted,
        stand_in.injected if stand_in is not None else 0,
    )


class _Checked:
    """The live client as the load loops see it: each answer checked against the document (when ``check`` is
    given) and the malformed ones counted, caught or accepted (the upstream marks them with ``x-malformed``)."""

    def __init__(self, client: ResilientClient, check: ResponseCheck | None) -> None:
        self.client = client
        self.check = check
        self.caught = 0
        self.accepted = 0
        self._lock = threading.Lock()

    def request(self, method: str, path: str) -> httpx.Response:
        """The client's answer; raises its errors, and :class:`InvalidResponse` for a malformed answer caught."""
        response = self.client.request(method, path)
        if self.check is not None:
            try:
                self.check(response)
            except InvalidResponse:
                with self._lock:
                    self.caught += 1
                raise
        if response.headers.get(MALFORMED_HEADER):
            with self._lock:
                self.accepted += 1
        return response


def _response_check(spec: IntegrationSpec, document: ApiDocument | None) -> ResponseCheck | None:
    """The check of the exercised operation's answers when the spec validates them against its ``document``
    (``None``: it does not).

    Raises :class:`ConfigurationError` (field ``exercise.path``) when the document has no such operation."""
    if document is None or spec.openapi is None or not spec.validate_responses:
        return None
    ex = spec.exercise
    operation = document.route(ex.method, ex.path) or document.route(ex.method, ex.path, prefix=_prefix(document))
    if operation is None:
        raise ConfigurationError(
            f"exercise: {ex.method} {ex.path} is not an operation of {spec.openapi.name}, so its answers cannot be"
            " validated",
            field="exercise.path",
        )
    client = spec.client
    return ResponseCheck(document, operation, name=client.name, redact_names=client.redact_query_params)


def _prefix(document: ApiDocument) -> str:
    """The path of the document's first server URL (``/v1``), or ``""``."""
    return httpx.URL(document.servers[0].url).path if document.servers else ""


def pool_size(spec: IntegrationSpec) -> int:
    """Threads serving an open-loop live run: enough for every call in flight when each takes the whole deadline
    (Little's law: ``rate * deadline``, else ``rate`` times the sum of the timeouts), at most :data:`MAX_POOL`."""
    ex = spec.exercise
    longest = spec.client.deadline
    if longest is None:
        t = spec.client.timeouts
        longest = sum(v for v in (t.connect, t.read, t.write, t.pool) if v is not None) or 10.0
    return max(1, min(MAX_POOL, math.ceil(ex.rate * longest)))


@dataclass(frozen=True)
class _Load:
    """What the load loops share: the clock, the run's start and length (scenario seconds), the scenario's name
    for progress, the seed of the arrivals, and the bench's monitor and first-contact hook."""

    clock: Clock
    began: float
    length: float
    name: str
    progress: Callable[[str, float], None] | None
    seed: int
    monitor: BenchMonitor
    contact: FirstContact

    def report(self, fraction: float) -> None:
        if self.progress is not None:
            self.progress(self.name, min(1.0, fraction))


def _drive(client: Any, spec: IntegrationSpec, load: _Load) -> None:
    if not spec.exercise.workers:
        _drive_open_loop(client, spec, load)
    else:
        _drive_closed_loop(client, spec, load)


def _drive_open_loop(client: Any, spec: IntegrationSpec, load: _Load) -> None:
    """Poisson arrivals at the spec's rate for the run's length, each call run by a bounded pool; stops offering
    when the target is unreachable or the bench is hopelessly behind (arrivals left are counted as scheduled)."""
    ex = spec.exercise
    clock, monitor = load.clock, load.monitor
    rng = random.Random(f"arrivals-{load.seed}")
    end = load.began + load.length

    def call(arrival: float) -> None:
        monitor.started(arrival)
        with contextlib.suppress(IntegrationError):
            client.request(ex.method, ex.path)

    reported = load.began
    with ThreadPoolExecutor(max_workers=pool_size(spec), thread_name_prefix="live") as pool:
        arrival = load.began + rng.expovariate(ex.rate)
        while arrival < end:
            if load.contact.unreachable.is_set() or monitor.hopeless:
                pool.shutdown(wait=False, cancel_futures=True)
                break
            clock.sleep(arrival - clock.now())
            pool.submit(call, arrival)
            monitor.scheduled()
            arrival += rng.expovariate(ex.rate)
            if clock.now() - reported >= 1.0:
                reported = clock.now()
                load.report((reported - load.began) / load.length)
        while arrival < end:  # arrivals never offered still count as scheduled (bounded: the run's length)
            monitor.scheduled()
            arrival += rng.expovariate(ex.rate)
    load.report(1.0)


def _drive_closed_loop(client: Any, spec: IntegrationSpec, load: _Load) -> None:
    ex = spec.exercise
    clock, began = load.clock, load.began
    workers = ex.workers or DEFAULT_WORKERS
    spacing = workers / ex.rate if ex.rate > 0 else 0.0
    end = began + load.length

    def worker(index: int) -> None:
        next_start = began + spacing * index / workers
        while not load.contact.unreachable.is_set():
            clock.sleep(next_start - clock.now())
            if clock.now() >= end:
                return
            with contextlib.suppress(IntegrationError):
                client.request(ex.method, ex.path)
            next_start = max(next_start + spacing, clock.now()) if spacing else clock.now()

    threads = [threading.Thread(target=worker, args=(i,), name=f"live-{i}", daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        for thread in threads:
            thread.join(PROGRESS_INTERVAL / len(threads))
        load.report((clock.now() - began) / load.length)
    load.report(1.0)


class PartnerView(NamedTuple):
    """What the partner saw: requests ``received`` in all and per scenario second, and its loop lag (p99, max; real
    seconds; ``None`` when it does not say: a real service)."""

    received: int
    per_second: list[int]
    loop_lag: tuple[float, float] | None = None


StatsReader = Callable[["pd.DataFrame"], PartnerView]


@contextlib.contextmanager
def _target(
    spec: IntegrationSpec,
    scenario: Scenario,
    *,
    seed: int,
    time_scale: float,
    base_url: str | None,
    document: ApiDocument | None = None,
) -> Iterator[tuple[ClientConfig, Clock, StatsReader, DocumentedAnswers | None]]:
    """The client config, clock, a reader of the partner's view, and the stand-in serving the partner's OpenAPI
    ``document`` (``None``: none), for a local upstream or a real service."""
    if base_url is not None:
        yield dataclasses.replace(spec.client, base_url=base_url), SystemClock(), _client_side_view, None
        return
    upstream = FlakyUpstream(scenario, seed=seed, time_scale=time_scale)
    stand_in = None
    if document is not None:  # the partner's documented answers, and the scenario's malformed ones broken
        stand_in = DocumentedAnswers(upstream.app, document)
    with serve_app(upstream.app if stand_in is None else stand_in, name="upstream") as url:
        upstream.restart()  # the scenario's clock starts when the URL is handed out, as serve_scenario does
        config = dataclasses.replace(
            spec.client, base_url=url, auth=None, timeouts=scaled_timeouts(spec.client.timeouts, time_scale)
        )

        def upstream_view(frame: pd.DataFrame) -> PartnerView:
            stats = httpx.get(f"{url}/stats", timeout=5.0).json()
            counts = {int(s): int(n) for s, n in stats["per_second"].items()}
            last = max(counts, default=-1)
            lag = stats["loop_lag"]
            measured = (float(lag["p99"]), float(lag["max"])) if lag["samples"] else None
            return PartnerView(int(stats["received"]), [counts.get(s, 0) for s in range(last + 1)], measured)

        yield config, ScaledClock(time_scale), upstream_view, stand_in


def _client_side_view(frame: pd.DataFrame) -> PartnerView:
    """A real service's view is not ours to read: count the attempts the client sent, per second."""
    if frame.empty:
        return PartnerView(0, [])
    started = frame[frame["event"] == "attempt_started"]
    seconds = started["time"].astype(int).value_counts().sort_index()
    last = int(seconds.index.max()) if len(seconds) else -1
    return PartnerView(len(started), [int(seconds.get(s, 0)) for s in range(last + 1)])
