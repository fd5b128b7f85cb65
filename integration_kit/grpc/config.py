"""Per-method policies from a gRPC service config (JSON, the format grpcio reads from ``grpc.service_config``).

:meth:`ServiceConfig.parse` reads the parts the kit acts on and checks them; a mistake raises
:class:`~integration_kit.errors.ConfigurationError` whose ``field`` names the place (``methodConfig[0].retryPolicy
.maxAttempts``). :meth:`ServiceConfig.method` finds a method's :class:`MethodConfig` with grpcio's name matching:
an entry naming the service and the method, else one naming only the service, else the default entry (an empty
name, ``{}``, or a name without a service).

gRFC A6 fields and what they become:

- ``timeout`` (``"1.5s"``): the call's deadline, over all its attempts;
- ``retryPolicy``: a :class:`~integration_kit.policies.config.RetryPolicy` (``maxAttempts`` capped at 5 as A6
  says, ``initialBackoff`` / ``maxBackoff`` / ``backoffMultiplier`` with full jitter, which is A6's
  ``random(0, min(initialBackoff * backoffMultiplier**(n-1), maxBackoff))``) and the method's retryable codes;
- ``hedgingPolicy``: a :class:`HedgingPolicy` (``maxAttempts`` capped at 5, ``hedgingDelay``,
  ``nonFatalStatusCodes``); a method has a retry policy or a hedging policy, never both (A6);
- ``retryThrottling``: a :class:`~integration_kit.policies.config.BudgetPolicy` (``maxTokens`` in (0, 1000],
  ``tokenRatio`` > 0), A6's token bucket, which is the kit's retry budget.

Other fields of grpc's ``ServiceConfig`` message (``loadBalancingConfig``, ``loadBalancingPolicy``,
``healthCheckConfig``, ``waitForReady``, ``maxRequestMessageBytes``, ``maxResponseMessageBytes``) are accepted and
left to grpcio, which reads the same JSON (``source``: the channel passes it as ``grpc.service_config``). Any other
key, at any level, is a misspelling (grpcio would ignore it silently): a ConfigurationError whose ``field`` names
it as written (``methodConfig[0].timout``) and whose message lists the valid keys.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import grpc

from integration_kit.errors import ConfigurationError
from integration_kit.policies.config import BudgetPolicy, RetryPolicy
from integration_kit.policies.hedging import HedgePolicy

__all__ = ["MAX_ATTEMPTS", "HedgingPolicy", "Idempotency", "MethodConfig", "ServiceConfig", "parse_duration"]

#: gRFC A6: "maxAttempts ... values greater than 5 are treated as 5".
MAX_ATTEMPTS = 5
#: How long a retry may wait for server pushback (seconds). A6 sets no bound; the call's deadline bounds it too.
MAX_PUSHBACK_WAIT = 300.0
_DURATION = re.compile(r"(?P<seconds>[0-9]+(\.[0-9]{1,9})?)s")
_CODES = {code.name: code for code in grpc.StatusCode}
_CODE_NUMBERS = {code.value[0]: code for code in grpc.StatusCode}
#: The keys of each object of a service config (grpc-proto ``grpc/service_config/service_config.proto``, in JSON
#: names). Those the kit does not act on are grpcio's to read.
_TOP_KEYS = frozenset(
    {"methodConfig", "retryThrottling", "loadBalancingConfig", "loadBalancingPolicy", "healthCheckConfig"}
)
_METHOD_KEYS = frozenset(
    {
        "name",
        "timeout",
        "retryPolicy",
        "hedgingPolicy",
        "waitForReady",
        "maxRequestMessageBytes",
        "maxResponseMessageBytes",
    }
)
_NAME_KEYS = frozenset({"service", "method"})
#: ``perAttemptRecvTimeout`` (grpc-proto's newer field) is accepted and not acted on: the kit's per-attempt limit is
#: the method's ``timeout`` and the overall deadline.
_RETRY_KEYS = frozenset(
    {
        "maxAttempts",
        "initialBackoff",
        "maxBackoff",
        "backoffMultiplier",
        "retryableStatusCodes",
        "perAttemptRecvTimeout",
    }
)
_HEDGING_KEYS = frozenset({"maxAttempts", "hedgingDelay", "nonFatalStatusCodes"})
_THROTTLING_KEYS = frozenset({"maxTokens", "tokenRatio"})


class Idempotency(Enum):
    """A method's idempotency level, as the proto option ``idempotency_level`` says it."""

    NO_SIDE_EFFECTS = "NO_SIDE_EFFECTS"
    IDEMPOTENT = "IDEMPOTENT"
    UNKNOWN = "IDEMPOTENCY_UNKNOWN"

    @property
    def safe(self) -> bool:
        """Whether repeating the call is safe (``NO_SIDE_EFFECTS`` or ``IDEMPOTENT``)."""
        return self is not Idempotency.UNKNOWN


@dataclass(frozen=True, slots=True)
class HedgingPolicy:
    """gRFC A6 hedging: up to ``max_attempts`` copies of the call, one more every ``delay`` seconds until one
    answers; a status in ``non_fatal`` lets the remaining hedges go on, any other ends the call.

    Hedges beyond the first draw on the retry budget. The kit never hedges a method that is not idempotent.
    """

    max_attempts: int
    delay: float = 0.0
    non_fatal: frozenset[grpc.StatusCode] = frozenset()

    @property
    def race(self) -> HedgePolicy:
        """The same policy for the sans-I/O race both the channel and the simulator run
        (:class:`~integration_kit.policies.hedging.HedgeRace`): non-fatal codes by number, as outcomes carry them."""
        return HedgePolicy(self.max_attempts, self.delay, frozenset(code.value[0] for code in self.non_fatal))


@dataclass(frozen=True, slots=True)
class MethodConfig:
    """What the service config says of one method: its deadline (``timeout``, seconds, ``None``: none), its
    retry policy and retryable codes (``retry`` ``None``: one attempt) or its hedging policy."""

    timeout: float | None = None
    retry: RetryPolicy | None = None
    retryable: frozenset[grpc.StatusCode] = frozenset()
    hedging: HedgingPolicy | None = None


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """The parsed service config: method entries by name, and the throttling (``None``: no retry budget).

    ``source`` is the JSON text it was parsed from, for grpcio's own ``grpc.service_config`` channel option.
    """

    entries: Mapping[tuple[str, str], MethodConfig] = field(default_factory=dict)
    throttling: BudgetPolicy | None = None
    source: str = "{}"

    @classmethod
    def parse(cls, config: str | Mapping[str, Any] | None) -> ServiceConfig:
        """Parse a service config given as JSON text or as its parsed mapping (``None``: an empty one)."""
        if config is None:
            return cls()
        if isinstance(config, str):
            try:
                data = json.loads(config)
            except ValueError as exc:
                raise ConfigurationError(f"service config: not valid JSON ({exc})") from None
            source = config
        else:
            data, source = config, json.dumps(config)
        table = _table("", data, _TOP_KEYS)
        entries: dict[tuple[str, str], MethodConfig] = {}
        for i, entry in enumerate(_list("methodConfig", table.get("methodConfig", []))):
            at = f"methodConfig[{i}]"
            method = _method_config(at, _table(at, entry, _METHOD_KEYS))
            names = _list(f"{at}.name", _table(at, entry).get("name", [{}])) or [{}]
            for j, name in enumerate(names):
                key = _name(f"{at}.name[{j}]", name)
                if key in entries:
                    raise ConfigurationError(f"{at}.name[{j}]: duplicate method name {key}", field=f"{at}.name[{j}]")
                entries[key] = method
        throttling = None
        if "retryThrottling" in table:
            throttling = _throttling("retryThrottling", table["retryThrottling"])
        return cls(entries, throttling, source)

    def method(self, full_name: str) -> MethodConfig:
        """The config of ``full_name`` (``/package.Service/Method``): exact, then the service's, then the default."""
        service, _, method = full_name.lstrip("/").partition("/")
        entries = self.entries
        return entries.get((service, method)) or entries.get((service, "")) or entries.get(("", "")) or _NONE


_NONE = MethodConfig()


def parse_duration(at: str, value: object) -> float:
    """Seconds from a protobuf JSON duration (``"1.5s"``); anything else is a ConfigurationError naming ``at``."""
    if not isinstance(value, str) or not _DURATION.fullmatch(value):
        raise ConfigurationError(f"{at} must be a duration such as '0.5s', got {value!r}", field=at)
    return float(value[:-1])


def _table(at: str, value: object, keys: frozenset[str] | None = None) -> Mapping[str, Any]:
    """``value`` as an object; with ``keys``, a key outside them is a ConfigurationError naming ``at.key``."""
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{at or 'service config'} must be an object, got {type(value).__name__}", field=at)
    if keys is not None:
        unknown = sorted(str(key) for key in value if key not in keys)
        if unknown:
            where = f"{at}.{unknown[0]}" if at else unknown[0]
            raise ConfigurationError(f"{where}: unknown key; expected one of {', '.join(sorted(keys))}", field=where)
    return value


def _list(at: str, value: object) -> Sequence[Any]:
    if not isinstance(value, list):
        raise ConfigurationError(f"{at} must be a list, got {type(value).__name__}", field=at)
    return value


def _name(at: str, value: object) -> tuple[str, str]:
    name = _table(at, value, _NAME_KEYS)
    service, method = name.get("service", ""), name.get("method", "")
    if not isinstance(service, str) or not isinstance(method, str):
        raise ConfigurationError(f"{at}: service and method must be strings", field=at)
    if method and not service:
        raise ConfigurationError(f"{at}: a method name needs its service", field=f"{at}.service")
    return service, method


def _codes(at: str, value: object) -> frozenset[grpc.StatusCode]:
    codes = set()
    for i, item in enumerate(_list(at, value)):
        code = _CODES.get(item.upper()) if isinstance(item, str) else None
        if code is None and isinstance(item, int) and not isinstance(item, bool):
            code = _CODE_NUMBERS.get(item)
        if code is None or code is grpc.StatusCode.OK:
            raise ConfigurationError(f"{at}[{i}] is not a gRPC status code, got {item!r}", field=f"{at}[{i}]")
        codes.add(code)
    return frozenset(codes)


def _attempts(at: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 2:
        raise ConfigurationError(f"{at} must be an integer > 1, got {value!r}", field=at)
    return min(value, MAX_ATTEMPTS)


def _method_config(at: str, entry: Mapping[str, Any]) -> MethodConfig:
    timeout = parse_duration(f"{at}.timeout", entry["timeout"]) if "timeout" in entry else None
    if timeout is not None and timeout <= 0:
        raise ConfigurationError(f"{at}.timeout must be > 0s, got {entry['timeout']!r}", field=f"{at}.timeout")
    if "retryPolicy" in entry and "hedgingPolicy" in entry:
        raise ConfigurationError(f"{at}: retryPolicy and hedgingPolicy exclude each other (gRFC A6)", field=at)
    if "retryPolicy" in entry:
        retry, codes = _retry(f"{at}.retryPolicy", _table(f"{at}.retryPolicy", entry["retryPolicy"], _RETRY_KEYS))
        return MethodConfig(timeout, retry, codes)
    if "hedgingPolicy" in entry:
        return MethodConfig(timeout, hedging=_hedging(f"{at}.hedgingPolicy", entry["hedgingPolicy"]))
    return MethodConfig(timeout)


def _retry(at: str, policy: Mapping[str, Any]) -> tuple[RetryPolicy, frozenset[grpc.StatusCode]]:
    for name in ("maxAttempts", "initialBackoff", "maxBackoff", "backoffMultiplier", "retryableStatusCodes"):
        if name not in policy:
            raise ConfigurationError(f"{at}.{name} is required (gRFC A6)", field=f"{at}.{name}")
    attempts = _attempts(f"{at}.maxAttempts", policy["maxAttempts"])
    initial = parse_duration(f"{at}.initialBackoff", policy["initialBackoff"])
    longest = parse_duration(f"{at}.maxBackoff", policy["maxBackoff"])
    multiplier = policy["backoffMultiplier"]
    for name, value in (("initialBackoff", initial), ("maxBackoff", longest)):
        if value <= 0:
            raise ConfigurationError(f"{at}.{name} must be > 0s, got {policy[name]!r}", field=f"{at}.{name}")
    if isinstance(multiplier, bool) or not isinstance(multiplier, int | float) or not math.isfinite(multiplier):
        raise ConfigurationError(
            f"{at}.backoffMultiplier must be a number, got {multiplier!r}", field=f"{at}.backoffMultiplier"
        )
    if multiplier < 1:
        raise ConfigurationError(
            f"{at}.backoffMultiplier must be >= 1 for the kit's backoff, got {multiplier!r}",
            field=f"{at}.backoffMultiplier",
        )
    codes = _codes(f"{at}.retryableStatusCodes", policy["retryableStatusCodes"])
    if not codes:
        raise ConfigurationError(
            f"{at}.retryableStatusCodes must not be empty (gRFC A6)", field=f"{at}.retryableStatusCodes"
        )
    retry = RetryPolicy(
        max_attempts=attempts,
        base_delay=initial,
        multiplier=float(multiplier),
        max_delay=max(initial, longest),
        jitter="full",
        max_retry_after=MAX_PUSHBACK_WAIT,
    )
    return retry, codes


def _hedging(at: str, value: object) -> HedgingPolicy:
    policy = _table(at, value, _HEDGING_KEYS)
    if "maxAttempts" not in policy:
        raise ConfigurationError(f"{at}.maxAttempts is required (gRFC A6)", field=f"{at}.maxAttempts")
    attempts = _attempts(f"{at}.maxAttempts", policy["maxAttempts"])
    delay = parse_duration(f"{at}.hedgingDelay", policy.get("hedgingDelay", "0s"))
    codes = _codes(f"{at}.nonFatalStatusCodes", policy.get("nonFatalStatusCodes", []))
    return HedgingPolicy(attempts, delay, codes)


def _throttling(at: str, value: object) -> BudgetPolicy:
    table = _table(at, value, _THROTTLING_KEYS)
    values = []
    for name in ("maxTokens", "tokenRatio"):
        item = table.get(name)
        if isinstance(item, bool) or not isinstance(item, int | float) or not math.isfinite(item) or item <= 0:
            raise ConfigurationError(f"{at}.{name} must be a number > 0, got {item!r}", field=f"{at}.{name}")
        values.append(float(item))
    if values[0] > 1000:
        raise ConfigurationError(
            f"{at}.maxTokens must be <= 1000 (gRFC A6), got {values[0]!r}", field=f"{at}.maxTokens"
        )
    return BudgetPolicy(max_tokens=values[0], token_ratio=values[1])
