"""Shared fixtures: a scriptable HTTP upstream on 127.0.0.1 (uvicorn in a thread), and client drivers.

``upstream`` serves :class:`scripted_upstream.Upstream` on a free loopback port. The listening socket is bound
before the server thread starts, so clients can connect at once: there is no waiting for the server to come up.

``connect`` is parametrised over the sync client and the async client on asyncio and on trio (the async one
driven through an anyio blocking portal), so one scenario body tests all three.

Under ``INTEGRATION_KIT_HYPOTHESIS_PROFILE=mutation`` (set by ``python3 dev.py mutate``), hypothesis neither times
examples nor fails its too-slow health check: mutmut's coverage tracing on a loaded machine trips both, and a
mutation sweep must fail on mutants only.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
import uvicorn
from anyio.from_thread import start_blocking_portal
from hypothesis import HealthCheck, settings
from scripted_upstream import Connect, PortalClient, Upstream

from integration_kit import AsyncResilientClient, ResilientClient
from integration_kit.http.config import ClientConfig

settings.register_profile("mutation", deadline=None, suppress_health_check=[HealthCheck.too_slow])
if os.environ.get("INTEGRATION_KIT_HYPOTHESIS_PROFILE"):
    settings.load_profile(os.environ["INTEGRATION_KIT_HYPOTHESIS_PROFILE"])


@pytest.fixture(scope="session")
def upstream_server() -> Iterator[Upstream]:
    """A uvicorn server on a free 127.0.0.1 port for the whole session, shut down cleanly at the end."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # connections queue from now on, before uvicorn accepts them
    state = Upstream(sock.getsockname()[1])
    config = uvicorn.Config(
        state.app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        interface="asgi3",
        server_header=False,
        date_header=False,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="upstream", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.reset()
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def upstream(upstream_server: Upstream) -> Iterator[Upstream]:
    """The session's server with a fresh script and request log for this test."""
    upstream_server.reset()
    yield upstream_server
    upstream_server.reset()


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A loopback URL whose port is bound but not listening: every connection is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


DRIVERS = ["sync", "asyncio", "trio"]


@pytest.fixture(params=DRIVERS)
def connect(request: pytest.FixtureRequest) -> Iterator[Connect]:
    """``connect(config, **client_kwargs)``: a client of the parametrised flavour, closed after the test."""
    flavour: str = request.param
    with ExitStack() as stack:

        def connect_(config: ClientConfig, **kwargs: Any) -> Any:
            if flavour == "sync":
                return stack.enter_context(ResilientClient(config, **kwargs))
            portal = stack.enter_context(start_blocking_portal(flavour))
            client = AsyncResilientClient(config, **kwargs)
            stack.callback(portal.call, client.aclose)
            return PortalClient(portal, client)

        yield connect_
