"""The clients use the proxy the environment names for their ``base_url`` when no transport is given, as httpx
would: ``HTTP_PROXY`` for an ``http`` origin (not ``HTTPS_PROXY``), ``ALL_PROXY`` when no scheme's own is set,
none for a host ``NO_PROXY`` lists, none when nothing is set. The proxy and the origin are real loopback servers
that answer with the request head they were sent, so a proxied request shows its absolute URL. Also: a hook added
to a client gets the events of its later calls; a configured User-Agent is sent once, instead of the kit's; the
repr names the integration."""

from __future__ import annotations

import pytest
from backend_support import head_server

from integration_kit.events import Recorder
from integration_kit.http.client import AsyncResilientClient, ResilientClient
from integration_kit.http.config import ClientConfig

_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def _config(base_url: str) -> ClientConfig:
    return ClientConfig.from_mapping({"name": "proxied", "base_url": base_url, "retry": {"max_attempts": 1}})


def _head(base_url: str) -> str:
    with ResilientClient(_config(base_url)) as client:
        return client.get("/orders?page=2").text


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "ALL_PROXY", "http_proxy"])
def test_the_environment_s_proxy_for_the_origin_is_used(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    with head_server() as (host, port), head_server() as (proxy_host, proxy_port):
        monkeypatch.setenv(variable, f"http://{proxy_host}:{proxy_port}")
        head = _head(f"http://{host}:{port}")
    assert head.startswith(f"GET http://{host}:{port}/orders?page=2 HTTP/1.1\r\n")


def test_the_scheme_s_own_proxy_wins_over_all_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    with head_server() as (host, port), head_server() as (proxy_host, proxy_port):
        monkeypatch.setenv("HTTP_PROXY", f"http://user:one@{proxy_host}:{proxy_port}")
        monkeypatch.setenv("ALL_PROXY", "http://user:all@127.0.0.1:9")
        head = _head(f"http://{host}:{port}")
    assert "Proxy-Authorization: Basic dXNlcjpvbmU=" in head


@pytest.mark.parametrize(
    "environment",
    [
        {},
        {"HTTPS_PROXY": "http://127.0.0.1:9"},
        {"HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1"},
        {"ALL_PROXY": "http://127.0.0.1:9", "NO_PROXY": "*"},
    ],
)
def test_no_proxy_for_the_origin_means_a_direct_request(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with head_server() as (host, port):
        head = _head(f"http://{host}:{port}")
    assert head.startswith("GET /orders?page=2 HTTP/1.1\r\n")


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_async_client_uses_the_environment_s_proxy_too(monkeypatch: pytest.MonkeyPatch) -> None:
    with head_server() as (host, port), head_server() as (proxy_host, proxy_port):
        monkeypatch.setenv("HTTP_PROXY", f"http://{proxy_host}:{proxy_port}")
        async with AsyncResilientClient(_config(f"http://{host}:{port}")) as client:
            head = (await client.get("/orders")).text
    assert head.startswith(f"GET http://{host}:{port}/orders HTTP/1.1\r\n")


def test_the_repr_names_the_integration_and_its_origin() -> None:
    with ResilientClient(_config("http://127.0.0.1:9")) as client:
        assert repr(client) == "ResilientClient(name='proxied', base_url='http://127.0.0.1:9')"


def test_a_hook_added_later_gets_the_next_call_s_events() -> None:
    recorder = Recorder()
    with head_server() as (host, port), ResilientClient(_config(f"http://{host}:{port}")) as client:
        client.get("/before")
        client.add_hook(recorder)
        client.get("/after")
    finished = [e for e in recorder.events if type(e).__name__ == "CallFinished"]
    assert len(finished) == 1


def test_a_user_agent_among_the_configured_headers_replaces_the_kit_s() -> None:
    with head_server() as (host, port):
        config = ClientConfig.from_mapping(
            {"name": "agent", "base_url": f"http://{host}:{port}", "headers": {"User-Agent": "shop/3"}}
        )
        with ResilientClient(config) as client:
            head = client.get("/").text
    agents = [line for line in head.split("\r\n") if line.lower().startswith("user-agent:")]
    assert agents == ["User-Agent: shop/3"]
