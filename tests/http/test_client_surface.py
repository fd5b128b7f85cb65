"""The clients' surface, pinned by the mutation sweep of issue 29 (``http/client.py``): every verb passes its
options on, ``json()`` says exactly what was wrong and for which call, a redirect to https on another host is
followed without the credential, hooks that wrap an attempt see its headers, a client clock that cannot wait
cooperatively still waits, and a body past ``max_response_bytes`` is stopped as it streams, not read whole first.

Against the loopback upstream (uvicorn); an ``httpx.MockTransport`` only for the redirect to a host that is not
loopback, which no local server can be.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, MutableMapping
from typing import Any

import anyio
import httpx
import pytest
from asgi_server import serve_in_thread
from scripted_upstream import Connect, Reply, Upstream
from test_client_guarantees import config

from integration_kit import AsyncResilientClient, ManualClock, ResilientClient
from integration_kit.errors import InvalidResponse, ResponseTooLarge
from integration_kit.http.auth import BearerAuth
from integration_kit.policies.config import RetryPolicy

VERBS = ["get", "post", "put", "patch", "delete"]


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_passes_its_options_on(connect: Connect, upstream: Upstream, verb: str) -> None:
    client = connect(config(upstream.base_url))
    getattr(client, verb)("/things", params={"page": "2"}, headers={"X-Trace": "t-1"})
    [seen] = upstream.requests
    assert (seen.method, seen.path, seen.query) == (verb.upper(), "/things", "page=2")
    assert seen.headers["x-trace"] == "t-1"


def test_the_repr_names_the_client_and_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARTNER_TOKEN", "tok-secret-1")
    cfg = config("http://127.0.0.1:9", auth=BearerAuth(env="PARTNER_TOKEN"))
    with ResilientClient(cfg) as client:
        assert repr(client) == "ResilientClient(name='partner', base_url='http://127.0.0.1:9')"
    assert repr(AsyncResilientClient(cfg)).startswith("AsyncResilientClient(name='partner'")


# -- json(): what was wrong, and for which call ----------------------------------------------------------------------


def test_json_errors_name_the_call_with_its_secrets_masked(connect: Connect, upstream: Upstream) -> None:
    client = connect(config(upstream.base_url, redact_query_params=frozenset({"ticket"})))
    upstream.script(Reply(body=b"<html>", content_type="text/html"))
    with pytest.raises(InvalidResponse) as caught:
        client.json("/thing", params={"ticket": "T-77", "page": "1"})
    error = caught.value
    assert error.message == "expected a JSON response, got content type 'text/html'"
    assert (error.integration, error.method) == ("partner", "GET")
    assert error.url is not None
    assert error.url.startswith(f"{upstream.base_url}/thing?")
    assert "T-77" not in error.url
    assert "page=1" in error.url


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply(body=b"{}", headers={"Content-Type": ""}), "expected a JSON response, got content type 'none'"),
        (Reply(body=b'{"id": '), "malformed JSON in the response body"),
        (Reply(body=b"[" * 100_000 + b"]" * 100_000), "JSON in the response body is nested too deeply"),
    ],
    ids=["no-content-type", "malformed", "too-deep"],
)
def test_json_errors_say_exactly_what_was_wrong(
    connect: Connect, upstream: Upstream, reply: Reply, message: str
) -> None:
    client = connect(config(upstream.base_url))
    upstream.script(reply)
    with pytest.raises(InvalidResponse) as caught:
        client.json("/thing")
    assert caught.value.message == message


def test_json_without_a_content_type_header_is_refused(connect: Connect, upstream: Upstream) -> None:
    client = connect(config(upstream.base_url))
    upstream.script(Reply(body=b"{}", content_type=None))
    with pytest.raises(InvalidResponse) as caught:
        client.json("/thing")
    assert caught.value.message == "expected a JSON response, got content type 'none'"


def test_json_validation_errors_name_the_exception(connect: Connect, upstream: Upstream) -> None:
    client = connect(config(upstream.base_url))
    upstream.script(Reply(body=b"{}"))
    with pytest.raises(InvalidResponse) as caught:
        client.json("/thing", validator=lambda data: data["id"])
    assert caught.value.message == "the response failed validation (KeyError)"


def test_json_calls_get_by_default_with_its_options(connect: Connect, upstream: Upstream) -> None:
    client = connect(config(upstream.base_url))
    echoed = client.json("/thing", params={"q": "1"}, headers={"X-Trace": "t-2"})
    assert (echoed["method"], echoed["query"], echoed["headers"]["x-trace"]) == ("GET", "q=1", "t-2")


# -- redirects, hooks, clocks, streaming ---------------------------------------------------------------------------


def test_a_redirect_to_https_on_another_host_is_followed_without_the_credential(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only plain http is refused off loopback; an https hop to another host (a CDN) is followed, credential-free."""
    monkeypatch.setenv("PARTNER_TOKEN", "tok-secret-2")
    seen: list[httpx.Request] = []

    def partner(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "api.partner.example":
            return httpx.Response(302, headers={"Location": "https://cdn.partner-files.example/report.json"})
        return httpx.Response(200, json={"report": 1})

    cfg = config("https://api.partner.example", auth=BearerAuth(env="PARTNER_TOKEN"), follow_redirects=True)
    with ResilientClient(cfg, transport=httpx.MockTransport(partner)) as client:
        assert client.get("/report").json() == {"report": 1}
    assert [r.url.host for r in seen] == ["api.partner.example", "cdn.partner-files.example"]
    assert "authorization" not in seen[1].headers


class TraceHook:
    """A hook that wraps each attempt, as the OpenTelemetry hook does, and stamps its headers."""

    def __init__(self) -> None:
        self.attempts = 0

    def __call__(self, event: object) -> None:
        """Events are not needed here."""

    @contextlib.contextmanager
    def wrap_attempt(self, headers: MutableMapping[str, str]) -> Iterator[None]:
        self.attempts += 1
        headers["traceparent"] = f"00-{self.attempts:032x}-{self.attempts:016x}-01"
        yield


def test_a_hook_that_wraps_attempts_sets_each_attempts_headers(connect: Connect, upstream: Upstream) -> None:
    hook = TraceHook()
    client = connect(config(upstream.base_url), clock=ManualClock(), hooks=[hook])
    upstream.script(Reply(503), Reply(200))
    client.get("/traced")
    assert [r.headers["traceparent"][3:35] for r in upstream.requests] == [f"{1:032x}", f"{2:032x}"]


class PlainClock:
    """A clock with no cooperative wait (only ``sleep``): the async client must wait with anyio instead."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        raise AssertionError("the async client blocked its event loop in a sync sleep")


def test_the_async_client_waits_cooperatively_with_a_clock_that_cannot(upstream: Upstream) -> None:
    async def main() -> int:
        cfg = config(upstream.base_url, retry=RetryPolicy(max_attempts=2, base_delay=0.01, jitter="none"))
        async with AsyncResilientClient(cfg, clock=PlainClock()) as client:
            return (await client.get("/again")).status_code

    upstream.script(Reply(503), Reply(200))
    assert anyio.run(main) == 200
    assert upstream.count == 2


class Trickle:
    """Streams 1 KiB every 50 ms for up to 5 s, with no Content-Length (an endless export)."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        for _ in range(100):
            await send({"type": "http.response.body", "body": b"x" * 1024, "more_body": True})
            await anyio.sleep(0.05)
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture(scope="module")
def trickle_url() -> Iterator[str]:
    with serve_in_thread(Trickle()) as url:
        yield url


def test_a_body_past_the_limit_is_stopped_as_it_streams(connect: Connect, trickle_url: str) -> None:
    """Read whole first, the body would run into the deadline; streamed, it passes the limit within 0.3 s."""
    client = connect(config(trickle_url, retry=RetryPolicy.disabled(), max_response_bytes=4096, deadline=3.0))
    started = time.monotonic()
    with pytest.raises(ResponseTooLarge):
        client.get("/export")
    assert time.monotonic() - started < 2.5


def test_the_user_agent_names_the_kit_or_the_configured_one(connect: Connect, upstream: Upstream) -> None:
    connect(config(upstream.base_url)).get("/ua")
    connect(config(upstream.base_url, user_agent="shop/2.1")).get("/ua")
    default, configured = (r.headers["user-agent"] for r in upstream.requests)
    assert default.startswith("integration_kit/")
    assert configured == "shop/2.1"
