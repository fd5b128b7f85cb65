"""The sync resilient channel: :class:`ResilientChannel`, the twin of
:class:`~integration_kit.grpc.channel.AsyncResilientChannel` for unary methods over a ``grpc`` channel."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import grpc

from integration_kit.engine.actions import Send, run_sync
from integration_kit.errors import IntegrationError
from integration_kit.grpc.core import ChannelCore
from integration_kit.grpc.rpc import MAX_TRANSPARENT, Rpc
from integration_kit.grpc.status import is_refused_stream
from integration_kit.policies.outcome import Outcome

__all__ = ["ResilientChannel"]


class ResilientChannel(ChannelCore):
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
