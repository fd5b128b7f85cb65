"""What a partner does with one request, as values: a latency distribution, a mix of faults, and the decision.

A :class:`Latency` is a distribution of seconds (constant, uniform, lognormal from a median and a p99, or empirical
samples); an :class:`ErrorMix` is the probability of each fault (500, 502, 503, 504, 429 with a Retry-After,
connection refused, connection reset, a hang), the rest being a 200; a gRPC partner's mix may also name gRPC
statuses (``UNAVAILABLE``, ``RESOURCE_EXHAUSTED`` with pushback, ``INTERNAL``, ``ABORTED``, ``REFUSED_STREAM``: see
:data:`GRPC_FAULTS`); a :class:`Decision` is the partner's answer to one request.
:mod:`integration_kit.sim.scenarios` arranges them in phases over time; every name here is importable from there.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal, NamedTuple, get_args

__all__ = [
    "FAULT_ORDER",
    "GRPC_FAULTS",
    "GRPC_STAND_INS",
    "Decision",
    "ErrorMix",
    "FaultKind",
    "Latency",
    "LatencyKind",
]

LatencyKind = Literal["constant", "uniform", "lognormal", "empirical"]

#: The standard normal quantile of 0.99: a lognormal's p99 is ``median * exp(Z99 * sigma)``.
_Z99 = 2.3263478740408408


class FaultKind(Enum):
    """What the partner does with one request."""

    RESPOND = "respond"  # answers with ``status`` (200 when healthy) after ``latency``
    REFUSE = "refuse"  # refuses the connection: the request never reaches it
    RESET = "reset"  # reads the request, then drops the connection after ``latency``
    HANG = "hang"  # reads the request and never answers: the client's timeout ends the attempt


class Decision(NamedTuple):
    """The partner's answer to one request: the fault, the HTTP status (0 when none), seconds until it happens
    (``math.inf`` for a hang, 0 for a refusal), and the Retry-After seconds sent with a 429 (``None``: none).

    ``grpc`` is the gRPC status the error mix named (``"UNAVAILABLE"``, ..., ``"REFUSED_STREAM"``; ``None`` for an
    HTTP fault): a gRPC partner plays it as it is, an HTTP partner plays its stand-in (``status``, ``fault``)."""

    fault: FaultKind
    status: int
    latency: float
    retry_after: float | None
    grpc: str | None = None


class _FieldError(ValueError):
    """A bad value, with the field's path relative to the object being built (the loader adds the rest)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def _number(path: str, value: object, *, low: float = 0.0, strict: bool = False) -> float:
    """``value`` as a float, finite and ``>= low`` (``> low`` when ``strict``), else a :class:`_FieldError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _FieldError(path, f"must be a finite number, got {value!r}")
    if value < low or (strict and value == low):
        raise _FieldError(path, f"must be {'>' if strict else '>='} {low:g}, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class Latency:
    """A distribution of response times in seconds; build one with the class methods.

    The lognormal is given by its median and 99th percentile, the two figures a partner's dashboard shows:
    ``mu = ln(median)``, ``sigma = ln(p99 / median) / 2.326``.
    """

    kind: LatencyKind = "constant"
    value: float = 0.0
    low: float = 0.0
    high: float = 0.0
    median: float = 0.0
    p99: float = 0.0
    samples: tuple[float, ...] = ()
    _mu: float = field(default=0.0, init=False, repr=False, compare=False)
    _sigma: float = field(default=0.0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in get_args(LatencyKind):
            raise _FieldError("kind", f"must be one of {', '.join(get_args(LatencyKind))}, got {self.kind!r}")
        if self.kind == "constant":
            _number("value", self.value)
        elif self.kind == "uniform":
            _number("low", self.low)
            if _number("high", self.high) < self.low:
                raise _FieldError("high", f"must be >= low ({self.low!r}), got {self.high!r}")
        elif self.kind == "lognormal":
            _number("median", self.median, strict=True)
            if _number("p99", self.p99, strict=True) < self.median:
                raise _FieldError("p99", f"must be >= median ({self.median!r}), got {self.p99!r}")
            object.__setattr__(self, "_mu", math.log(self.median))
            object.__setattr__(self, "_sigma", math.log(self.p99 / self.median) / _Z99)
        else:
            if not self.samples:
                raise _FieldError("samples", "must hold at least one value")
            for i, sample in enumerate(self.samples):
                _number(f"samples[{i}]", sample)

    @classmethod
    def constant(cls, value: float) -> Latency:
        """Always ``value`` seconds."""
        return cls("constant", value=value)

    @classmethod
    def uniform(cls, low: float, high: float) -> Latency:
        """Uniform between ``low`` and ``high`` seconds."""
        return cls("uniform", low=low, high=high)

    @classmethod
    def lognormal(cls, median: float, p99: float) -> Latency:
        """Lognormal with the given median and 99th percentile (seconds)."""
        return cls("lognormal", median=median, p99=p99)

    @classmethod
    def empirical(cls, samples: Sequence[float]) -> Latency:
        """Resampled uniformly from observed response times (seconds)."""
        return cls("empirical", samples=tuple(samples))

    def sample(self, rng: random.Random) -> float:
        """One response time drawn with ``rng``."""
        kind = self.kind
        if kind == "lognormal":
            return math.exp(self._mu + self._sigma * rng.gauss())
        if kind == "constant":
            return self.value
        if kind == "uniform":
            return self.low + (self.high - self.low) * rng.random()
        return self.samples[int(rng.random() * len(self.samples))]


#: The faults of an :class:`ErrorMix`, in sampling order: (field, TOML key, fault, status).
_FAULTS: tuple[tuple[str, str, FaultKind, int], ...] = (
    ("http_500", "500", FaultKind.RESPOND, 500),
    ("http_502", "502", FaultKind.RESPOND, 502),
    ("http_503", "503", FaultKind.RESPOND, 503),
    ("http_504", "504", FaultKind.RESPOND, 504),
    ("http_429", "429", FaultKind.RESPOND, 429),
    ("refused", "refused", FaultKind.REFUSE, 0),
    ("reset", "reset", FaultKind.RESET, 0),
    ("hang", "hang", FaultKind.HANG, 0),
    # gRPC statuses, after the HTTP faults so that their codes are unchanged; each with its HTTP stand-in
    ("grpc_unavailable", "UNAVAILABLE", FaultKind.RESPOND, 503),
    ("grpc_resource_exhausted", "RESOURCE_EXHAUSTED", FaultKind.RESPOND, 429),
    ("grpc_internal", "INTERNAL", FaultKind.RESPOND, 500),
    ("grpc_aborted", "ABORTED", FaultKind.RESPOND, 409),
    ("grpc_refused_stream", "REFUSED_STREAM", FaultKind.REFUSE, 0),
)
#: The gRPC statuses an error mix may name (its TOML keys), in sampling order. A hang is the mix's ``hang``.
#: ``RESOURCE_EXHAUSTED`` carries the mix's ``retry_after`` as ``grpc-retry-pushback-ms``; ``REFUSED_STREAM`` is a
#: stream the server refused before reading it (never received; a gRPC client resends it without using an attempt).
#: Played by an HTTP partner, they are 503, 429 (with Retry-After), 500, 409 and a refused connection.
GRPC_FAULTS: tuple[str, ...] = tuple(key for name, key, _, _ in _FAULTS if name.startswith("grpc_"))
#: The HTTP fault (its key in a mix) that stands for each gRPC status of :data:`GRPC_FAULTS` when an HTTP client
#: plays it: ``UNAVAILABLE`` is a 503, ``RESOURCE_EXHAUSTED`` a 429, ``INTERNAL`` a 500, ``ABORTED`` a 409 and
#: ``REFUSED_STREAM`` a refused connection.
GRPC_STAND_INS: dict[str, str] = {
    key: str(status) if status else "refused" for name, key, _, status in _FAULTS if name.startswith("grpc_")
}
_TOML_KEYS = {key: name for name, key, _, _ in _FAULTS} | {"retry_after": "retry_after"}

#: The fault codes of :meth:`Scenario.draw`, in order: code ``i`` is ``FAULT_ORDER[i]`` (-1 is a 200).
FAULT_ORDER: tuple[str, ...] = tuple(key for _, key, _, _ in _FAULTS)


@dataclass(frozen=True, slots=True)
class ErrorMix:
    """The probability of each fault for one request; the rest of the probability is a 200.

    ``retry_after`` is the Retry-After (seconds) sent with a 429 (and the pushback of a ``RESOURCE_EXHAUSTED``),
    ``None`` for none. The ``grpc_*`` fields are the gRPC statuses of :data:`GRPC_FAULTS`. The probabilities must
    sum to at most 1.
    """

    http_500: float = 0.0
    http_502: float = 0.0
    http_503: float = 0.0
    http_504: float = 0.0
    http_429: float = 0.0
    refused: float = 0.0
    reset: float = 0.0
    hang: float = 0.0
    retry_after: float | None = 1.0
    grpc_unavailable: float = 0.0
    grpc_resource_exhausted: float = 0.0
    grpc_internal: float = 0.0
    grpc_aborted: float = 0.0
    grpc_refused_stream: float = 0.0

    def __post_init__(self) -> None:
        for name, key, _, _ in _FAULTS:
            if _number(key, getattr(self, name)) > 1:
                raise _FieldError(key, f"must be a probability in [0, 1], got {getattr(self, name)!r}")
        if self.retry_after is not None:
            _number("retry_after", self.retry_after)
        if self.total > 1 + 1e-9:
            raise _FieldError("", f"the probabilities must sum to at most 1, got {self.total:g}")

    @property
    def probabilities(self) -> tuple[float, ...]:
        """The fault probabilities in sampling order (500, 502, 503, 504, 429, refused, reset, hang, then the gRPC
        statuses of :data:`GRPC_FAULTS`)."""
        return tuple(getattr(self, name) for name, _, _, _ in _FAULTS)

    @property
    def total(self) -> float:
        """The probability that a request meets any fault."""
        return math.fsum(self.probabilities)
