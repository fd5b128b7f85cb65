"""What the sync and async resilient channels share: validation, the engines per service, and the start of every
call (see :mod:`integration_kit.grpc.channel` for the channels themselves)."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import grpc
from google.protobuf.descriptor import ServiceDescriptor

from integration_kit.clock import Clock, SystemClock, time_scale_of
from integration_kit.engine.call import CallEngine
from integration_kit.errors import ConfigurationError, IntegrationError
from integration_kit.events import Hook
from integration_kit.grpc.config import HedgingPolicy, Idempotency, MethodConfig, ServiceConfig
from integration_kit.grpc.replay import BUFFER_LIMIT
from integration_kit.grpc.rpc import ENGINE_METHOD, Metadata, Rpc, as_deadline, told
from integration_kit.grpc.security import MetadataCredential, channel_credentials
from integration_kit.grpc.status import verdict
from integration_kit.policies.breaker import CircuitBreaker
from integration_kit.policies.budget import RetryBudget
from integration_kit.policies.config import BreakerPolicy, Limits, RetryPolicy

__all__ = ["ChannelCore", "Plan"]

_IDEMPOTENCY_OPTION = {0: Idempotency.UNKNOWN, 1: Idempotency.NO_SIDE_EFFECTS, 2: Idempotency.IDEMPOTENT}
_NO_CORE_RETRIES = ("grpc.enable_retries", 0)
_SERVICE_CONFIG = "grpc.service_config"


class Plan(NamedTuple):
    """What every call of one method shares."""

    method: str
    config: MethodConfig
    safe: bool
    hedging: HedgingPolicy | None
    retry: bool | RetryPolicy
    limit: float | None
    engine: CallEngine
    target: str


class ChannelCore:
    """What both channels share: validation, the engines, and the start of every call."""

    def __init__(
        self,
        target: str,
        *,
        name: str = "grpc",
        service_config: str | Mapping[str, Any] | ServiceConfig | None = None,
        tls: bool = True,
        root_certificates: bytes | None = None,
        allow_plaintext: bool = False,
        credential: MetadataCredential | None = None,
        breaker: BreakerPolicy | None = None,
        breaker_scope: str = "service",
        limits: Limits | None = None,
        deadline: float | None = None,
        idempotency: Mapping[str, Idempotency | str] | None = None,
        descriptors: Iterable[ServiceDescriptor] = (),
        request_id_key: str = "x-request-id",
        retry_buffer: int = BUFFER_LIMIT,
        health_checks: bool = False,
        options: Sequence[tuple[str, Any]] = (),
        hooks: Iterable[Hook] = (),
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if breaker_scope not in ("service", "method"):
            raise ConfigurationError(
                f"breaker_scope must be 'service' or 'method', got {breaker_scope!r}", field="breaker_scope"
            )
        self.target = target
        self.name = name
        self.config = (
            service_config if isinstance(service_config, ServiceConfig) else ServiceConfig.parse(service_config)
        )
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._scheme = "grpcs" if tls else "grpc"
        self._credentials = channel_credentials(
            target, tls=tls, allow_plaintext=allow_plaintext, root_certificates=root_certificates
        )
        entry = credential.load() if credential is not None else None
        self._auth: Metadata = (entry,) if entry is not None else ()
        self._secrets: tuple[str, ...] = (entry[1], entry[1].split(" ")[-1]) if entry is not None else ()
        self._breaker_policy = breaker
        self._breaker_scope = breaker_scope
        self._limits = limits
        self._deadline = deadline
        self._levels = _levels(idempotency or {}, descriptors)
        self._request_id_key = request_id_key.lower()
        self.retry_buffer = retry_buffer
        self.health_checks = health_checks
        # The kit retries; grpc-core's own retries would multiply the attempts, and while they are on grpc-core
        # drops the grpc-previous-rpc-attempts metadata the kit sends (grpcio 1.85).
        self._options = (
            [*options] if any(k == "grpc.enable_retries" for k, _ in options) else [*options, _NO_CORE_RETRIES]
        )
        # The fields the kit leaves to grpcio (waitForReady, message limits, load balancing, health checking) act
        # only if grpcio reads the same config; with its retries off, it does not repeat what the kit retries.
        if not any(k == _SERVICE_CONFIG for k, _ in options):
            self._options.append((_SERVICE_CONFIG, self.config.source))
        self._hooks: list[Hook] = list(hooks)
        self._rng = rng if rng is not None else random.Random()
        throttling = self.config.throttling
        self.budget = RetryBudget(throttling) if throttling is not None else None
        self._engines: dict[str, CallEngine] = {}
        self._time_scale = time_scale_of(self.clock)

    # -- public surface -------------------------------------------------------------------------------------

    def add_hook(self, hook: Hook) -> None:
        """Send every later event of every method's engine to ``hook`` as well."""
        self._hooks.append(hook)
        for engine in self._engines.values():
            engine.add_hook(hook)

    def engine(self, method: str) -> CallEngine:
        """The engine ``method`` (``/package.Service/Method``) runs under: one per service (or per method)."""
        service = method.lstrip("/").partition("/")[0]
        key = method if self._breaker_scope == "method" else service
        engine = self._engines.get(key)
        if engine is None:
            policy = self._breaker_policy
            engine = CallEngine(
                name=self.name,
                breaker=CircuitBreaker(policy, name=key, clock=self.clock) if policy is not None else None,
                budget=self.budget,
                limits=self._limits,
                deadline=self._deadline,
                classifier=verdict,
                clock=self.clock,
                rng=self._rng,
                hooks=self._hooks,
            )
            self._engines[key] = engine
        return engine

    @property
    def breakers(self) -> dict[str, CircuitBreaker]:
        """The circuit breakers made so far, by service (or method) name."""
        return {key: engine.breaker for key, engine in self._engines.items() if engine.breaker is not None}

    def idempotency(self, method: str) -> Idempotency:
        """The idempotency level of ``method`` (``IDEMPOTENCY_UNKNOWN`` unless configured or described)."""
        return self._levels.get(method.lstrip("/"), Idempotency.UNKNOWN)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, target={self.target!r})"

    # -- shared machinery -----------------------------------------------------------------------------------

    def _plan(self, method: str, hedged: bool) -> Plan:
        """What every call of ``method`` shares (its config, safety, policy, engine, target), worked out once."""
        config = self.config.method(method)
        safe = self.idempotency(method).safe
        hedging = config.hedging if hedged and safe else None
        # gRFC A6: a method has one policy or the other; with hedges, they are the repeats
        retry: bool | RetryPolicy = config.retry if config.retry is not None and hedging is None else False
        limit = config.timeout if config.timeout is not None else self._deadline
        return Plan(method, config, safe, hedging, retry, limit, self.engine(method), self._url(method))

    def _url(self, method: str) -> str:
        """The URL errors and events name ``method``'s calls by (``grpcs://host:port/package.Service/Method``)."""
        return f"{self._scheme}://{self.target}/{method.lstrip('/')}"

    def _begin(self, plan: Plan, request: object, timeout: float | None, metadata: Any) -> Rpc:
        """Start the engine for one call of ``plan``'s method."""
        caller: Metadata = tuple(metadata) if metadata else ()
        key = next((str(v) for k, v in caller if k.lower() == self._request_id_key), None) if caller else None
        calls = plan.engine.call(
            ENGINE_METHOD,
            plan.target,
            idempotent=plan.safe,
            idempotency_key=key,
            deadline=timeout if timeout is not None else plan.limit,
            retry=plan.retry,
        )
        metadata = (*self._auth, *caller) if self._auth else caller
        return Rpc(
            plan.method, request, metadata, plan.config, calls, self._time_scale, self._secrets, plan.hedging,
            plan.engine.breaker,
        )  # fmt: skip

    def _ended(self, error: IntegrationError) -> IntegrationError:
        return as_deadline(told(error))

    def _broken(self, rpc: Rpc, exc: grpc.RpcError) -> IntegrationError:
        """The error a committed stream of ``rpc`` ends with when ``exc`` breaks it (raised as it comes: never
        retried; the caller resumes, e.g. from its last cursor)."""
        error = rpc.failed(exc).error
        if not isinstance(error, IntegrationError):
            raise TypeError(f"no typed error for {exc!r}")
        error.with_context(integration=self.name, url=self._url(rpc.method))
        return self._ended(error)


def _levels(
    idempotency: Mapping[str, Idempotency | str], descriptors: Iterable[ServiceDescriptor]
) -> dict[str, Idempotency]:
    """Idempotency levels by ``package.Service/Method``: the descriptors' options, then the explicit mapping."""
    levels: dict[str, Idempotency] = {}
    for service in descriptors:
        for method in service.methods:
            option = method.GetOptions().idempotency_level
            levels[f"{service.full_name}/{method.name}"] = _IDEMPOTENCY_OPTION.get(option, Idempotency.UNKNOWN)
    for name, level in idempotency.items():
        try:
            levels[name.lstrip("/")] = level if isinstance(level, Idempotency) else Idempotency(level)
        except ValueError:
            choices = ", ".join(i.value for i in Idempotency)
            raise ConfigurationError(
                f"idempotency[{name!r}] must be one of {choices}, got {level!r}", field=f"idempotency.{name}"
            ) from None
    return levels
