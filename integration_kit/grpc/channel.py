"""Resilient gRPC channels: :class:`AsyncResilientChannel` (``grpc.aio``) and :class:`ResilientChannel` (sync).

Either one stands where a grpcio channel stands, so a generated stub runs every RPC under the call engine::

    channel = AsyncResilientChannel("inventory.internal:443", service_config=config_json)
    stub = inventory_pb2_grpc.InventoryStub(channel)
    item = await stub.GetItem(GetItemRequest(sku="A1"), timeout=2.0)

For each call, the engine of the method's service (one circuit breaker and one bulkhead per service, or per method
with ``breaker_scope="method"``) applies the method's policy from the service config (see
:mod:`integration_kit.grpc.config`): retries with jittered backoff or server pushback, the channel's retry budget
(``retryThrottling``, gRFC A6's token bucket), and one deadline over all attempts, the stub's ``timeout`` or else
the config's: each attempt is sent with what is left of it as its gRPC ``timeout``, never more.

What may be repeated follows the method's idempotency level (``idempotency={"/pkg.Svc/Method": "IDEMPOTENT"}``,
or the ``idempotency_level`` options of a service descriptor given as ``descriptors=``): a method with
``NO_SIDE_EFFECTS`` or ``IDEMPOTENT`` is retried on the codes its policy lists; any other method is retried only
when the attempt provably never reached the server (no connection, a refused stream), or when the caller's
metadata carries its request id (``request_id_key``, default ``x-request-id``), which the server uses to
deduplicate. Hedging (A6 ``hedgingPolicy``) applies only to idempotent methods (see
:mod:`integration_kit.grpc.hedging`).

A server-streaming call is retried until it commits: once its first message (or its end) has arrived, a failure is
raised to the caller as it comes. A client-streaming call is retried with its buffered requests until they pass
``retry_buffer`` bytes, when it commits (:mod:`integration_kit.grpc.replay`). Bidirectional methods are passed to
grpcio as they are.
"""

from __future__ import annotations

import dataclasses
import functools
import random
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple, cast

import anyio
import grpc
import grpc.aio
from google.protobuf.descriptor import ServiceDescriptor

from integration_kit.clock import AsyncClock, Clock, SystemClock, time_scale_of
from integration_kit.engine.actions import Send, run_async, run_sync
from integration_kit.engine.call import CallEngine
from integration_kit.errors import ConfigurationError, IntegrationError
from integration_kit.events import Hook
from integration_kit.grpc.config import HedgingPolicy, Idempotency, MethodConfig, ServiceConfig
from integration_kit.grpc.hedging import hedge
from integration_kit.grpc.replay import BUFFER_LIMIT, Replay
from integration_kit.grpc.rpc import MAX_TRANSPARENT, Metadata, Rpc, as_deadline
from integration_kit.grpc.security import MetadataCredential, channel_credentials
from integration_kit.grpc.status import is_refused_stream, verdict
from integration_kit.policies.breaker import CircuitBreaker
from integration_kit.policies.budget import RetryBudget
from integration_kit.policies.config import BreakerPolicy, Limits, RetryPolicy
from integration_kit.policies.outcome import Outcome

__all__ = ["AsyncResilientChannel", "ResilientChannel"]

_IDEMPOTENCY_OPTION = {0: Idempotency.UNKNOWN, 1: Idempotency.NO_SIDE_EFFECTS, 2: Idempotency.IDEMPOTENT}
_NO_CORE_RETRIES = ("grpc.enable_retries", 0)
_END = object()
_EOF: object = grpc.aio.EOF  # type: ignore[attr-defined]  # what read() returns at a stream's end  # a committed stream that ended without a message


class _Plan(NamedTuple):
    """What every call of one method shares."""

    method: str
    config: MethodConfig
    safe: bool
    hedging: HedgingPolicy | None
    retry: bool | RetryPolicy
    limit: float | None
    engine: CallEngine
    target: str


class _ChannelCore:
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
        # The kit retries; grpc-core's own retries would multiply the attempts, and while they are on grpc-core
        # drops the grpc-previous-rpc-attempts metadata the kit sends (grpcio 1.85).
        self._options = (
            [*options] if any(k == "grpc.enable_retries" for k, _ in options) else [*options, _NO_CORE_RETRIES]
        )
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

    def _plan(self, method: str, hedged: bool) -> _Plan:
        """What every call of ``method`` shares (its config, safety, policy, engine, target), worked out once."""
        config = self.config.method(method)
        safe = self.idempotency(method).safe
        hedging = config.hedging if hedged and safe else None
        # gRFC A6: a method has one policy or the other; with hedges, they are the repeats
        retry: bool | RetryPolicy = config.retry if config.retry is not None and hedging is None else False
        limit = config.timeout if config.timeout is not None else self._deadline
        target = f"{self._scheme}://{self.target}/{method.lstrip('/')}"
        return _Plan(method, config, safe, hedging, retry, limit, self.engine(method), target)

    def _begin(self, plan: _Plan, request: object, timeout: float | None, metadata: Any) -> Rpc:
        """Start the engine for one call of ``plan``'s method."""
        caller: Metadata = tuple(metadata) if metadata else ()
        key = next((str(v) for k, v in caller if k.lower() == self._request_id_key), None) if caller else None
        calls = plan.engine.call(
            "POST",
            plan.target,
            idempotent=plan.safe,
            idempotency_key=key,
            deadline=timeout if timeout is not None else plan.limit,
            retry=plan.retry,
        )
        metadata = (*self._auth, *caller) if self._auth else caller
        return Rpc(plan.method, request, metadata, plan.config, calls, self._time_scale, self._secrets, plan.hedging)

    def _ended(self, error: IntegrationError) -> IntegrationError:
        return as_deadline(error)


class AsyncResilientChannel(_ChannelCore):
    """A ``grpc.aio`` channel whose unary and server-streaming RPCs run under the call engine (see the module).

    Arguments (all keyword but ``target``): ``service_config`` (JSON text, its mapping, or a parsed
    :class:`~integration_kit.grpc.config.ServiceConfig`); ``tls`` (default ``True``), ``root_certificates`` and
    ``allow_plaintext`` (see :mod:`integration_kit.grpc.security`); ``credential`` (a
    :class:`~integration_kit.grpc.security.MetadataCredential`, read from the environment now: a missing variable
    raises :class:`~integration_kit.errors.ConfigurationError`); ``breaker`` (a policy, one breaker per service or
    per method: ``breaker_scope``); ``limits`` (bulkhead, rate, per engine); ``deadline`` (seconds, for methods
    with no ``timeout``); ``idempotency`` and ``descriptors``; ``request_id_key``; ``retry_buffer`` (bytes of a
    client stream's requests kept for a retry, default 256 KiB as grpc-core); ``options`` (grpcio channel
    options); ``hooks``, ``clock``, ``rng`` as for the HTTP clients. Use it as an async context manager, or call
    :meth:`close`.
    """

    def __init__(self, target: str, **kwargs: Any) -> None:
        super().__init__(target, **kwargs)
        if self._credentials is None:
            self._channel = grpc.aio.insecure_channel(target, options=self._options)
        else:
            self._channel = grpc.aio.secure_channel(target, self._credentials, options=self._options)

    @property
    def channel(self) -> grpc.aio.Channel:
        """The underlying grpcio channel (its calls bypass the engine)."""
        return self._channel

    def unary_unary(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Callable[[bytes], Any] | None = None,
        _registered_method: bool | None = False,
    ) -> _AsyncUnaryUnary:
        """A multicallable for a unary method, as ``grpc.aio.Channel.unary_unary`` (generated stubs call this)."""
        inner = self._channel.unary_unary(method, request_serializer, response_deserializer)
        return _AsyncUnaryUnary(self, method, inner)

    def unary_stream(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Callable[[bytes], Any] | None = None,
        _registered_method: bool | None = False,
    ) -> _AsyncUnaryStream:
        """A multicallable for a server-streaming method, retried until it commits (its first message)."""
        inner = self._channel.unary_stream(method, request_serializer, response_deserializer)
        return _AsyncUnaryStream(self, method, inner)

    def stream_unary(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Callable[[bytes], Any] | None = None,
        _registered_method: bool | None = False,
    ) -> _AsyncStreamUnary:
        """A multicallable for a client-streaming method: its requests are buffered up to ``retry_buffer`` bytes
        so a retry resends them; past that the call commits (see :mod:`integration_kit.grpc.replay`)."""
        inner = self._channel.stream_unary(method, request_serializer, response_deserializer)
        return _AsyncStreamUnary(self, method, inner)

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """grpcio's own multicallable: bidirectional calls are not run under the engine."""
        return self._channel.stream_stream(method, *args, **kwargs)

    async def _sleep(self, seconds: float) -> None:
        clock = self.clock
        await (clock.asleep(seconds) if isinstance(clock, AsyncClock) else anyio.sleep(seconds))

    async def _run(self, rpc: Rpc, send: Callable[[Rpc, Send], Any]) -> Outcome:
        try:
            return await run_async(rpc.calls, functools.partial(send, rpc), self._sleep)
        except IntegrationError as exc:
            raise self._ended(exc) from exc.__cause__

    async def close(self, grace: float | None = None) -> None:
        """Close the underlying channel (``grace``: seconds to let calls in flight finish)."""
        await self._channel.close(grace)

    async def __aenter__(self) -> AsyncResilientChannel:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class _AsyncUnaryUnary:
    """``stub.Method(request, timeout=, metadata=)``: one logical call under the engine; returns the response."""

    def __init__(
        self, channel: AsyncResilientChannel, method: str, inner: grpc.aio.UnaryUnaryMultiCallable[Any, Any]
    ) -> None:
        self._channel = channel
        self._method = method
        self._inner = inner
        self._plan = channel._plan(method, hedged=True)

    async def __call__(
        self, request: object, *, timeout: float | None = None, metadata: Any = None, **kwargs: Any
    ) -> Any:
        rpc = self._channel._begin(self._plan, request, timeout, metadata)
        outcome = await self._channel._run(rpc, functools.partial(self._attempt, **kwargs))
        return outcome.value

    async def _attempt(self, rpc: Rpc, action: Send, **kwargs: Any) -> Outcome:
        if rpc.hedging is not None:
            return await hedge(rpc, action, self._send, self._channel.budget, self._channel.clock, kwargs)
        return await self._send(rpc, action, None, kwargs)

    async def _send(self, rpc: Rpc, action: Send, previous: int | None, kwargs: Mapping[str, Any]) -> Outcome:
        """One attempt (``previous``: attempts before it, for a hedge), resent on a refused stream."""
        started = self._channel.clock.now()
        for _ in range(MAX_TRANSPARENT + 1):
            timeout = rpc.timeout(action, self._channel.clock.now() - started)
            try:
                response = await self._inner(
                    rpc.request, timeout=timeout, metadata=rpc.attempt_metadata(action, previous), **kwargs
                )
            except grpc.aio.AioRpcError as exc:
                outcome = rpc.failed(exc)
                if is_refused_stream(outcome) and timeout != 0.0:
                    continue
                return outcome
            return rpc.answered(response)
        return outcome


class _AsyncUnaryStream:
    """``stub.Method(request, ...)`` for a server stream: an async iterator of the responses."""

    def __init__(
        self, channel: AsyncResilientChannel, method: str, inner: grpc.aio.UnaryStreamMultiCallable[Any, Any]
    ) -> None:
        self._channel = channel
        self._method = method
        self._inner = inner
        self._plan = channel._plan(method, hedged=False)

    def __call__(
        self, request: object, *, timeout: float | None = None, metadata: Any = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        return self._stream(request, timeout, metadata, kwargs)

    async def _stream(
        self, request: object, timeout: float | None, metadata: Any, kwargs: Mapping[str, Any]
    ) -> AsyncIterator[Any]:
        rpc = self._channel._begin(self._plan, request, timeout, metadata)
        outcome = await self._channel._run(rpc, functools.partial(self._open, kwargs=kwargs))
        call, first = cast("tuple[Any, Any]", outcome.value)
        if first is _END:
            return
        yield first
        try:
            while (message := await call.read()) is not _EOF:
                yield message
        except grpc.aio.AioRpcError as exc:  # after the commit: raised as it comes, never retried
            error = rpc.failed(exc).error
            assert isinstance(error, IntegrationError)
            error.with_context(integration=self._channel.name, method="POST", url=self._method)
            raise self._channel._ended(error) from None
        finally:
            call.cancel()

    async def _open(self, rpc: Rpc, action: Send, kwargs: Mapping[str, Any]) -> Outcome:
        """One attempt of the stream: open it and wait for the commit (its first message or its end)."""
        call = self._inner(rpc.request, timeout=rpc.timeout(action), metadata=rpc.attempt_metadata(action), **kwargs)
        try:
            first = await call.read()
        except grpc.aio.AioRpcError as exc:
            return rpc.failed(exc)
        return rpc.answered((call, _END if first is _EOF else first))


class _AsyncStreamUnary:
    """``stub.Method(request_iterator, ...)`` for a client stream: retried with its buffered requests until it
    commits (its buffer overflowed), then one attempt more at most."""

    def __init__(
        self, channel: AsyncResilientChannel, method: str, inner: grpc.aio.StreamUnaryMultiCallable[Any, Any]
    ) -> None:
        self._channel = channel
        self._inner = inner
        self._plan = channel._plan(method, hedged=False)

    async def __call__(
        self, request_iterator: Any, *, timeout: float | None = None, metadata: Any = None, **kwargs: Any
    ) -> Any:
        replay = Replay(request_iterator, self._channel.retry_buffer)
        rpc = self._channel._begin(self._plan, replay, timeout, metadata)
        outcome = await self._channel._run(rpc, functools.partial(self._send, kwargs=kwargs))
        return outcome.value

    async def _send(self, rpc: Rpc, action: Send, kwargs: Mapping[str, Any]) -> Outcome:
        replay = rpc.request
        assert isinstance(replay, Replay)
        try:
            response = await self._inner(
                replay.messages(), timeout=rpc.timeout(action), metadata=rpc.attempt_metadata(action), **kwargs
            )
        except grpc.aio.AioRpcError as exc:
            outcome = rpc.failed(exc)
            return dataclasses.replace(outcome, should_retry=False) if replay.committed else outcome
        return rpc.answered(response)


class ResilientChannel(_ChannelCore):
    """The sync twin of :class:`AsyncResilientChannel` for unary methods, over a ``grpc`` channel (no hedging:
    hedges run concurrently, which the async channel does). Server-streaming and the other shapes are grpcio's."""

    def __init__(self, target: str, **kwargs: Any) -> None:
        super().__init__(target, **kwargs)
        if self._credentials is None:
            self._channel = grpc.insecure_channel(target, options=self._options)
        else:
            self._channel = grpc.secure_channel(target, self._credentials, options=self._options)

    def unary_unary(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Callable[[bytes], Any] | None = None,
        _registered_method: bool | None = False,
    ) -> _UnaryUnary:
        """A multicallable for a unary method, as ``grpc.Channel.unary_unary`` (generated stubs call this)."""
        return _UnaryUnary(self, method, self._channel.unary_unary(method, request_serializer, response_deserializer))

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """grpcio's own multicallable (the async channel retries server streams until they commit)."""
        return self._channel.unary_stream(method, *args, **kwargs)

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """grpcio's own multicallable."""
        return self._channel.stream_unary(method, *args, **kwargs)

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """grpcio's own multicallable."""
        return self._channel.stream_stream(method, *args, **kwargs)

    def close(self) -> None:
        """Close the underlying channel."""
        self._channel.close()

    def __enter__(self) -> ResilientChannel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _UnaryUnary:
    """The sync multicallable: ``stub.Method(request, timeout=, metadata=)`` returns the response."""

    def __init__(self, channel: ResilientChannel, method: str, inner: grpc.UnaryUnaryMultiCallable[Any, Any]) -> None:
        self._channel = channel
        self._method = method
        self._inner = inner
        self._plan = channel._plan(method, hedged=False)

    def __call__(self, request: object, timeout: float | None = None, metadata: Any = None, **kwargs: Any) -> Any:
        channel = self._channel
        rpc = channel._begin(self._plan, request, timeout, metadata)
        try:
            outcome = run_sync(rpc.calls, functools.partial(self._send, rpc, kwargs=kwargs), channel.clock.sleep)
        except IntegrationError as exc:
            raise channel._ended(exc) from exc.__cause__
        return outcome.value

    def _send(self, rpc: Rpc, action: Send, kwargs: Mapping[str, Any]) -> Outcome:
        started = self._channel.clock.now()
        for _ in range(MAX_TRANSPARENT + 1):
            timeout = rpc.timeout(action, self._channel.clock.now() - started)
            try:
                response = self._inner(rpc.request, timeout=timeout, metadata=rpc.attempt_metadata(action), **kwargs)
            except grpc.RpcError as exc:
                outcome = rpc.failed(exc)
                if is_refused_stream(outcome) and timeout != 0.0:
                    continue
                return outcome
            return rpc.answered(response)
        return outcome


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
