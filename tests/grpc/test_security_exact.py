"""Transport security to the letter: every target form ``split_target`` reads (the host decides the loopback rule),
plaintext refused to any other host unless opted in, the credential read from a given environment and checked, and
the caller's own root certificates trusted by a real TLS gRPC server on 127.0.0.1 (a trustme certificate)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from integration_kit.errors import ConfigurationError
from integration_kit.grpc import GrpcTlsError, MetadataCredential, ResilientChannel
from integration_kit.grpc.security import channel_credentials, split_target
from integration_kit.sim.grpc import inventory_pb2 as pb
from integration_kit.sim.grpc import inventory_pb2_grpc as pbg


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("partner.example.com:443", ("partner.example.com", 443)),
        ("127.0.0.1:50051", ("127.0.0.1", 50051)),
        ("[::1]:50051", ("::1", 50051)),
        ("[::1]", ("::1", None)),
        ("::1", ("::1", None)),
        ("dns:///partner.example.com:443", ("partner.example.com", 443)),
        ("dns:partner.example.com:443", ("partner.example.com", 443)),
        ("ipv4:127.0.0.1:8443", ("127.0.0.1", 8443)),
        ("ipv6:[::1]:8443", ("::1", 8443)),
        ("ipv4:///127.0.0.1:9", ("127.0.0.1", 9)),
        ("partner.example.com", ("partner.example.com", None)),
        ("partner.example.com:https", ("partner.example.com", None)),
        ("a:b:c", ("a:b:c", None)),
    ],
)
def test_every_target_form_gives_its_host_and_port(target: str, expected: tuple[str, int | None]) -> None:
    assert split_target(target) == expected


def test_only_the_first_scheme_separator_is_taken_off() -> None:
    # A target that hides a loopback name behind a second "scheme:///" is not taken for loopback.
    assert split_target("dns:///partner.example.com:///localhost:1") == ("partner.example.com:///localhost:1", None)
    with pytest.raises(ConfigurationError):
        channel_credentials(
            "dns:///partner.example.com:///localhost:1", tls=False, allow_plaintext=False, root_certificates=None
        )


def test_a_bracketed_host_ends_at_its_first_closing_bracket() -> None:
    assert split_target("[::1]x]:1") == ("::1", None)
    assert split_target("[fe80::1]:80]") == ("fe80::1", None)


@pytest.mark.parametrize(
    "target", ["localhost:1", "127.0.0.1:1", "127.8.9.10:1", "[::1]:1", "dns:///localhost:1", "ipv6:[::1]:1"]
)
def test_plaintext_to_loopback_needs_no_opt_in(target: str) -> None:
    assert channel_credentials(target, tls=False, allow_plaintext=False, root_certificates=None) is None


@pytest.mark.parametrize("target", ["partner.example.com:443", "10.0.0.1:50051", "dns:///127.0.0.1.nip.io:1"])
def test_plaintext_to_any_other_host_is_refused_unless_opted_in(target: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        channel_credentials(target, tls=False, allow_plaintext=False, root_certificates=None)
    assert info.value.field == "tls"
    host = split_target(target)[0]
    assert info.value.message == (
        f"plaintext gRPC to {host!r} is refused: use TLS (tls=True) or opt in with allow_plaintext=True"
    )
    assert channel_credentials(target, tls=False, allow_plaintext=True, root_certificates=None) is None
    assert isinstance(
        channel_credentials(target, tls=True, allow_plaintext=False, root_certificates=None), grpc.ChannelCredentials
    )


def test_the_credential_is_read_from_the_environment_given() -> None:
    credential = MetadataCredential("PARTNER_TOKEN")
    assert credential.load({"PARTNER_TOKEN": "tok"}) == ("authorization", "Bearer tok")
    custom = MetadataCredential("PARTNER_KEY", key="x-api-key", prefix="")
    assert custom.load({"PARTNER_KEY": "k-1"}) == ("x-api-key", "k-1")
    for environ in ({}, {"PARTNER_TOKEN": ""}):
        with pytest.raises(ConfigurationError) as info:
            credential.load(environ)
        assert info.value.field == "env"
        assert info.value.message == "the environment variable PARTNER_TOKEN (the gRPC credential) is not set"
    for broken in ("tok\nx-admin: yes", "tok\r"):
        with pytest.raises(ConfigurationError) as info:
            credential.load({"PARTNER_TOKEN": broken})
        assert info.value.field == "env"
        assert info.value.message == "the environment variable PARTNER_TOKEN holds a line break"
        assert broken not in info.value.message


def test_the_credential_reads_os_environ_when_no_environment_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARTNER_TOKEN", "from-os")
    assert MetadataCredential("PARTNER_TOKEN").load() == ("authorization", "Bearer from-os")


@pytest.mark.parametrize("env", ["TOKEN", "_T", "a1_B2", "x"])
def test_an_environment_variable_name_is_accepted(env: str) -> None:
    assert MetadataCredential(env).env == env


@pytest.mark.parametrize("env", ["1TOKEN", "A-B", "", "A B", "TOKEN\n", 7])
def test_a_bad_environment_variable_name_is_refused(env: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        MetadataCredential(env)
    assert info.value.field == "env"
    assert info.value.message == f"credential env must be an environment variable name, got {env!r}"


@pytest.mark.parametrize("key", ["authorization", "x-api-key", "a.b_c-9"])
def test_a_metadata_key_is_accepted(key: str) -> None:
    assert MetadataCredential("TOKEN", key=key).key == key


@pytest.mark.parametrize("key", ["Authorization", "grpc-secret", "", "x key", "x:y", 7])
def test_a_bad_metadata_key_is_refused(key: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        MetadataCredential("TOKEN", key=key)
    assert info.value.field == "key"
    assert info.value.message == f"credential key must be a lower-case metadata key, got {key!r}"


def test_the_callers_root_certificates_are_trusted(tls_server: tuple[str, bytes]) -> None:
    target, roots = tls_server
    with ResilientChannel(target, root_certificates=roots) as channel:
        item = pbg.InventoryStub(channel).GetItem(pb.GetItemRequest(sku="a"), timeout=10)
    assert (item.sku, item.stock) == ("a", 3)


def test_without_the_roots_the_private_certificate_is_not_trusted(tls_server: tuple[str, bytes]) -> None:
    target, _ = tls_server
    with ResilientChannel(target) as channel, pytest.raises(GrpcTlsError):
        pbg.InventoryStub(channel).GetItem(pb.GetItemRequest(sku="a"), timeout=10)
