"""Partners' own signals read by the clients over real sockets (the scripted upstream on 127.0.0.1), each scenario
run by the sync client and the async client on asyncio and trio. Waits run on a ManualClock: the retry's delay is
what the partner's headers said, and nothing sleeps."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from builders import client_config
from scripted_upstream import Connect, Reply, Upstream

from integration_kit import BearerAuth, ManualClock, Recorder
from integration_kit.errors import AuthError, ConfigurationError, RateLimited, ServerError
from integration_kit.events import RetryScheduled
from integration_kit.policies.config import RetryPolicy

PATIENT = RetryPolicy(max_attempts=3, base_delay=0.05, jitter="none", max_retry_after=3600.0)


def _delays(recorder: Recorder) -> list[tuple[float, str]]:
    return [(r.delay, r.reason) for r in recorder.of(RetryScheduled)]  # type: ignore[attr-defined]


def _client(connect: Connect, upstream: Upstream, **overrides: object) -> tuple[object, ManualClock, Recorder]:
    clock, recorder = ManualClock(), Recorder()
    values: dict[str, object] = {"retry": PATIENT, "deadline": None, **overrides}
    client = connect(client_config(upstream.base_url, **values), clock=clock, hooks=[recorder])
    return client, clock, recorder


def test_ietf_ratelimit_on_a_429_waits_for_the_policy_reset(connect: Connect, upstream: Upstream) -> None:
    client, clock, recorder = _client(connect, upstream)
    headers = {"RateLimit-Policy": '"default";q=100;w=10', "RateLimit": '"default";r=0;t=2'}
    upstream.script(Reply(429, headers=headers), Reply(200))
    assert client.get("/x").status_code == 200  # type: ignore[attr-defined]
    assert _delays(recorder) == [(2.0, "retry_after")]  # not the 0.05 s backoff
    assert clock.now() == pytest.approx(2.0)


def test_ietf_ratelimit_picks_the_exhausted_policy_among_several(connect: Connect, upstream: Upstream) -> None:
    client, _, recorder = _client(connect, upstream)
    headers = {
        "RateLimit-Policy": '"burst";q=10;w=1, "daily";q=1000;w=86400',
        "RateLimit": '"burst";r=4;t=1, "daily";r=0;t=30',
    }
    upstream.script(Reply(429, headers=headers), Reply(200))
    client.get("/x")  # type: ignore[attr-defined]
    assert _delays(recorder) == [(30.0, "retry_after")]


def test_older_ratelimit_reset_form(connect: Connect, upstream: Upstream) -> None:
    client, _, recorder = _client(connect, upstream)
    headers = {"RateLimit-Limit": "100", "RateLimit-Remaining": "0", "RateLimit-Reset": "5"}
    upstream.script(Reply(429, headers=headers), Reply(200))
    client.get("/x")  # type: ignore[attr-defined]
    assert _delays(recorder) == [(5.0, "retry_after")]


def test_x_ratelimit_reset_alone_on_a_429(connect: Connect, upstream: Upstream) -> None:
    client, _, recorder = _client(connect, upstream)
    upstream.script(Reply(429, headers={"X-RateLimit-Reset": "7"}), Reply(200))
    client.get("/x")  # type: ignore[attr-defined]
    assert _delays(recorder) == [(7.0, "retry_after")]


def test_github_primary_limit_403_waits_until_the_epoch_reset(connect: Connect, upstream: Upstream) -> None:
    """A 403 with x-ratelimit-remaining 0 is a rate limit (not AuthError): wait until x-ratelimit-reset, an epoch
    measured from the response's Date."""
    client, _, recorder = _client(connect, upstream, profile="github")
    sent = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    headers = {
        "Date": format_datetime(sent, usegmt=True),
        "x-ratelimit-limit": "5000",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": str(int(sent.timestamp()) + 42),
    }
    upstream.script(Reply(403, headers=headers), Reply(200))
    assert client.get("/repos").status_code == 200  # type: ignore[attr-defined]
    assert _delays(recorder) == [(42.0, "retry_after")]


def test_github_secondary_limit_403_with_retry_after(connect: Connect, upstream: Upstream) -> None:
    client, _, recorder = _client(connect, upstream)  # no profile: a 403 with retry-after is a rate limit anyway
    upstream.script(Reply(403, headers={"retry-after": "30"}), Reply(200))
    assert client.get("/repos").status_code == 200  # type: ignore[attr-defined]
    assert _delays(recorder) == [(30.0, "retry_after")]


def test_github_secondary_limit_without_headers_waits_a_minute(connect: Connect, upstream: Upstream) -> None:
    client, _, recorder = _client(connect, upstream, profile="github")
    body = b'{"message": "You have exceeded a secondary rate limit."}'
    upstream.script(Reply(403, body=body), Reply(429), Reply(200))
    assert client.get("/repos").status_code == 200  # type: ignore[attr-defined]
    assert _delays(recorder) == [(60.0, "retry_after"), (60.0, "retry_after")]


def test_a_rate_limited_403_that_is_not_retried_raises_rate_limited(connect: Connect, upstream: Upstream) -> None:
    client, _, _ = _client(connect, upstream, retry=RetryPolicy(max_attempts=1))
    upstream.script(Reply(403, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": "9"}))
    with pytest.raises(RateLimited) as limited:
        client.get("/repos")  # type: ignore[attr-defined]
    assert (limited.value.status, limited.value.retry_after) == (403, 9.0)


def test_a_plain_403_stays_an_auth_error(connect: Connect, upstream: Upstream) -> None:
    client, _, recorder = _client(connect, upstream, profile="github")
    upstream.script(Reply(403, headers={"x-ratelimit-remaining": "4999"}, body=b'{"message": "Forbidden"}'))
    with pytest.raises(AuthError):
        client.get("/repos")  # type: ignore[attr-defined]
    assert upstream.count == 1
    assert _delays(recorder) == []


def test_stripe_should_retry_false_stops_a_retryable_answer(connect: Connect, upstream: Upstream) -> None:
    client, _, recorder = _client(connect, upstream, profile="stripe")
    upstream.script(Reply(500, headers={"Stripe-Should-Retry": "false"}), Reply(200))
    with pytest.raises(ServerError):
        client.post("/v1/charges")  # type: ignore[attr-defined]
    assert upstream.count == 1
    assert _delays(recorder) == []


def test_stripe_should_retry_true_retries_a_refused_answer_with_its_key(connect: Connect, upstream: Upstream) -> None:
    """The stripe profile sends an Idempotency-Key on POST, so a refusal Stripe calls retryable is sent again with
    the same key."""
    client, _, recorder = _client(connect, upstream, profile="stripe")
    upstream.script(Reply(400, headers={"Stripe-Should-Retry": "true"}), Reply(200))
    assert client.post("/v1/charges").status_code == 200  # type: ignore[attr-defined]
    first, second = upstream.requests
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    assert [reason for _, reason in _delays(recorder)] == ["backoff"]


def test_stripe_lock_timeout_429_with_retry_after(connect: Connect, upstream: Upstream) -> None:
    client, _, recorder = _client(connect, upstream, profile="stripe")
    upstream.script(Reply(429, headers={"Stripe-Should-Retry": "true", "Retry-After": "1"}), Reply(200))
    assert client.post("/v1/charges").status_code == 200  # type: ignore[attr-defined]
    assert _delays(recorder) == [(1.0, "retry_after")]


def test_retry_after_ms_is_preferred(connect: Connect, upstream: Upstream) -> None:
    client, _, recorder = _client(connect, upstream, profile="openai")
    upstream.script(Reply(429, headers={"retry-after-ms": "1500", "retry-after": "9"}), Reply(200))
    client.get("/v1/models")  # type: ignore[attr-defined]
    assert _delays(recorder) == [(1.5, "retry_after")]


def test_x_should_retry_false_stops(connect: Connect, upstream: Upstream) -> None:
    client, _, _ = _client(connect, upstream, profile="openai")
    upstream.script(Reply(503, headers={"x-should-retry": "false"}), Reply(200))
    with pytest.raises(ServerError):
        client.get("/v1/models")  # type: ignore[attr-defined]
    assert upstream.count == 1


def test_openai_request_quota_reset_as_a_duration(connect: Connect, upstream: Upstream) -> None:
    client, _, recorder = _client(connect, upstream, profile="openai")
    headers = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1m2s"}
    upstream.script(Reply(429, headers=headers), Reply(200))
    client.get("/v1/models")  # type: ignore[attr-defined]
    assert _delays(recorder) == [(62.0, "retry_after")]


def test_shopify_decimal_retry_after(connect: Connect, upstream: Upstream) -> None:
    client, _, recorder = _client(connect, upstream, profile="shopify")
    headers = {"X-Shopify-Shop-Api-Call-Limit": "40/40", "Retry-After": "2.0"}
    upstream.script(Reply(429, headers=headers), Reply(200))
    client.get("/admin/api/orders.json")  # type: ignore[attr-defined]
    assert _delays(recorder) == [(2.0, "retry_after")]


def test_slack_429_retry_after(connect: Connect, upstream: Upstream) -> None:
    client, _, recorder = _client(connect, upstream, profile="slack")
    upstream.script(Reply(429, headers={"Retry-After": "3"}), Reply(200))
    client.post("/api/chat.postMessage")  # type: ignore[attr-defined]
    assert _delays(recorder) == [(3.0, "retry_after")]


@pytest.mark.parametrize(
    "headers",
    [
        {"RateLimit": '"default";r=0;t=', "RateLimit-Policy": "((("},
        {"X-RateLimit-Reset": "soon", "X-RateLimit-Remaining": "-1"},
        {"retry-after-ms": "NaN", "Stripe-Should-Retry": "maybe"},
        {"X-Shopify-Shop-Api-Call-Limit": "40/0"},
    ],
)
def test_malformed_signals_fall_back_to_backoff(connect: Connect, upstream: Upstream, headers: dict[str, str]) -> None:
    client, _, recorder = _client(connect, upstream)
    upstream.script(Reply(429, headers=headers), Reply(200))
    assert client.get("/x").status_code == 200  # type: ignore[attr-defined]
    assert _delays(recorder) == [(0.05, "backoff")]


def test_unknown_profile_is_a_configuration_error_naming_the_valid_ones() -> None:
    with pytest.raises(ConfigurationError) as bad:
        client_config(profile="gitlab")
    assert bad.value.field == "profile"
    assert "'gitlab'" in str(bad.value)
    assert "github, openai, shopify, slack, stripe" in str(bad.value)


def test_profile_adds_retryable_statuses_and_idempotency_methods() -> None:
    stripe = client_config(profile="stripe")
    assert 409 in stripe.retry.retry_on_status
    assert "POST" in stripe.idempotency_methods
    assert client_config().idempotency_methods == frozenset()
    assert client_config(profile="github").signals.reset_form == "epoch"


def test_epoch_reset_against_the_real_clock(connect: Connect, upstream: Upstream) -> None:
    """An epoch reset is measured from the partner's Date (to the second), or the wall clock without one."""
    client, _, recorder = _client(connect, upstream, profile="github")
    reset = int(time.time()) + 100
    upstream.script(Reply(429, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}), Reply(200))
    client.get("/x")  # type: ignore[attr-defined]
    ((delay, _),) = _delays(recorder)
    assert 95.0 <= delay <= 101.0


def test_a_rate_limited_403_never_shows_the_credential(
    connect: Connect, upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The RateLimited raised for a 403 carries headers and a snippet masked as every other status error's, and
    the events of pacing hold no secret."""
    canary = "ghp_signalsCanary0123456789abcdef"
    monkeypatch.setenv("PARTNER_TOKEN", canary)
    recorder = Recorder()
    config = client_config(
        upstream.base_url,
        auth=BearerAuth(env="PARTNER_TOKEN"),
        retry=RetryPolicy(max_attempts=1),
        profile="github",
        quota_reserve=0,
    )
    client = connect(config, clock=ManualClock(), hooks=[recorder])
    reset = str(int(time.time()) + 30)
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset, "x-echo": f"Bearer {canary}"}
    upstream.script(Reply(403, headers=headers, body=f'{{"message": "rate limit", "token": "{canary}"}}'.encode()))
    with pytest.raises(RateLimited) as limited:
        client.get("/repos")  # type: ignore[attr-defined]
    error = limited.value
    shown = [str(error), repr(error), error.body_snippet, repr(error.headers), repr(recorder.events)]
    assert all(canary not in text for text in shown)
    assert error.retry_after is not None
    assert 25.0 <= error.retry_after <= 31.0
