"""One loopback rule for every driver: what the HTTP client, its config and the gRPC channel send in plain text."""

from __future__ import annotations

import pytest

from integration_kit.grpc import security as grpc_security
from integration_kit.http import config as http_config
from integration_kit.policies.hosts import is_loopback


@pytest.mark.parametrize(
    "host",
    ["localhost", "LOCALHOST", "localhost.", "api.localhost", "api.localhost.", "ip6-localhost", "ip6-loopback",
     "127.0.0.1", "127.9.8.7", "::1", "[::1]"],
)  # fmt: skip
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize(
    "host",
    ["localhost.localdomain", "localhost.example", "notlocalhost", "Xlocalhost", "10.0.0.1", "::ffff:8.8.8.8",
     "0.0.0.0", "", "[]", "example.com", "127.0.0.1.nip.io"],
)  # fmt: skip
def test_hosts_that_are_not_loopback(host: str) -> None:
    assert not is_loopback(host)


def test_every_driver_uses_the_one_rule() -> None:
    assert http_config.is_loopback is grpc_security.is_loopback is is_loopback
