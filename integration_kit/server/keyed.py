"""``@idempotent``: the idempotency guard around a plain sync or async function, such as a queue consumer."""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar, cast

from integration_kit.clock import Clock
from integration_kit.server.idempotency import (
    DEFAULT_LEASE,
    DEFAULT_TTL,
    Claim,
    IdempotencyGuard,
    IdempotencyRecord,
    store_call,
)
from integration_kit.stores.base import Store

__all__ = ["idempotent"]

_P = ParamSpec("_P")
_R = TypeVar("_R")


def idempotent(
    store: Store,
    *,
    key: str | Callable[..., str],
    fingerprint: Callable[..., str] | None = None,
    ttl: float = DEFAULT_TTL,
    lease: float = DEFAULT_LEASE,
    dumps: Callable[[Any], bytes | str] = json.dumps,
    loads: Callable[[bytes], Any] = json.loads,
    clock: Clock | None = None,
) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Make a function (sync or async), such as a queue consumer, run once per key; repeats return the first result.

    ``key`` is a callable given the function's arguments, or the name of an attribute (or mapping item) of the
    first argument, e.g. ``key="message_id"``. ``fingerprint``, given the same arguments, tells a redelivery
    from a different message that reuses a key (then :class:`~integration_kit.server.errors.IdempotencyKeyReused`); by
    default keys are trusted. A duplicate while the first run is in flight raises
    :class:`~integration_kit.server.errors.RequestInFlight` (a consumer should requeue it). Results are stored with
    ``dumps`` and returned from ``loads`` (JSON by default). An exception releases the key so a redelivery runs.
    """
    guard = IdempotencyGuard(store, ttl=ttl, lease=lease, clock=clock, namespace="idempotent:")
    key_of = key if callable(key) else functools.partial(_key_from_first_argument, key)

    def decorate(fn: Callable[_P, _R]) -> Callable[_P, _R]:
        keyed = _KeyedRun(guard, f"{fn.__module__}.{fn.__qualname__}:", key_of, fingerprint, dumps)
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: _P.args, **kwargs: _P.kwargs) -> Any:
                begun = await store_call(store, keyed.begin, args, kwargs)
                if isinstance(begun, IdempotencyRecord):
                    return loads(begun.result)
                try:
                    result = await cast(Callable[_P, Awaitable[Any]], fn)(*args, **kwargs)
                except Exception:
                    await store_call(store, guard.release, begun)
                    raise
                return await store_call(store, keyed.finish, begun, result)

            return cast(Callable[_P, _R], run_async)

        @functools.wraps(fn)
        def run_sync(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            begun = keyed.begin(args, kwargs)
            if isinstance(begun, IdempotencyRecord):
                return cast(_R, loads(begun.result))
            try:
                result = fn(*args, **kwargs)
            except Exception:
                guard.release(begun)
                raise
            return cast(_R, keyed.finish(begun, result))

        return run_sync

    return decorate


@dataclass(frozen=True, slots=True)
class _KeyedRun:
    """The store steps of one decorated function, shared by its sync and async wrappers."""

    guard: IdempotencyGuard
    prefix: str
    key_of: Callable[..., str]
    fingerprint: Callable[..., str] | None
    dumps: Callable[[Any], bytes | str]

    def begin(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Claim | IdempotencyRecord:
        """Claim the call's key, or get its completed record."""
        fp = self.fingerprint(*args, **kwargs) if self.fingerprint is not None else ""
        return self.guard.begin(self.prefix + str(self.key_of(*args, **kwargs)), fp)

    def finish(self, claim: Claim, result: Any) -> Any:
        """Store ``result`` under the claimed key and return it."""
        encoded = self.dumps(result)
        self.guard.complete(claim, encoded.encode() if isinstance(encoded, str) else encoded)
        return result


def _key_from_first_argument(name: str, *args: Any, **kwargs: Any) -> str:
    """The ``name`` attribute (or item, for a mapping) of the first positional argument."""
    if not args:
        raise TypeError(f"idempotent(key={name!r}) needs the message as the first positional argument")
    first = args[0]
    value = first[name] if isinstance(first, Mapping) else getattr(first, name)
    return str(value)
