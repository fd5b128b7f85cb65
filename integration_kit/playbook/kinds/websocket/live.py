"""A live WebSocket exercise: real clients of the spec against :class:`~integration_kit.sim.ws_upstream.FlakyFeed`
on 127.0.0.1, ``time_scale`` times faster than real time (the clients run on a
:class:`~integration_kit.sim.upstream.ScaledClock`, so their waits and timeouts are in scenario seconds).

Per scenario: at most :data:`LIVE_CLIENTS` clients (the peak handshakes are scaled up to the scenario's clients,
reported as information and not judged: see :data:`INFORMATIONAL`; ``peak_handshakes_live`` is the unscaled
count) connect and read; the feed restarts (1012) and stays down ``downtime``; the run ends when
every client is back and has read :data:`AFTER` more messages, or at the horizon (capped at :data:`MAX_REAL`
real seconds). Then a stall probe: one client, one connection that falls silent while answering pings; the time
to notice it is ``stall_detect`` (the cap when nothing notices).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pandas as pd

from integration_kit.events import Recorder
from integration_kit.playbook.kinds.websocket.exercise import ScenarioRun, run_columns
from integration_kit.playbook.kinds.websocket.spec import WebSocketSpec, WsScenario
from integration_kit.playbook.verdict.bench import BenchMonitor
from integration_kit.sim.upstream import ScaledClock
from integration_kit.sim.ws_upstream import ConnectionFault, FeedScript, FlakyFeed
from integration_kit.websocket import ResilientWebSocket, WebSocketConfig, json_field
from integration_kit.websocket.events import WsConnected, WsStale

__all__ = ["AFTER", "INFORMATIONAL", "LIVE_CLIENTS", "MAX_REAL", "notice_stall", "play_live"]

#: At most this many live clients per scenario.
LIVE_CLIENTS = 20
#: Messages each client reads after it is back, before the scenario ends.
AFTER = 10
#: Figures a live run reports but does not judge. The busiest second of at most :data:`LIVE_CLIENTS` clients,
#: scaled up to the scenario's clients, is the maximum of small Poisson-like counts times the scale (50 for
#: 1,000 clients): its noise swamps the figure (market-prices, played in the simulator by
#: ``bench/websocket_live_peak.py``: 200 to 550 over 30 seeds, median 300, where 1,000 clients peak at 246 to 273;
#: two live runs saw 350 and 450, then 300 and 250), so the peak bound is judged in simulate mode, where every
#: client is played.
INFORMATIONAL = ("peak_handshakes",)
#: The longest a live scenario, or a stall probe, runs (real seconds).
MAX_REAL = 20.0
_SUBSCRIBE_DEFAULT = '{"op": "subscribe"}'


def play_live(spec: WebSocketSpec, scale: float, seed: int) -> tuple[tuple[ScenarioRun, ...], dict[str, Any]]:
    """Every scenario of ``spec`` live (see the module docstring), in a thread of its own: a notebook's kernel
    already runs an event loop in this one."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="websocket-live") as pool:
        runs = tuple(pool.submit(asyncio.run, _scenario(spec, s, scale, seed)).result() for s in spec.scenarios)
    live = {
        "upstream": "FlakyFeed on 127.0.0.1",
        "time_scale": scale,
        "max_clients": LIVE_CLIENTS,
        "informational": list(INFORMATIONAL),
    }
    return runs, live


async def _scenario(spec: WebSocketSpec, scenario: WsScenario, scale: float, seed: int) -> ScenarioRun:
    herd = scenario.herd
    clients = min(herd.clients, LIVE_CLIENTS)
    thinning = clients / herd.clients
    accept = None if herd.accept_rate is None else max(1.0, herd.accept_rate * thinning * scale)
    retry_after = None if herd.retry_after is None else max(1, math.ceil(herd.retry_after / scale))
    script = FeedScript(
        rate=herd.rate * scale, resume=spec.gap_strategy != "none", retry_after=retry_after, accept_rate=accept
    )
    clock = ScaledClock(scale)
    with FlakyFeed(script) as feed, BenchMonitor(clock, scale) as monitor:
        config = _config(spec, feed.url)
        recorders = [Recorder() for _ in range(clients)]
        streams: list[list[int]] = [[] for _ in range(clients)]
        warmed = asyncio.Semaphore(0)
        tasks = [
            asyncio.create_task(_client(config, clock, recorders[i], streams[i], warmed, seed + i))
            for i in range(clients)
        ]
        window = min(MAX_REAL, (herd.horizon - herd.restart_at) / scale)
        try:
            async with asyncio.timeout(MAX_REAL):
                for _ in range(clients):
                    await warmed.acquire()
            before = len(feed.stats().handshakes)
            feed.restart(down_for=herd.downtime / scale)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(window):
                    await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        stats = feed.stats()
    after = list(stats.handshakes[before:])
    start = after[0] if after else 0.0
    buckets = Counter(int((t - start) * scale) for t in after)
    per_second = [buckets.get(s, 0) for s in range(max(buckets, default=0) + 1)]
    down = [e.down_for for r in recorders for e in r.of(WsConnected) if isinstance(e, WsConnected)][1::2]
    horizon = herd.horizon - herd.restart_at
    away = sorted(down) + [horizon] * (clients - len(down))
    lost = sum(_missing(s) for s in streams)
    twice = sum(_repeated(s) for s in streams)
    figures = {
        "messages_lost": float(lost),
        "duplicates_delivered": float(twice),
        "disconnected_p99": away[min(len(away) - 1, max(0, math.ceil(0.99 * len(away)) - 1))],
        "stall_detect": await _stall_probe(spec, scale),
        "peak_handshakes": max(per_second, default=0) / thinning,
    }
    series = pd.DataFrame(
        {
            "t": list(range(len(per_second))),
            "handshakes": [n / thinning for n in per_second],
            "connected": [sum(1 for d in down if d <= t + 1) / thinning for t in range(len(per_second))],
        }
    )
    details = {
        **run_columns(len(after), len(down), clients, sum(stats.refused.values())),
        "clients": herd.clients,
        "live_clients": clients,
        "handshakes": len(after),
        "peak_handshakes_live": max(per_second, default=0),
        "refused": {str(k): v for k, v in stats.refused.items()},
        "gave_up": clients - len(down),
        "gaps": sum(1 for s in streams if _missing(s)),
        "resyncs": 0,
        "disconnected": sorted(down),
        # the machine while the herd played (no open-loop arrivals here: timer lag and CPU are the bench's health)
        "bench": monitor.health().as_dict(),
    }
    return ScenarioRun(scenario.name, figures, series, details)


def _config(spec: WebSocketSpec, url: str) -> WebSocketConfig:
    config = spec.client_config(url)
    subscribe = config.subscribe or (_SUBSCRIBE_DEFAULT,)
    resume = _resume if spec.gap_strategy != "none" else None
    return WebSocketConfig(
        url=url,
        name=config.name,
        ping_interval=config.ping_interval,
        ping_timeout=config.ping_timeout,
        stale_after=config.stale_after,
        reconnect=config.reconnect,
        subscribe=subscribe,
        sequence=config.sequence or "seq",
        resume=resume,
    )


def _resume(last: int) -> str:
    return f'{{"op": "resume", "after": {last}}}'


async def _client(
    config: WebSocketConfig,
    clock: ScaledClock,
    recorder: Recorder,
    seqs: list[int],
    warmed: asyncio.Semaphore,
    seed: int,
) -> None:
    read = json_field("seq")
    ws = ResilientWebSocket(config, clock=clock, hooks=[recorder], rng=random.Random(seed))
    async with ws:
        after = 0
        async for message in ws:
            seq = read(message)
            if seq is not None:
                seqs.append(seq)
            if len(seqs) == 3:
                warmed.release()
            if len(recorder.of(WsConnected)) >= 2:
                after += 1
                if after >= AFTER:
                    return


async def _stall_probe(spec: WebSocketSpec, scale: float) -> float:
    """How long one silent socket goes unnoticed, in scenario seconds (the cap when nothing notices)."""
    cap = MAX_REAL / 4
    noticed = await notice_stall(_config(spec, "ws://127.0.0.1:1/"), cap=cap, clock=ScaledClock(scale))
    return cap * scale if noticed is None else noticed


async def notice_stall(config: WebSocketConfig, *, cap: float, clock: ScaledClock | None = None) -> float | None:
    """Serve a feed whose first connection falls silent after 3 messages while still answering pings, read it with
    a client of ``config`` (its URL replaced), and return how long the silence lasted before the client noticed
    (``WsStale.silent_for``, on ``clock``), or ``None`` when nothing noticed within ``cap`` real seconds."""
    recorder = Recorder()
    with FlakyFeed(
        FeedScript(rate=20 * (clock.time_scale if clock else 1.0), connections=(ConnectionFault(after=3, stall=True),))
    ) as feed:
        probe = replace(config, url=feed.url, subscribe=config.subscribe or (_SUBSCRIBE_DEFAULT,))
        ws = ResilientWebSocket(probe, clock=clock, hooks=[recorder])
        async with ws:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(cap):
                    async for _ in ws:
                        if recorder.of(WsStale):
                            break
    stale = [e.silent_for for e in recorder.of(WsStale) if isinstance(e, WsStale)]
    return stale[0] if stale else None


def _missing(seqs: list[int]) -> int:
    """Numbers skipped between the first and the last delivered."""
    return (max(seqs) - min(seqs) + 1 - len(set(seqs))) if seqs else 0


def _repeated(seqs: list[int]) -> int:
    """Messages delivered again (a number not above the one before)."""
    return sum(1 for a, b in itertools.pairwise(seqs) if b <= a)
