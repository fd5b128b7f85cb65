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
``retry_buffer`` bytes, when it commits (:mod:`integration_kit.grpc.replay`). A bidirectional call is both: retried
with its buffered requests until its first response arrives or the buffer overflows. The sync
:class:`ResilientChannel` runs the same shapes through the same pieces (:class:`~integration_kit.grpc.rpc.Rpc`,
:class:`~integration_kit.grpc.replay.Replay`, the engine); only the awaiting differs.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, cast

import anyio
import grpc
import grpc.aio

from integration_kit.clock import AsyncClock
from integration_kit.engine.actions import Send, run_async
from integration_kit.errors import IntegrationError
from integration_kit.events import CircuitState
from integration_kit.grpc.core import ChannelCore
from integration_kit.grpc.health import check_health
from integration_kit.grpc.hedging import hedge
from integration_kit.grpc.replay import Replay
from integration_kit.grpc.rpc import MAX_TRANSPARENT, Rpc
from integration_kit.grpc.sync import ResilientChannel
from integration_kit.policies.outcome import Outcome

__all__ = ["AsyncResilientChannel", "ResilientChannel"]

_END = object()  # a committed stream that ended without a message
_EOF: object = grpc.aio.EOF  # type: ignore[attr-defined]  # what read() returns at a stream's end


class AsyncResilientChannel(ChannelCore):
    """A ``grpc.aio`` channel whose unary and server-streaming RPCs run under the call engine (see the module).

    Arguments (all keyword but ``target``): ``service_config`` (JSON text, its mapping, or a parsed
    :class:`~integration_kit.grpc.config.ServiceConfig`); ``tls`` (default ``True``), ``root_certificates`` and
    ``allow_plaintext`` (see :mod:`integration_kit.grpc.security`); ``credential`` (a
    :class:`~integration_kit.grpc.security.MetadataCredential`, read from the environment now: a missing variable
    raises :class:`~integration_kit.errors.ConfigurationError`); ``breaker`` (a policy, one breaker per service or
    per method: ``breaker_scope``); ``limits`` (bulkhead, rate, per engine); ``deadline`` (seconds, for methods
    with no ``timeout``); ``idempotency`` and ``descriptors``; ``request_id_key``; ``retry_buffer`` (bytes of a
    client stream's requests kept for a retry, default 256 KiB as grpc-core); ``health_checks`` (a half-open
    breaker's probe first asks ``grpc.health.v1``, see :mod:`integration_kit.grpc.health`); ``options`` (grpcio
    channel options); ``hooks``, ``clock``, ``rng`` as for the HTTP clients. Use it as an async context manager, or call
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

    def stream_stream(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Callable[[bytes], Any] | None = None,
        _registered_method: bool | None = False,
    ) -> _AsyncUnaryStream:
        """A multicallable for a bidirectional method: ``stub.Method(request_iterator)`` is an async iterator of the
        responses, retried with its buffered requests until it commits (its first response, or ``retry_buffer``
        bytes of requests)."""
        inner = self._channel.stream_stream(method, request_serializer, response_deserializer)
        return _AsyncUnaryStream(self, method, inner, streaming=True)

    async def _gate(self, rpc: Rpc, action: Send) -> Outcome | None:
        """With ``health_checks``, a half-open breaker's probe first asks the health service (see
        :mod:`integration_kit.grpc.health`): ``None`` lets the attempt go, else it is its failed outcome."""
        breaker = rpc.breaker
        if not self.health_checks or breaker is None or breaker.state is not CircuitState.HALF_OPEN:
            return None
        return await check_health(self._channel, rpc.service, rpc.timeout(action))

    async def _sleep(self, seconds: float) -> None:
        clock = self.clock
        await (clock.asleep(seconds) if isinstance(clock, AsyncClock) else anyio.sleep(seconds))

    async def _run(self, rpc: Rpc, attempt: Callable[[Send], Awaitable[Outcome]]) -> Outcome:
        try:
            return await run_async(rpc.calls, attempt, self._sleep)
        except IntegrationError as exc:
            ended = self._ended(exc)  # exc, or the DeadlineExceeded it ended on, caused by the attempt's error
            raise ended from ended.__cause__

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
        self._plan = plan = channel._plan(method, hedged=True)
        # the hot path: with no hedging and no health checks, each attempt is one send (no coroutine in between)
        self._direct = plan.hedging is None and not channel.health_checks

    async def __call__(
        self, request: object, *, timeout: float | None = None, metadata: Any = None, **kwargs: Any
    ) -> Any:
        rpc = self._channel._begin(self._plan, request, timeout, metadata)
        if self._direct:
            attempt = functools.partial(self._send, rpc, kwargs, None)
        else:
            attempt = functools.partial(self._attempt, rpc, kwargs)
        outcome = await self._channel._run(rpc, attempt)
        return outcome.value

    async def _attempt(self, rpc: Rpc, kwargs: Mapping[str, Any], action: Send) -> Outcome:
        channel = self._channel
        if (unhealthy := await channel._gate(rpc, action)) is not None:
            return unhealthy
        if rpc.hedging is not None:
            return await hedge(rpc, action, self._send, channel.budget, channel.clock, kwargs)
        return await self._send(rpc, kwargs, None, action)

    async def _send(self, rpc: Rpc, kwargs: Mapping[str, Any], previous: int | None, action: Send) -> Outcome:
        """One attempt (``previous``: attempts before it, for a hedge), resent on a refused stream."""
        clock = self._channel.clock
        started = clock.now()
        timeout = rpc.timeout(action)
        for _ in range(MAX_TRANSPARENT + 1):
            try:
                response = await self._inner(
                    rpc.request, timeout=timeout, metadata=rpc.attempt_metadata(action, previous), **kwargs
                )
            except grpc.aio.AioRpcError as exc:
                outcome = rpc.failed(exc)
                timeout = rpc.timeout(action, clock.now() - started)  # a resend has only what is left
                if rpc.resend(outcome, timeout):
                    continue
                return outcome
            return rpc.answered(response)
        return outcome


class _AsyncUnaryStream:
    """``stub.Method(request, ...)`` for a server stream: an async iterator of the responses. With
    ``streaming=True``, a bidirectional stream: ``request`` is the request iterator, buffered as a client
    stream's (:class:`~integration_kit.grpc.replay.Replay`), and the call commits at its first response or when
    the buffer overflows."""

    def __init__(
        self,
        channel: AsyncResilientChannel,
        method: str,
        inner: grpc.aio.UnaryStreamMultiCallable[Any, Any] | grpc.aio.StreamStreamMultiCallable[Any, Any],
        *,
        streaming: bool = False,
    ) -> None:
        self._channel = channel
        self._method = method
        self._inner: Any = inner
        self._plan = channel._plan(method, hedged=False)
        self._streaming = streaming

    def __call__(
        self, request: object, *, timeout: float | None = None, metadata: Any = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        return self._stream(request, timeout, metadata, kwargs)

    async def _stream(
        self, request: object, timeout: float | None, metadata: Any, kwargs: Mapping[str, Any]
    ) -> AsyncIterator[Any]:
        if self._streaming:
            request = Replay(cast("Any", request), self._channel.retry_buffer)
        rpc = self._channel._begin(self._plan, request, timeout, metadata)
        outcome = await self._channel._run(rpc, functools.partial(self._open, rpc, kwargs=kwargs))
        call, first = cast("tuple[Any, Any]", outcome.value)
        try:
            if first is _END:
                return
            yield first
            while (message := await call.read()) is not _EOF:
                yield message
        except grpc.aio.AioRpcError as exc:  # after the commit: raised as it comes, never retried
            raise self._channel._broken(rpc, exc) from None
        finally:
            call.cancel()

    async def _open(self, rpc: Rpc, action: Send, kwargs: Mapping[str, Any]) -> Outcome:
        """One attempt of the stream: open it and wait for the commit (its first message or its end)."""
        if (unhealthy := await self._channel._gate(rpc, action)) is not None:
            return unhealthy
        replay = rpc.request if isinstance(rpc.request, Replay) else None
        request = rpc.request if replay is None else replay.messages()
        call = self._inner(request, timeout=rpc.timeout(action), metadata=rpc.attempt_metadata(action), **kwargs)
        try:
            first = await call.read()
        except grpc.aio.AioRpcError as exc:
            call.cancel()
            return rpc.failed(exc) if replay is None else replay.failed(rpc.failed(exc))
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
        outcome = await self._channel._run(rpc, functools.partial(self._send, rpc, kwargs=kwargs))
        return outcome.value

    async def _send(self, rpc: Rpc, action: Send, kwargs: Mapping[str, Any]) -> Outcome:
        replay = rpc.request
        assert isinstance(replay, Replay)
        if (unhealthy := await self._channel._gate(rpc, action)) is not None:
            return unhealthy
        try:
            response = await self._inner(
                replay.messages(), timeout=rpc.timeout(action), metadata=rpc.attempt_metadata(action), **kwargs
            )
        except grpc.aio.AioRpcError as exc:
            return replay.failed(rpc.failed(exc))
        return rpc.answered(response)
