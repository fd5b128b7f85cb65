"""Fixtures of the gRPC tests: the flaky gRPC upstream on 127.0.0.1 (a free port), playing a scenario."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from grpc_kit_helpers import Serve

from integration_kit.sim.grpc.upstream import GrpcFlakyUpstream, serve_grpc_scenario
from integration_kit.sim.scenarios import Scenario


@pytest.fixture
def serve() -> Serve:
    """``with serve(scenario, **upstream options) as (target, upstream):`` a live gRPC upstream."""

    @contextmanager
    def run(played: Scenario, **options: Any) -> Iterator[tuple[str, GrpcFlakyUpstream]]:
        upstream = GrpcFlakyUpstream(played, seed=7, max_hang=5.0, **options)
        with serve_grpc_scenario(upstream) as target:
            yield target, upstream

    return run


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # grpc.aio runs on asyncio only
