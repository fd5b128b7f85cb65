"""What a client's construction (``_ClientCore.__init__``, ``_phases``) builds, pinned by the fifth mutation sweep
(issue 29): the engine gets every policy of the config (its name, retry, a breaker named and timed like the client,
the budget, limits, deadline, idempotent methods, clock, rng, hooks and the quota pacer); the credential is loaded
once and its forms are masked (error snippets, logs), its header stripped from errors; the phases' timeouts are the
config's; a bad header is a ``ConfigurationError`` naming ``headers``; a transport passed in is not framed.

The credential, snippet and timeout proofs run against the loopback upstream (uvicorn); the engine's wiring is read
off the client, since no call can show which object a policy is. Each test runs in milliseconds.
"""

from __future__ import annotations

import logging
import random
import uuid
from typing import Any

import httpx
import pytest
from builders import client_config
from scripted_upstream import Reply, Upstream

from integration_kit import AsyncResilientClient, ManualClock, Recorder, ResilientClient
from integration_kit.clock import SystemClock
from integration_kit.errors import ClientError, ConfigurationError, ReadTimeout
from integration_kit.http.auth import HeaderAuth
from integration_kit.http.client import _phases
from integration_kit.http.redact import _HTTP_LOG_REDACTOR
from integration_kit.http.transport import DeadlineTransport
from integration_kit.policies.config import BreakerPolicy, BudgetPolicy, Limits, RetryPolicy, Timeouts

TOKEN = "tok-0123456789-secret"


def test_a_config_that_is_not_a_client_config_is_refused() -> None:
    with pytest.raises(TypeError) as caught:
        ResilientClient({"name": "partner"})  # type: ignore[arg-type]
    assert str(caught.value) == "expected a ClientConfig, got dict"


def test_the_engine_gets_every_policy_of_the_config() -> None:
    retry = RetryPolicy(max_attempts=4)
    breaker = BreakerPolicy(failure_threshold=3)
    budget = BudgetPolicy(max_tokens=7)
    limits = Limits(max_concurrent=2)
    cfg = client_config(
        name="billing",
        retry=retry,
        breaker=breaker,
        budget=budget,
        limits=limits,
        deadline=12.5,
        idempotency_methods=frozenset({"POST"}),
        quota_reserve=5,
    )
    clock = ManualClock()
    rng = random.Random(3)
    hook = Recorder()
    with ResilientClient(cfg, clock=clock, rng=rng, hooks=[hook]) as client:
        engine = client.engine
        assert client.config is cfg
        assert client.clock is clock
        assert engine.name == "billing"
        assert engine.retry is retry
        assert engine.breaker is not None
        assert client.breaker is engine.breaker
        assert engine.breaker.policy is breaker
        assert engine.breaker.name == "billing"
        assert engine.breaker.clock is clock
        assert engine.budget is not None
        assert engine.budget.policy is budget
        assert engine.limits is limits
        assert engine.deadline == 12.5
        assert engine.idempotency_methods == frozenset({"POST"})
        assert engine.clock is clock
        assert engine.rng is rng
        assert engine.hooks == [hook]
        assert engine.pacer is not None
        assert client._context.signals.pacer is engine.pacer
        assert client._context.hooks is engine.hooks


def test_without_breaker_budget_or_clock_the_engine_has_none_and_the_system_clock() -> None:
    with ResilientClient(client_config(breaker=None, budget=None)) as client:
        assert client.engine.breaker is None
        assert client.engine.budget is None
        assert client.engine.pacer is None
        assert type(client.clock) is SystemClock
        assert client.engine.clock is client.clock


def test_the_timeouts_are_the_configs_phases() -> None:
    phases = Timeouts(connect=1.5, read=4.0, write=2.5, pool=0.5)
    assert _phases(phases) == {"connect": 1.5, "read": 4.0, "write": 2.5, "pool": 0.5}
    with ResilientClient(client_config(timeouts=phases)) as client:
        assert client._timeouts == {"connect": 1.5, "read": 4.0, "write": 2.5, "pool": 0.5}
        assert client._longest == 4.0
        assert client._origin == ("http", "127.0.0.1", 9)


def test_a_read_timeout_of_the_config_is_the_one_each_attempt_gets(upstream: Upstream) -> None:
    upstream.script(Reply(delay=2.0))
    cfg = client_config(
        upstream.base_url, timeouts=Timeouts(connect=2.0, read=0.2, write=2.0, pool=2.0), retry=RetryPolicy.disabled()
    )
    with ResilientClient(cfg) as client, pytest.raises(ReadTimeout):
        client.get("/slow")


def test_a_header_the_config_may_not_set_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError) as caught:
        ResilientClient(client_config(headers={"Host": "elsewhere"}))
    assert caught.value.message == "headers: the header Host frames or routes the message; httpx sets it: refused"
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_the_credential_is_sent_and_masked_in_snippets_and_headers(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARTNER_KEY", TOKEN)
    upstream.script(Reply(status=400, body=f"bad key {TOKEN}".encode(), headers={"X-Api-Key": TOKEN}))
    cfg = client_config(upstream.base_url, auth=HeaderAuth(header="X-Api-Key", env="PARTNER_KEY"))
    with ResilientClient(cfg) as client:
        assert client._secret_headers == ("X-Api-Key",)
        with pytest.raises(ClientError) as caught:
            client.get("/x")
    [seen] = upstream.requests
    assert seen.headers["x-api-key"] == TOKEN
    error = caught.value
    assert TOKEN not in (error.body_snippet or "")
    assert error.body_snippet is not None
    assert error.body_snippet.startswith("bad key ")
    assert TOKEN not in str(error.headers)
    assert "x-api-key" in {name.lower() for name in error.headers}


def test_without_a_credential_nothing_is_masked(upstream: Upstream) -> None:
    upstream.script(Reply(status=400, body=f"bad key {TOKEN}".encode()))
    with ResilientClient(client_config(upstream.base_url)) as client:
        assert (client._credential, client._secrets, client._secret_headers) == (None, (), ())
        with pytest.raises(ClientError) as caught:
            client.get("/x")
    assert caught.value.body_snippet == f"bad key {TOKEN}"


def test_the_credential_and_the_query_names_are_masked_in_httpx_logs(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Fresh names: the redactor is the process's and keeps what every earlier client gave it (under mutmut, the
    # clean run's clients too), so only names no earlier client used can show what this one gave.
    fresh = uuid.uuid4().hex
    token, header, name = f"tok-{fresh}", f"X-Key-{fresh}", f"ticket_{fresh}"
    monkeypatch.setenv("PARTNER_KEY", token)
    cfg = client_config(
        upstream.base_url, auth=HeaderAuth(header=header, env="PARTNER_KEY"), redact_query_params=frozenset({name})
    )
    with caplog.at_level(logging.DEBUG), ResilientClient(cfg) as client:
        client.get("/x", params={name: "T-4711-unique", "echo": token})
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "HTTP Request" in logged
    assert token not in logged
    assert "T-4711-unique" not in logged
    assert token in _HTTP_LOG_REDACTOR.secrets
    assert name in _HTTP_LOG_REDACTOR.names
    assert header in _HTTP_LOG_REDACTOR.headers
    assert header not in _HTTP_LOG_REDACTOR.secrets
    assert token not in _HTTP_LOG_REDACTOR.names


def test_only_a_transport_passed_in_is_unframed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200)

    cfg = client_config()
    with ResilientClient(cfg) as client:
        assert client._context.framed is True
    with ResilientClient(cfg, transport=DeadlineTransport()) as client:
        assert client._context.framed is True
    with ResilientClient(cfg, transport=httpx.MockTransport(handler)) as client:
        assert client._context.framed is False
    assert AsyncResilientClient(cfg, transport=httpx.MockTransport(handler))._context.framed is False


def test_the_client_is_open_once_built(upstream: Upstream) -> None:
    options: dict[str, Any] = {}
    with ResilientClient(client_config(upstream.base_url), **options) as client:
        assert client.get("/ok").status_code == 200
