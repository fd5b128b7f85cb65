"""``ClientConfig``: everything one integration's HTTP client needs, frozen and validated.

The policies it carries (:class:`~integration_kit.policies.config.Timeouts`, ``RetryPolicy``, ``BudgetPolicy``,
``BreakerPolicy``, ``Limits``) live with the policies; this module adds the origin, credentials, TLS and size
limits, and builds itself from a mapping or the environment.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from integration_kit.clock import Clock
from integration_kit.errors import ConfigurationError
from integration_kit.http.auth import Auth, auth_from_mapping
from integration_kit.http.redact import SECRET_HEADERS, redact_url
from integration_kit.policies.config import (
    BreakerPolicy,
    BudgetPolicy,
    Limits,
    RetryPolicy,
    Timeouts,
    _fail,
    _int_at_least,
    _known_keys,
    _positive,
    build,
)
from integration_kit.policies.hosts import is_loopback
from integration_kit.policies.limits import QuotaPacer
from integration_kit.policies.profiles import ProviderProfile, profile_named
from integration_kit.policies.signals import DEFAULT_SIGNAL_PROFILE, SignalProfile
from integration_kit.policies.tables import check_table
from integration_kit.stores.base import Store
from integration_kit.stores.redis import RedisStore

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "ClientConfig", "is_loopback"]


#: Default ``ClientConfig.max_response_bytes``: 10 MiB, far above a typical JSON API answer, far below memory.
DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Everything one integration's client needs, validated at construction; never holds a secret.

    ``base_url`` pins the origin: every request goes to it, and ``http://`` is refused for any host but loopback
    unless ``allow_insecure_http``. ``timeouts`` bound each phase of one attempt (a float, a mapping or a
    :class:`Timeouts` is accepted and coerced); ``deadline`` bounds the whole logical call, retries and waits
    included (``None``: no deadline). ``breaker`` and ``budget`` may be ``None`` to switch them off. ``auth`` holds
    only the *names* of environment variables, read once when a client is built. Credential headers are refused in
    ``headers``: give them through ``auth``. ``idempotency_methods`` lists the methods that get a generated
    ``Idempotency-Key`` on each logical call (for example ``{"POST", "PATCH"}``), which also makes them safe to
    retry. ``redact_query_params`` adds names to the secret-looking query parameters masked in events, logs and
    errors. ``verify`` is ``True`` (system CAs), ``False`` (only for tests), or the path of a CA bundle.
    ``profile`` names a bundled provider profile (``"github"``, ``"stripe"``, ``"slack"``, ``"shopify"``,
    ``"openai"``; see :mod:`integration_kit.policies.profiles`): its headers are read its way, its retryable
    statuses are added to ``retry.retry_on_status`` and its idempotency methods to ``idempotency_methods``
    (``None``, the default: the generic reading of :mod:`integration_kit.policies.signals`). Any other name is a
    :class:`~integration_kit.errors.ConfigurationError` listing the valid ones. ``quota_reserve`` turns on client-side
    pacing (:class:`~integration_kit.policies.limits.QuotaPacer`): once the partner's headers say only that many
    requests are left in its window, calls wait for its reset within their deadline, or fail fast with
    :class:`~integration_kit.errors.RateLimited` (``None``, the default: no pacing). ``quota_store_env`` names an
    environment variable holding the Redis URL through which every process of the integration shares one count of
    the quota (read when a client is built; ``None``: each process counts its own).
    """

    name: str
    base_url: str
    timeouts: Timeouts = Timeouts()
    deadline: float | None = 30.0
    retry: RetryPolicy = RetryPolicy()
    breaker: BreakerPolicy | None = BreakerPolicy()
    budget: BudgetPolicy | None = BudgetPolicy()
    limits: Limits = Limits()
    auth: Auth | None = None
    headers: Mapping[str, str] = field(default_factory=dict, hash=False)
    user_agent: str | None = None
    max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES
    follow_redirects: bool = False
    verify: bool | str = True
    allow_insecure_http: bool = False
    idempotency_methods: frozenset[str] = frozenset()
    redact_query_params: frozenset[str] = frozenset()
    profile: str | None = None
    quota_reserve: int | None = None
    quota_store_env: str | None = None

    def __post_init__(self) -> None:
        with _configuration_errors():
            self._validate()

    def _validate(self) -> None:
        owner = "ClientConfig"
        if not isinstance(self.name, str) or not self.name or not self.name.isprintable() or " " in self.name:
            raise _fail(owner, "name", self.name, "must be a non-empty name without spaces")
        try:
            object.__setattr__(self, "timeouts", Timeouts.coerce(self.timeouts))
        except ConfigurationError as exc:
            raise ConfigurationError(f"{owner}.timeouts: {exc}", field=exc.under("timeouts").field) from None
        _positive(owner, "deadline", self.deadline, allow_none=True)
        policies: tuple[tuple[str, type, bool], ...] = (
            ("retry", RetryPolicy, False),
            ("limits", Limits, False),
            ("breaker", BreakerPolicy, True),
            ("budget", BudgetPolicy, True),
        )
        for name, cls, optional in policies:
            value = getattr(self, name)
            if not isinstance(value, cls) and not (optional and value is None):
                raise ConfigurationError(
                    f"{owner}.{name} must be a {cls.__name__}{' or None' if optional else ''}, got "
                    f"{type(value).__name__} (ClientConfig.from_mapping builds policies from mappings)",
                    field=name,
                )
        with _under("auth"):
            object.__setattr__(self, "auth", auth_from_mapping(self.auth))
        _int_at_least(owner, "max_response_bytes", self.max_response_bytes, 1, allow_none=True)
        _int_at_least(owner, "quota_reserve", self.quota_reserve, 0, allow_none=True)
        env = self.quota_store_env
        if env is not None and (not isinstance(env, str) or not env.isidentifier()):
            raise _fail(owner, "quota_store_env", env, "must be the name of an environment variable")
        for name in ("follow_redirects", "allow_insecure_http"):
            if not isinstance(getattr(self, name), bool):
                raise _fail(owner, name, getattr(self, name), "must be a bool")
        params = frozenset(p.lower() for p in _strings(owner, "redact_query_params", self.redact_query_params))
        object.__setattr__(self, "redact_query_params", params)  # before base_url: its errors mask these too
        self._check_base_url()
        self._check_headers()
        self._check_verify()
        methods = frozenset(
            _token(owner, f"idempotency_methods[{i}]", m).upper()
            for i, m in enumerate(_strings(owner, "idempotency_methods", self.idempotency_methods))
        )
        object.__setattr__(self, "idempotency_methods", methods)
        self._apply_profile()

    def _apply_profile(self) -> None:
        """Add the named profile's retryable statuses and idempotency methods (a union: never removes one)."""
        if self.profile is None:
            return
        provider = profile_named(self.profile)
        if not provider.retry_on_status <= self.retry.retry_on_status:
            statuses = self.retry.retry_on_status | provider.retry_on_status
            object.__setattr__(self, "retry", replace(self.retry, retry_on_status=statuses))
        if not provider.idempotency_methods <= self.idempotency_methods:
            object.__setattr__(self, "idempotency_methods", self.idempotency_methods | provider.idempotency_methods)

    def quota_pacer(self, clock: Clock, *, environ: Mapping[str, str] | None = None) -> QuotaPacer | None:
        """The client's :class:`~integration_kit.policies.limits.QuotaPacer` (``None`` without ``quota_reserve``),
        shared through Redis when ``quota_store_env`` names a set variable. Raises
        :class:`~integration_kit.errors.ConfigurationError` when that variable is missing or empty."""
        if self.quota_reserve is None:
            return None
        store: Store | None = None
        if self.quota_store_env is not None:
            url = (os.environ if environ is None else environ).get(self.quota_store_env, "").strip()
            if not url:
                raise ConfigurationError(
                    f"ClientConfig.quota_store_env: environment variable {self.quota_store_env!r} is not set",
                    field="quota_store_env",
                )
            store = RedisStore(url)
        return QuotaPacer(reserve=self.quota_reserve, clock=clock, store=store, name=self.name)

    @property
    def provider(self) -> ProviderProfile | None:
        """The named provider profile (``None`` when ``profile`` is not set)."""
        return None if self.profile is None else profile_named(self.profile)

    @property
    def signals(self) -> SignalProfile:
        """How this integration's partner headers read: its profile's reading, else the generic one."""
        provider = self.provider
        return DEFAULT_SIGNAL_PROFILE if provider is None else provider.reading

    def __getstate__(self) -> dict[str, Any]:
        """Pickle support (the tuner's worker processes get a spec once): ``headers`` as a plain dict."""
        state = {f.name: getattr(self, f.name) for f in fields(self)}
        state["headers"] = dict(self.headers)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, MappingProxyType(value) if name == "headers" else value)

    def _check_base_url(self) -> None:
        url = self.base_url
        if not isinstance(url, str):
            raise _fail("ClientConfig", "base_url", url, "must be a string")
        shown = redact_url(url, self.redact_query_params)
        try:
            parts = urlsplit(url)
            host = parts.hostname
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError:
            raise ConfigurationError(f"ClientConfig.base_url is not a valid URL: {shown!r}", field="base_url") from None
        if parts.scheme not in ("http", "https") or not host:
            problem = f"must be an absolute http(s) URL, got {shown!r}"
        elif parts.username is not None or parts.password is not None:
            problem = f"must not hold credentials ({shown!r}): name an env var in auth= instead"
        elif parts.query or parts.fragment:
            problem = f"must not have a query or fragment, got {shown!r}"
        elif parts.scheme == "http" and not self.allow_insecure_http and not is_loopback(host):
            problem = (
                f"{shown!r} is plain http:// to a non-loopback host; use https:// "
                "(or set allow_insecure_http=True, never in production)"
            )
        else:
            return
        raise ConfigurationError(f"ClientConfig.base_url {problem}", field="base_url")

    def _check_headers(self) -> None:
        if not isinstance(self.headers, Mapping):
            raise _fail("ClientConfig", "headers", self.headers, "must be a mapping")
        agent = self.user_agent
        if agent is not None and (not isinstance(agent, str) or any(c in agent for c in "\r\n\0")):
            raise _fail("ClientConfig", "user_agent", agent, "must be a string without CR, LF or NUL")
        for name, value in self.headers.items():
            if not isinstance(name, str):
                raise _fail("ClientConfig", "headers", name, "must have string names")
            _token("ClientConfig", f"headers.{name}", name)
            if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
                raise ConfigurationError(
                    f"ClientConfig.headers[{name!r}] must be a str without CR, LF or NUL", field=f"headers.{name}"
                )
            if name.lower() in SECRET_HEADERS:
                raise ConfigurationError(
                    f"ClientConfig.headers[{name!r}] is a credential header: name an env var in auth= instead",
                    field=f"headers.{name}",
                )
        object.__setattr__(self, "headers", MappingProxyType(dict(self.headers)))

    def _check_verify(self) -> None:
        verify = self.verify
        if isinstance(verify, bool):
            return
        if not isinstance(verify, str) or not os.path.exists(verify):
            raise _fail("ClientConfig", "verify", verify, "must be a bool or the path of a CA bundle")
        try:  # load it now: a file that is not a PEM bundle fails here, naming the field, not at the first call
            self.ssl_context()
        except (ssl.SSLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or type(exc).__name__
            raise ConfigurationError(
                f"ClientConfig.verify: {verify!r} is not a usable CA bundle or directory of PEM certificates "
                f"({reason})",
                field="verify",
            ) from None

    @property
    def origin(self) -> tuple[str, str, int]:
        """The (scheme, host, port) every request of this integration goes to."""
        parts = urlsplit(self.base_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return parts.scheme, (parts.hostname or "").lower(), port

    def ssl_context(self) -> ssl.SSLContext | bool:
        """What to give httpx as ``verify``: ``True``/``False``, or a context trusting the configured CA bundle."""
        if isinstance(self.verify, bool):
            return self.verify
        if os.path.isdir(self.verify):
            return ssl.create_default_context(capath=self.verify)
        return ssl.create_default_context(cafile=self.verify)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ClientConfig:
        """Build from a spec's table: nested policies may be mappings (built with :func:`build`).

        ``breaker`` and ``budget`` may be ``False`` or ``None`` (off) or ``True`` (defaults); ``auth`` is a mapping
        with a ``type`` of ``"bearer"``, ``"header"`` or ``"basic"`` and the names of its environment variables.
        """
        with _configuration_errors():
            data = _known_keys(cls, values)
            check_table(cls, data)
            for name, policy in (("retry", RetryPolicy), ("limits", Limits)):
                if name in data:
                    with _under(name):
                        data[name] = build(policy, data[name], field=f"ClientConfig.{name}")
            for name, switchable in (("breaker", BreakerPolicy), ("budget", BudgetPolicy)):
                if name in data:
                    value = data[name]
                    with _under(name):
                        data[name] = (
                            None
                            if value is None or value is False
                            else build(switchable, None if value is True else value, field=f"ClientConfig.{name}")
                        )
            if "auth" in data:
                with _under("auth"):
                    data["auth"] = auth_from_mapping(data["auth"])
            for name in ("idempotency_methods", "redact_query_params"):
                if name in data:
                    data[name] = frozenset(_strings("ClientConfig", name, data[name]))
            return cls(**data)

    @classmethod
    def from_env(cls, prefix: str, *, environ: Mapping[str, str] | None = None, **values: Any) -> ClientConfig:
        """Build from ``values`` (as :meth:`from_mapping`), overridden by ``{PREFIX}_*`` environment variables.

        Read: ``_BASE_URL``; ``_TIMEOUT`` (all four phases) and ``_CONNECT_TIMEOUT``, ``_READ_TIMEOUT``,
        ``_WRITE_TIMEOUT``, ``_POOL_TIMEOUT``; ``_DEADLINE`` (seconds, or ``none``); ``_MAX_ATTEMPTS``. ``name``
        defaults to the prefix in lower case. A malformed value is a :class:`ConfigurationError` naming the variable.
        """
        env = os.environ if environ is None else environ
        stem = prefix.upper().rstrip("_")
        if not stem:
            raise ConfigurationError("ClientConfig.from_env: the prefix must not be empty")
        data = dict(values)
        data.setdefault("name", stem.lower())
        if base_url := env.get(f"{stem}_BASE_URL"):
            data["base_url"] = base_url
        timeouts = Timeouts.coerce(data.get("timeouts"))
        if (all_phases := _env_number(env, f"{stem}_TIMEOUT", float)) is not None:
            timeouts = Timeouts.coerce(all_phases)
        phases = {
            phase: value
            for phase in ("connect", "read", "write", "pool")
            if (value := _env_number(env, f"{stem}_{phase.upper()}_TIMEOUT", float)) is not None
        }
        data["timeouts"] = Timeouts.coerce({**{f.name: getattr(timeouts, f.name) for f in fields(timeouts)}, **phases})
        deadline_name = f"{stem}_DEADLINE"
        if env.get(deadline_name, "").strip().lower() in ("none", "off"):
            data["deadline"] = None
        elif (deadline := _env_number(env, deadline_name, float)) is not None:
            data["deadline"] = deadline
        if (attempts := _env_number(env, f"{stem}_MAX_ATTEMPTS", int)) is not None:
            retry = build(RetryPolicy, data.get("retry"))
            data["retry"] = {**{f.name: getattr(retry, f.name) for f in fields(retry)}, "max_attempts": attempts}
        return cls.from_mapping(data)


@contextmanager
def _under(prefix: str) -> Iterator[None]:
    """A ConfigurationError raised inside names its field under ``prefix`` (the key the user wrote)."""
    try:
        yield
    except ConfigurationError as exc:
        raise exc.under(prefix) from None


@contextmanager
def _configuration_errors() -> Iterator[None]:
    """Re-raise a policy's ValueError as the ConfigurationError a client's settings promise."""
    try:
        yield
    except ConfigurationError:
        raise
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


def _env_number(env: Mapping[str, str], name: str, kind: type[float] | type[int]) -> Any:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return None
    try:
        return kind(raw.strip())
    except ValueError:
        raise ConfigurationError(f"environment variable {name!r} must be a number, got {raw!r}") from None


def _strings(owner: str, name: str, values: object) -> list[str]:
    """``values`` as a list of strings; a lone string (``"POST"``) or anything else is an error naming the field."""
    if isinstance(values, str) or not isinstance(values, Collection):
        hint = f" (write [{values!r}])" if isinstance(values, str) else ""
        raise ConfigurationError(f"{owner}.{name} must be a collection of strings{hint}, got {values!r}", field=name)
    for index, value in enumerate(values):
        if not isinstance(value, str):
            where = f"{name}[{index}]" if isinstance(values, Sequence) else name
            raise ConfigurationError(f"{owner}.{name} must be a collection of strings, got {values!r}", field=where)
    return list(values)


def _token(owner: str, name: str, value: str) -> str:
    if not value or not all(c.isalnum() or c in "!#$%&'*+-.^_`|~" for c in value) or not value.isascii():
        raise ConfigurationError(f"{owner}.{name}: {value!r} is not an HTTP token", field=name)
    return value
