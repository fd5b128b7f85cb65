"""Transport security and credentials of a resilient gRPC channel.

- TLS by default (grpcio's ``ssl_channel_credentials``, with the system's roots unless ``root_certificates`` are
  given). A plaintext channel is opened only to a loopback host (``localhost``, ``127.0.0.0/8``, ``::1``) or with
  ``allow_plaintext=True``, as the HTTP client allows ``http://`` (see :mod:`integration_kit.http.config`);
  otherwise :class:`~integration_kit.errors.ConfigurationError` with ``field="tls"``.
- A credential is named, never given: :class:`MetadataCredential` reads it from an environment variable and sends
  it as one metadata entry (``authorization: Bearer <value>`` by default). Its value never appears in a repr, an
  event, a log line or an error: the channel removes it from every status detail it keeps.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

import grpc

from integration_kit.errors import ConfigurationError
from integration_kit.policies.hosts import is_loopback

__all__ = ["MetadataCredential", "is_loopback", "split_target"]

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_METADATA_KEY = re.compile(r"[0-9a-z_.-]+")


def split_target(target: str) -> tuple[str, int | None]:
    """The host and port of a gRPC target (``host:port``, ``[::1]:port``, ``dns:///host:port``)."""
    rest = target.split(":///", 1)[-1] if ":///" in target else target
    rest = rest.removeprefix("dns:").removeprefix("ipv4:").removeprefix("ipv6:")
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        port = tail.removeprefix(":")
    else:
        host, _, port = rest.rpartition(":") if rest.count(":") == 1 else (rest, "", "")
    return host, int(port) if port.isdigit() else None


def channel_credentials(
    target: str, *, tls: bool, allow_plaintext: bool, root_certificates: bytes | None
) -> grpc.ChannelCredentials | None:
    """The channel's TLS credentials (``None``: plaintext, allowed only to loopback or with ``allow_plaintext``)."""
    if tls:
        return grpc.ssl_channel_credentials(root_certificates=root_certificates)
    host, _ = split_target(target)
    if not allow_plaintext and not is_loopback(host):
        raise ConfigurationError(
            f"plaintext gRPC to {host!r} is refused: use TLS (tls=True) or opt in with allow_plaintext=True",
            field="tls",
        )
    return None


@dataclass(frozen=True, slots=True)
class MetadataCredential:
    """A credential read from the environment variable ``env`` and sent as metadata ``key: prefix + value``.

    ``key`` is lower case (gRPC metadata keys are); the default sends ``authorization: Bearer <token>``.
    """

    env: str
    key: str = "authorization"
    prefix: str = "Bearer "

    def __post_init__(self) -> None:
        if not isinstance(self.env, str) or not _ENV_NAME.fullmatch(self.env):
            raise ConfigurationError(
                f"credential env must be an environment variable name, got {self.env!r}", field="env"
            )
        if not isinstance(self.key, str) or not _METADATA_KEY.fullmatch(self.key) or self.key.startswith("grpc-"):
            raise ConfigurationError(f"credential key must be a lower-case metadata key, got {self.key!r}", field="key")

    def load(self, environ: Mapping[str, str] | None = None) -> tuple[str, str]:
        """The metadata entry ``(key, prefix + value)``; a missing or empty variable is a ConfigurationError."""
        value = (os.environ if environ is None else environ).get(self.env, "")
        if not value:
            raise ConfigurationError(
                f"the environment variable {self.env} (the gRPC credential) is not set", field="env"
            )
        if "\n" in value or "\r" in value:
            raise ConfigurationError(f"the environment variable {self.env} holds a line break", field="env")
        return self.key, self.prefix + value
