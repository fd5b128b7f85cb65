"""Client-side pacing: the QuotaPacer's rules on a ManualClock, then the client against the live upstream playing
GitHub's primary limit over real sockets (real time, windows of a second or two), then the proof: several
processes sharing one quota through one private Redis stay within it in every window."""

from __future__ import annotations

import multiprocessing
import os
import time
import uuid
from typing import Any

import httpx
import pytest
from redis_server import redis_url
from scripted_upstream import Reply, Upstream

from integration_kit import ClientConfig, ManualClock, Recorder, ResilientClient
from integration_kit.errors import ConfigurationError, IntegrationError, RateLimited
from integration_kit.events import PacingWait, QuotaSeen, RejectedCall
from integration_kit.policies.config import RetryPolicy
from integration_kit.policies.limits import QuotaPacer
from integration_kit.policies.signals import Quota
from integration_kit.sim.scenarios import Scenario
from integration_kit.sim.upstream import serve_scenario
from integration_kit.stores import MemoryStore

__all__ = ["redis_url"]


def github(quota: int, window: float) -> Scenario:
    provider = {"style": "github", "quota": quota, "window": window}
    return Scenario.from_mapping({"name": "github", "phases": [{"duration": 3600, "latency": 0}], "provider": provider})


# -- the pacer alone ------------------------------------------------------------------------------------------------


def test_pacer_spends_down_to_the_reserve_then_waits_for_the_reset() -> None:
    clock = ManualClock()
    pacer = QuotaPacer(reserve=1, clock=clock)
    assert pacer.try_acquire() == 0.0  # unknown quota: go, the answer will tell
    pacer.observe(Quota("x-ratelimit", 10, 3, 10.0, resets_at=1_000.0))
    assert pacer.try_acquire() == 0.0
    assert pacer.try_acquire() == 0.0
    assert pacer.try_acquire() == pytest.approx(10.0)  # one left: the reserve
    clock.advance(4.0)
    assert pacer.try_acquire() == pytest.approx(6.0)
    pacer.observe(Quota("x-ratelimit", 10, 5, 6.0, resets_at=1_000.0))  # same window: an answer cannot raise it
    assert pacer.try_acquire() == pytest.approx(6.0)
    clock.advance(6.0)
    assert pacer.try_acquire() == 0.0  # the reset passed: a new window
    stats = pacer.stats()
    assert (stats.acquired, stats.paced) == (4, 3)


def test_pacer_without_a_reset_never_holds_calls() -> None:
    pacer = QuotaPacer(clock=ManualClock())
    pacer.observe(Quota("shopify", 40, 0, None))
    assert pacer.try_acquire() == 0.0


def test_pacers_sharing_a_store_share_the_window() -> None:
    clock = ManualClock()
    store = MemoryStore(clock=clock)
    pacers = [QuotaPacer(reserve=0, clock=clock, store=store, name="p") for _ in range(3)]
    quota = Quota("x-ratelimit", 5, 5, 30.0, resets_at=2_000.0)
    for pacer in pacers:
        pacer.observe(quota)
    gone = sum(pacer.try_acquire() == 0.0 for _ in range(5) for pacer in pacers)
    assert gone == 5  # each believes 5 are left; together they send 5


def test_quota_reserve_and_store_env_validation() -> None:
    base = {"name": "p", "base_url": "http://127.0.0.1:9"}
    with pytest.raises(ConfigurationError) as negative:
        ClientConfig(**base, quota_reserve=-1)
    assert negative.value.field == "quota_reserve"
    with pytest.raises(ConfigurationError) as bad_env:
        ClientConfig(**base, quota_reserve=1, quota_store_env="not a name")
    assert bad_env.value.field == "quota_store_env"
    unset = ClientConfig(**base, quota_reserve=1, quota_store_env="IK_TEST_SURELY_UNSET")
    with pytest.raises(ConfigurationError) as missing:
        unset.quota_pacer(ManualClock(), environ={})
    assert missing.value.field == "quota_store_env"
    assert ClientConfig(**base).quota_pacer(ManualClock()) is None


# -- the client against the live upstream ---------------------------------------------------------------------------


def _config(url: str, **overrides: Any) -> ClientConfig:
    values: dict[str, Any] = {
        "name": "partner",
        "base_url": url,
        "profile": "github",
        "retry": RetryPolicy.disabled(),
        "breaker": None,
        "budget": None,
        "deadline": 5.0,
    }
    return ClientConfig(**{**values, **overrides})


@pytest.mark.timeout(60)
def test_paced_client_is_never_refused_where_the_unpaced_one_is() -> None:
    with serve_scenario(github(quota=4, window=1.0)) as url:
        recorder = Recorder()
        with ResilientClient(_config(url, quota_reserve=0), hooks=[recorder]) as paced:
            statuses = [paced.get("/repos").status_code for _ in range(10)]
        stats = httpx.get(url + "/stats").json()
    assert statuses == [200] * 10
    assert stats["provider"]["refused"] == 0
    assert all(n <= 4 for n in stats["provider"]["received_per_window"].values())
    waits = recorder.of(PacingWait)
    assert waits
    assert all(w.waited for w in waits)  # type: ignore[attr-defined]
    seen = recorder.of(QuotaSeen)
    assert len(seen) == 10
    assert {s.limit for s in seen} == {4}  # type: ignore[attr-defined]

    with serve_scenario(github(quota=4, window=30.0)) as url:  # one window for all ten calls, however slow the machine
        refused = 0
        with ResilientClient(_config(url)) as unpaced:
            for _ in range(10):
                try:
                    unpaced.get("/repos")
                except RateLimited:
                    refused += 1
        stats = httpx.get(url + "/stats").json()
    assert refused == 6
    assert stats["provider"]["refused"] == refused


@pytest.mark.timeout(30)
def test_a_reset_past_the_deadline_fails_fast_without_sending() -> None:
    with serve_scenario(github(quota=2, window=60.0)) as url:
        recorder = Recorder()
        with ResilientClient(_config(url, quota_reserve=0, deadline=2.0), hooks=[recorder]) as client:
            client.get("/repos")
            client.get("/repos")
            began = time.monotonic()
            with pytest.raises(RateLimited) as paced:
                client.get("/repos")
            took = time.monotonic() - began
        stats = httpx.get(url + "/stats").json()
    assert took < 1.0
    assert paced.value.retry_after is not None
    assert paced.value.retry_after > 2.0
    assert stats["received"] == 2  # the third call was never sent
    assert [w.waited for w in recorder.of(PacingWait)] == [False]  # type: ignore[attr-defined]
    assert [r.reason for r in recorder.of(RejectedCall)] == ["quota_paced"]  # type: ignore[attr-defined]


# -- the proof: several processes, one quota, one Redis ---------------------------------------------------------

PROCESSES = 3
QUOTA = 12
WINDOW = 2.0
RUN = 5.0


def _worker(url: str, redis: str, name: str, barrier: Any, results: Any) -> None:
    """Call the upstream as fast as the shared pacer allows for RUN seconds; report the answers (always)."""
    os.environ["IK_PACING_PROOF_REDIS"] = redis
    config = _config(url, name=name, quota_reserve=PROCESSES, quota_store_env="IK_PACING_PROOF_REDIS", deadline=3.0)
    answers: dict[str, int] = {"ok": 0, "paced": 0, "refused": 0}
    try:
        with ResilientClient(config) as client:
            barrier.wait(timeout=30)
            end = time.monotonic() + RUN
            while time.monotonic() < end:
                try:
                    client.get("/repos")
                    answers["ok"] += 1
                except RateLimited as exc:
                    answers["refused" if exc.headers else "paced"] += 1  # a partner's refusal carries its headers
                except IntegrationError as exc:  # a pacing wait that took the deadline, a loaded machine's timeout
                    answers[type(exc).__name__] = answers.get(type(exc).__name__, 0) + 1
    finally:
        results.put(answers)


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.timeout(120)
def test_processes_sharing_one_quota_stay_within_it_in_every_window(redis_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    name = f"pacing-{uuid.uuid4().hex[:8]}"
    with serve_scenario(github(quota=QUOTA, window=WINDOW)) as url:
        processes = [
            context.Process(target=_worker, args=(url, redis_url, name, barrier, results)) for _ in range(PROCESSES)
        ]
        for p in processes:
            p.start()
        answers = [results.get(timeout=60) for _ in processes]
        for p in processes:
            p.join(timeout=10)
            assert p.exitcode == 0
        stats = httpx.get(url + "/stats").json()["provider"]
    received = stats["received_per_window"]
    assert max(received.values()) <= QUOTA, received
    assert stats["refused"] == 0
    assert sum(a["refused"] for a in answers) == 0
    assert sum(a["ok"] for a in answers) >= QUOTA  # pacing holds calls back, it does not starve them


def test_a_2xx_answers_quota_is_read_with_the_profiles_reset_form(upstream: Upstream) -> None:
    # GitHub's x-ratelimit-reset is epoch seconds: "30" is long past, so the window has reset (0 s), where the
    # default reading would take it for 30 s from now.
    quota = {"x-ratelimit-limit": "60", "x-ratelimit-remaining": "59", "x-ratelimit-reset": "30"}
    upstream.script(Reply(200, headers=quota))
    recorder = Recorder()
    with ResilientClient(_config(upstream.base_url, quota_reserve=1), hooks=[recorder]) as client:
        assert client.get("/repos").status_code == 200
    (seen,) = recorder.of(QuotaSeen)
    assert (seen.limit, seen.remaining, seen.reset) == (60, 59, 0.0)  # type: ignore[attr-defined]
