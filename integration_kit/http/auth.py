"""Credentials, always named by environment variable and read once, when a client is built.

An auth setting in a :class:`~integration_kit.policies.config.ClientConfig` holds only the *names* of environment
variables, so configurations, specs and their reprs never contain a secret. :meth:`load` reads the variables
into a :class:`~integration_kit.http.redact.Secret`; a missing or empty variable is a
:class:`~integration_kit.errors.ConfigurationError` that names the variable, never a value.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

from integration_kit.errors import ConfigurationError
from integration_kit.http.redact import Secret
from integration_kit.policies.tables import check_table

__all__ = ["Auth", "BasicAuth", "BearerAuth", "Credential", "HeaderAuth", "auth_from_mapping"]

# Matched whole (fullmatch): with re.match, "$" also matches before a trailing newline ("X-Key\n").
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # an RFC 9110 token


class Credential(NamedTuple):
    """A loaded credential: the header it goes in, and its value as a :class:`Secret`."""

    header: str
    value: Secret


@dataclass(frozen=True, slots=True)
class BearerAuth:
    """``Authorization: Bearer <token>``, the token read from the environment variable ``env``."""

    env: str

    def __post_init__(self) -> None:
        _check_env_name("BearerAuth", "env", self.env)

    def load(self, environ: Mapping[str, str] | None = None) -> Credential:
        """Read the token (from ``os.environ`` unless ``environ`` is given)."""
        token = _read(self.env, "BearerAuth", environ)
        return Credential("Authorization", Secret(f"Bearer {token}"))


@dataclass(frozen=True, slots=True)
class HeaderAuth:
    """A named header (``X-Api-Key`` for instance) carrying the value of the environment variable ``env``."""

    header: str
    env: str

    def __post_init__(self) -> None:
        if not isinstance(self.header, str) or not _HEADER_NAME.fullmatch(self.header):
            message = f"HeaderAuth.header must be an HTTP header name, got {self.header!r}"
            raise ConfigurationError(message, field="header")
        _check_env_name("HeaderAuth", "env", self.env)

    def load(self, environ: Mapping[str, str] | None = None) -> Credential:
        """Read the header value (from ``os.environ`` unless ``environ`` is given)."""
        return Credential(self.header, Secret(_read(self.env, "HeaderAuth", environ)))


@dataclass(frozen=True, slots=True)
class BasicAuth:
    """HTTP Basic authentication (RFC 7617), user name and password each read from an environment variable."""

    username_env: str
    password_env: str

    def __post_init__(self) -> None:
        _check_env_name("BasicAuth", "username_env", self.username_env)
        _check_env_name("BasicAuth", "password_env", self.password_env)

    def load(self, environ: Mapping[str, str] | None = None) -> Credential:
        """Read both variables and encode them (from ``os.environ`` unless ``environ`` is given)."""
        user = _read(self.username_env, "BasicAuth", environ)
        if ":" in user:
            raise ConfigurationError(
                f"environment variable {self.username_env!r} (BasicAuth user name) must not contain ':'"
            )
        password = _read(self.password_env, "BasicAuth", environ)
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        return Credential("Authorization", Secret(f"Basic {token}"))


Auth = BearerAuth | HeaderAuth | BasicAuth
"""Any of the auth settings a :class:`~integration_kit.policies.config.ClientConfig` accepts."""


def auth_from_mapping(values: Mapping[str, Any] | Auth | None) -> Auth | None:
    """Build an auth setting from a spec's table: ``{"type": "bearer" | "header" | "basic", ...names}``.

    A :class:`ConfigurationError`'s ``field`` is relative to the table (``type``, ``env``); the caller puts
    ``auth`` in front.
    """
    if values is None or isinstance(values, (BearerAuth, HeaderAuth, BasicAuth)):
        return values
    if not isinstance(values, Mapping):
        raise ConfigurationError(f"auth: expected a mapping with a 'type', got {type(values).__name__}")
    data = dict(values)
    kind = data.pop("type", None)
    classes: dict[str, type[Auth]] = {"bearer": BearerAuth, "header": HeaderAuth, "basic": BasicAuth}
    if not isinstance(kind, str) or kind not in classes:
        raise ConfigurationError(f"auth.type must be one of 'bearer', 'header', 'basic', got {kind!r}", field="type")
    cls = classes[kind]
    valid = {f.name for f in fields(cls)}
    if unknown := sorted(str(key) for key in data if key not in valid):
        raise ConfigurationError(
            f"auth.{unknown[0]}: unknown field (expected one of {', '.join(sorted({'type', *valid}))})",
            field=unknown[0],
        )
    if missing := [f.name for f in fields(cls) if f.name not in data]:
        raise ConfigurationError(f"auth.{missing[0]} is required for a {kind} auth", field=missing[0])
    check_table(cls, data, owner=f"auth ({kind})")
    return cls(**data)


def _check_env_name(owner: str, field: str, name: object) -> None:
    if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
        raise ConfigurationError(f"{owner}.{field} must be an environment variable name, got {name!r}", field=field)


def _read(name: str, owner: str, environ: Mapping[str, str] | None) -> str:
    value = (os.environ if environ is None else environ).get(name)
    if value is None or not value.strip():  # blank is empty: the credential sent would be empty
        state = "is empty" if value is not None else "is not set"
        raise ConfigurationError(f"environment variable {name!r} ({owner}) {state}")
    if any(c in value for c in "\r\n\0"):
        raise ConfigurationError(f"environment variable {name!r} ({owner}) holds a line break or NUL")
    return value.strip()
