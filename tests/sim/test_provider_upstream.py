"""Each provider style of the live upstream over real sockets, read by a client with the matching profile: the
headers the provider documents reach the client, which waits what they say (on a ManualClock, so nothing sleeps)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from integration_kit import ClientConfig, ManualClock, Recorder, ResilientClient
from integration_kit.errors import ConfigurationError, RateLimited, RetriesExhausted
from integration_kit.events import QuotaSeen, RetryScheduled
from integration_kit.policies.config import RetryPolicy
from integration_kit.sim.provider import ProviderLimits, ProviderState
from integration_kit.sim.scenarios import Scenario
from integration_kit.sim.upstream import serve_scenario

PATIENT = RetryPolicy(max_attempts=2, base_delay=0.05, jitter="none", max_retry_after=3600.0)


def provider_scenario(**provider: Any) -> Scenario:
    return Scenario.from_mapping(
        {"name": f"{provider['style']}-limits", "phases": [{"duration": 3600, "latency": 0}], "provider": provider}
    )


@pytest.fixture
def served(request: pytest.FixtureRequest) -> Iterator[str]:
    with serve_scenario(provider_scenario(**request.param)) as url:
        yield url


def client(url: str, profile: str | None, **overrides: Any) -> tuple[ResilientClient, Recorder]:
    recorder = Recorder()
    values: dict[str, Any] = {
        "name": "partner",
        "base_url": url,
        "retry": PATIENT,
        "deadline": None,
        "profile": profile,
    }
    config = ClientConfig(**{**values, **overrides})
    return ResilientClient(config, clock=ManualClock(), hooks=[recorder]), recorder


def delays(recorder: Recorder) -> list[float]:
    return [e.delay for e in recorder.of(RetryScheduled)]  # type: ignore[attr-defined]


@pytest.mark.parametrize("served", [{"style": "github", "quota": 3, "window": 3600}], indirect=True)
def test_github_primary_limit(served: str) -> None:
    http, recorder = client(served, "github", retry=RetryPolicy(max_attempts=1))
    with http:
        for _ in range(3):
            assert http.get("/repos").status_code == 200
        with pytest.raises(RateLimited) as limited:  # a 403, not an AuthError
            http.get("/repos")
    assert limited.value.status == 403
    assert limited.value.retry_after is not None
    assert 3590 <= limited.value.retry_after <= 3602  # until x-ratelimit-reset, an epoch read against Date
    seen = recorder.of(QuotaSeen)
    assert seen == []  # no pacer: the quota is read for the refusal only


@pytest.mark.parametrize(
    "served", [{"style": "github", "quota": 100, "window": 3600, "write_burst": 2, "write_window": 60}], indirect=True
)
def test_github_secondary_limit_on_write_bursts(served: str) -> None:
    http, recorder = client(served, "github", idempotency_methods=frozenset({"POST"}))
    with http:
        assert http.post("/issues").status_code == 200
        assert http.post("/issues").status_code == 200
        with pytest.raises(RetriesExhausted) as limited:  # the third write in a minute: 403 + retry-after 60, twice
            http.post("/issues")
    assert isinstance(limited.value.last_error, RateLimited)
    assert limited.value.last_error.status == 403
    assert delays(recorder) == [60.0]


@pytest.mark.parametrize("served", [{"style": "shopify", "quota": 2, "leak_rate": 0.001}], indirect=True)
def test_shopify_leaky_bucket(served: str) -> None:
    http, recorder = client(served, "shopify")
    with http:
        first = http.get("/admin/api/orders.json")
        assert first.headers["x-shopify-shop-api-call-limit"] == "1/2"
        http.get("/admin/api/orders.json")
        with pytest.raises(RetriesExhausted):
            http.get("/admin/api/orders.json")
    assert delays(recorder) == [2.0]  # Retry-After: 2.0, a decimal


@pytest.mark.parametrize("served", [{"style": "slack", "quota": 1, "window": 60}], indirect=True)
def test_slack_tier_429_with_retry_after(served: str) -> None:
    http, recorder = client(served, "slack")
    with http:
        http.post("/api/chat.postMessage")
        with pytest.raises(RetriesExhausted):
            http.get("/api/conversations.list")
    (delay,) = delays(recorder)
    assert 55 <= delay <= 60


@pytest.mark.parametrize(
    "served", [{"style": "stripe", "quota": 100, "window": 1, "lock_timeouts": 1.0}], indirect=True
)
def test_stripe_lock_timeout_is_retried_with_the_same_key(served: str) -> None:
    http, recorder = client(served, "stripe", retry=RetryPolicy(max_attempts=3, base_delay=0.05, jitter="none"))
    with http, pytest.raises(RetriesExhausted):
        http.post("/v1/charges")
    assert len(delays(recorder)) == 2  # Stripe-Should-Retry: true, and POST is keyed by the profile
    stats = httpx.get(served + "/stats").json()
    assert stats["idempotency_keys_seen"] == 1
    assert stats["provider"]["refused"] == 3


@pytest.mark.parametrize("served", [{"style": "ietf", "quota": 2, "window": 30}], indirect=True)
def test_ietf_ratelimit_headers(served: str) -> None:
    http, recorder = client(served, None)
    with http:
        answer = http.get("/x")
        assert answer.headers["ratelimit-policy"] == '"default";q=2;w=30'
        assert answer.headers["ratelimit"].startswith('"default";r=1;t=')
        http.get("/x")
        with pytest.raises(RetriesExhausted):
            http.get("/x")
    (delay,) = delays(recorder)
    assert 25 <= delay <= 30


def test_provider_table_errors_name_the_field() -> None:
    with pytest.raises(ConfigurationError) as bad:
        provider_scenario(style="gitlab", quota=1)
    assert bad.value.field == "provider.style"
    with pytest.raises(ConfigurationError) as missing:
        Scenario.from_mapping({"name": "x", "phases": [{"duration": 1}], "provider": {"style": "github"}})
    assert missing.value.field == "provider.quota"


def test_provider_state_counts_per_window() -> None:
    state = ProviderState(ProviderLimits("ietf", quota=2, window=10.0), wall=1_000.0)
    answers = [state.admit(t).status for t in (0.0, 1.0, 2.0, 10.5)]
    assert answers == [None, None, 429, None]
    assert state.stats()["received_per_window"] == {"0": 3, "1": 1}


@pytest.mark.parametrize("served", [{"style": "openai", "quota": 2, "window": 60}], indirect=True)
def test_openai_request_quota_and_retry_after_ms(served: str) -> None:
    http, recorder = client(served, "openai")
    with http:
        answer = http.post("/v1/chat/completions")
        assert answer.headers["x-ratelimit-remaining-requests"] == "1"
        assert answer.headers["x-ratelimit-reset-requests"].startswith("0m")
        http.post("/v1/chat/completions")
        with pytest.raises(RetriesExhausted):  # 429 with retry-after-ms and x-should-retry: true
            http.post("/v1/chat/completions")
    (delay,) = delays(recorder)
    assert 55 <= delay <= 60  # retry-after-ms, in milliseconds


@pytest.mark.parametrize("served", [{"style": "ietf", "quota": 3, "window": 30}], indirect=True)
def test_a_paced_client_learns_the_quota_and_fails_fast_past_its_deadline(served: str) -> None:
    """Over real sockets with a ManualClock client: after three calls the quota is spent, the reset (about 30 s) is
    past the 5 s deadline, and the fourth call fails at once, never sent."""
    http, recorder = client(served, None, quota_reserve=0, deadline=5.0)
    with http:
        for _ in range(3):
            http.get("/x")
        with pytest.raises(RateLimited):
            http.get("/x")
    stats = httpx.get(served + "/stats").json()
    assert stats["provider"]["received_per_window"] == {"0": 3}
    assert [s.remaining for s in recorder.of(QuotaSeen)] == [2, 1, 0]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("served", "family"),
    [
        ({"style": "ietf-legacy", "quota": 1, "window": 20}, "ratelimit"),
        ({"style": "x-ratelimit", "quota": 1, "window": 20}, "x-ratelimit"),
    ],
    indirect=["served"],
)
def test_older_ratelimit_and_x_ratelimit_delta_resets(served: str, family: str) -> None:
    http, recorder = client(served, None)
    with http:
        answer = http.get("/x")
        assert (answer.headers[f"{family}-limit"], answer.headers[f"{family}-remaining"]) == ("1", "0")
        with pytest.raises(RetriesExhausted):
            http.get("/x")
    (delay,) = delays(recorder)
    assert 15 <= delay <= 20  # seconds from now (a value below 10^9 is not an epoch)
