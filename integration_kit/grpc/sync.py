"""The sync resilient channel: :class:`ResilientChannel`, the twin of
:class:`~integration_kit.grpc.channel.AsyncResilientChannel` over a ``grpc`` channel.

Every shape runs under the engine through the pieces the async channel uses (:class:`~integration_kit.grpc.rpc.Rpc`
for each attempt's metadata, timeout, outcome and transparent resends, :class:`~integration_kit.grpc.replay.Replay`
for a client stream's buffer, :meth:`~integration_kit.grpc.core.ChannelCore._broken` for a committed stream's
failure); only the waiting differs. A server-streaming (or bidirectional) call is opened and retried until it
commits when it is made, not when it is first iterated, and its requests (for a client or bidirectional stream)
must be a sync iterable. Hedging and health-checked probes are the async channel's (they wait on several things
at once).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any, cast

import grpc

from integration_kit.engine.actions import Send, run_sync
from integration_kit.errors import IntegrationError
from integration_kit.grpc.core import ChannelCore
from integration_kit.grpc.replay import Replay
from integration_kit.grpc.rpc import MAX_TRANSPARENT, Rpc
from integration_kit.policies.outcome import Outcome

__all__ = ["ResilientChannel"]

_END = object()  # a committed stream that ended without a message


class ResilientChannel(ChannelCore):
    """The sync twin of :class:`AsyncResilientChannel` (same arguments), over a ``grpc`` channel: unary,
    server-streaming, client-streaming and bidirectional methods under the engine (see the module)."""

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

    def unary_stream(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Callable[[bytes], Any] | None = None,
        _registered_method: bool | None = False,
    ) -> _UnaryStream:
        """A multicallable for a server-streaming method, retried until it commits (its first message)."""
        inner = self._channel.unary_stream(method, request_serializer, response_deserializer)
        return _UnaryStream(self, method, inner)

    def stream_unary(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Callable[[bytes], Any] | None = None,
        _registered_method: bool | None = False,
    ) -> _StreamUnary:
        """A multicallable for a client-streaming method: its requests are buffered up to ``retry_buffer`` bytes."""
        inner = self._channel.stream_unary(method, request_serializer, response_deserializer)
        return _StreamUnary(self, method, inner)

    def stream_stream(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Callable[[bytes], Any] | None = None,
        _registered_method: bool | None = False,
    ) -> _UnaryStream:
        """A multicallable for a bidirectional method, retried with its buffered requests until it commits."""
        inner = self._channel.stream_stream(method, request_serializer, response_deserializer)
        return _UnaryStream(self, method, inner, streaming=True)

    def _run(self, rpc: Rpc, attempt: Callable[[Send], Outcome]) -> Outcome:
        try:
            return run_sync(rpc.calls, attempt, self.clock.sleep)
        except IntegrationError as exc:
            ended = self._ended(exc)  # exc, or the DeadlineExceeded it ended on, caused by the attempt's error
            raise ended from ended.__cause__

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
        rpc = self._channel._begin(self._plan, request, timeout, metadata)
        return self._channel._run(rpc, functools.partial(self._send, rpc, kwargs)).value

    def _send(self, rpc: Rpc, kwargs: Mapping[str, Any], action: Send) -> Outcome:
        clock = self._channel.clock
        started = clock.now()
        timeout = rpc.timeout(action)
        for _ in range(MAX_TRANSPARENT + 1):
            try:
                response = self._inner(rpc.request, timeout=timeout, metadata=rpc.attempt_metadata(action), **kwargs)
            except grpc.RpcError as exc:
                outcome = rpc.failed(exc)
                timeout = rpc.timeout(action, clock.now() - started)  # a resend has only what is left
                if rpc.resend(outcome, timeout):
                    continue
                return outcome
            return rpc.answered(response)
        return outcome


class _UnaryStream:
    """``stub.Method(request)`` for a server stream (or, ``streaming=True``, ``stub.Method(request_iterator)`` for
    a bidirectional one): an iterator of the responses, opened under the engine until it commits."""

    def __init__(self, channel: ResilientChannel, method: str, inner: Any, *, streaming: bool = False) -> None:
        self._channel = channel
        self._inner = inner
        self._plan = channel._plan(method, hedged=False)
        self._streaming = streaming

    def __call__(
        self, request: object, timeout: float | None = None, metadata: Any = None, **kwargs: Any
    ) -> Iterator[Any]:
        if self._streaming:
            request = Replay(cast("Any", request), self._channel.retry_buffer, sync=True)
        rpc = self._channel._begin(self._plan, request, timeout, metadata)
        call, first = cast("tuple[Any, Any]", self._channel._run(rpc, functools.partial(self._open, rpc, kwargs)).value)
        return self._rest(rpc, call, first)

    def _open(self, rpc: Rpc, kwargs: Mapping[str, Any], action: Send) -> Outcome:
        """One attempt: open the stream and wait for the commit (its first message or its end)."""
        replay = rpc.request if isinstance(rpc.request, Replay) else None
        request = rpc.request if replay is None else replay.iter_messages()
        call = self._inner(request, timeout=rpc.timeout(action), metadata=rpc.attempt_metadata(action), **kwargs)
        try:
            first = next(call, _END)
        except grpc.RpcError as exc:
            call.cancel()
            return rpc.failed(exc) if replay is None else replay.failed(rpc.failed(exc))
        return rpc.answered((call, first))

    def _rest(self, rpc: Rpc, call: Any, first: Any) -> Iterator[Any]:
        try:
            if first is _END:
                return
            yield first
            yield from call
        except grpc.RpcError as exc:  # after the commit: raised as it comes, never retried
            raise self._channel._broken(rpc, exc) from None
        finally:
            call.cancel()


class _StreamUnary:
    """``stub.Method(request_iterator)`` for a client stream: retried with its buffered requests until it commits."""

    def __init__(self, channel: ResilientChannel, method: str, inner: grpc.StreamUnaryMultiCallable[Any, Any]) -> None:
        self._channel = channel
        self._inner = inner
        self._plan = channel._plan(method, hedged=False)

    def __call__(self, request_iterator: Any, timeout: float | None = None, metadata: Any = None, **kwargs: Any) -> Any:
        replay = Replay(request_iterator, self._channel.retry_buffer, sync=True)
        rpc = self._channel._begin(self._plan, replay, timeout, metadata)
        return self._channel._run(rpc, functools.partial(self._send, rpc, kwargs)).value

    def _send(self, rpc: Rpc, kwargs: Mapping[str, Any], action: Send) -> Outcome:
        replay = cast("Replay", rpc.request)
        request = replay.iter_messages()
        try:
            response = self._inner(
                request, timeout=rpc.timeout(action), metadata=rpc.attempt_metadata(action), **kwargs
            )
        except grpc.RpcError as exc:
            return replay.failed(rpc.failed(exc))
        return rpc.answered(response)
