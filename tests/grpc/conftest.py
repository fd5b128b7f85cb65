"""Fixtures of the gRPC tests: the flaky gRPC upstream on 127.0.0.1 (a free port), playing a scenario; a TLS server."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from typing import Any

import grpc
import pytest
import trustme
from grpc_kit_helpers import Serve

from integration_kit.sim.grpc import inventory_pb2 as pb
from integration_kit.sim.grpc import inventory_pb2_grpc as pbg
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


class _Inventory(pbg.InventoryServicer):
    def GetItem(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb.Item(sku=request.sku, stock=3, attempt=1)


@pytest.fixture(scope="module")
def tls_server() -> Iterator[tuple[str, bytes]]:
    """A TLS gRPC server on 127.0.0.1 (a free port) with a certificate of a private CA: (target, the CA's PEM)."""
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pbg.add_InventoryServicer_to_server(_Inventory(), server)  # type: ignore[no-untyped-call]
    credentials = grpc.ssl_server_credentials(
        [(leaf.private_key_pem.bytes(), b"".join(blob.bytes() for blob in leaf.cert_chain_pems))]
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    yield f"localhost:{port}", ca.cert_pem.bytes()
    server.stop(0)
