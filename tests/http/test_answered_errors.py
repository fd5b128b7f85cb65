"""What ``Exchange._answered`` makes of an answer, through the clients over real sockets (the scripted upstream on
127.0.0.1, the sync client and the async client on asyncio and trio): a rate-limited refusal is raised with its
status, message, wait, headers and body snippet, the credential masked in each; the quota a refusal reports
reaches the pacer, as does an epoch reset on a success measured without a ``Date`` header.

Each test kills survivors of the issue 29 sweep of ``_answered`` (``RateLimited`` built without its message,
headers or snippet; the pacer fed nothing from a refusal; an epoch reset measured from no time at all).
"""

from __future__ import annotations

import time

import pytest
from builders import client_config
from scripted_upstream import Connect, Reply, Upstream

from integration_kit import BearerAuth, ManualClock
from integration_kit.errors import RateLimited
from integration_kit.policies.config import RetryPolicy

TOKEN = "tok-Answered-5ecret-0123"
ENV = "IK_TEST_ANSWERED_TOKEN"


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, TOKEN)


def _client(connect: Connect, upstream: Upstream, **overrides: object) -> object:
    values: dict[str, object] = {
        "retry": RetryPolicy.disabled(),
        "deadline": 2.0,
        "auth": BearerAuth(env=ENV),
        **overrides,
    }
    return connect(client_config(upstream.base_url, **values), clock=ManualClock(1_000.0))


def test_a_rate_limited_refusal_carries_its_wait_headers_and_snippet_masked(
    connect: Connect, upstream: Upstream
) -> None:
    client = _client(connect, upstream)
    headers = {"Retry-After": "9", "X-Echo": f"seen {TOKEN}", "Set-Cookie": "session=abc"}
    upstream.script(Reply(429, headers=headers, body=f"slow down, {TOKEN}".encode(), content_type="text/plain"))
    with pytest.raises(RateLimited) as caught:
        client.get("/limited")  # type: ignore[attr-defined]
    error = caught.value
    assert (error.message, error.status, error.retry_after) == ("HTTP 429", 429, 9.0)
    shown = {name.lower(): value for name, value in error.headers.items()}
    assert shown["retry-after"] == "9"
    assert shown["x-echo"] == "seen ***"
    assert shown["set-cookie"] == "***"
    assert error.body_snippet == "slow down, ***"
    assert str(error).startswith("[partner] HTTP 429")
    assert TOKEN not in f"{error} {error!r} {error.headers} {error.body_snippet}"


def test_the_quota_a_refusal_reports_paces_the_next_call(connect: Connect, upstream: Upstream) -> None:
    client = _client(connect, upstream, quota_reserve=0)
    quota = {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "60"}
    upstream.script(Reply(503, headers=quota))
    with pytest.raises(RateLimited) as refused:
        client.get("/first")  # type: ignore[attr-defined]
    assert refused.value.status == 503
    with pytest.raises(RateLimited) as paced:  # the reset is past the deadline: not sent at all
        client.get("/second")  # type: ignore[attr-defined]
    assert paced.value.retry_after is not None
    assert paced.value.retry_after > 2.0
    assert upstream.count == 1


def test_an_epoch_reset_on_a_success_without_a_date_is_measured_from_now(connect: Connect, upstream: Upstream) -> None:
    client = _client(connect, upstream, quota_reserve=0)
    reset = int(time.time()) + 600  # an epoch: measured from the time of the answer, as no Date header came
    quota = {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}
    upstream.script(Reply(200, headers=quota))
    assert client.get("/first").status_code == 200  # type: ignore[attr-defined]
    with pytest.raises(RateLimited) as paced:
        client.get("/second")  # type: ignore[attr-defined]
    assert paced.value.retry_after is not None
    assert 500.0 < paced.value.retry_after <= 600.0
    assert upstream.count == 1
