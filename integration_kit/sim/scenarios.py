"""Fault scenarios: what a partner does over time, as pure, seeded sampling.

A :class:`Scenario` is a named sequence of :class:`Phase` s. Each phase lasts ``duration`` seconds and has a
:class:`Latency` distribution and an :class:`ErrorMix` (the probabilities of 500, 502, 503, 504, 429 with a
Retry-After, connection refused, connection reset and a hang). A phase may *ramp* in: over its first ``ramp``
seconds it blends linearly from the previous phase (error probabilities and latencies are interpolated), so a
partner can degrade gradually rather than at a step. After its last phase a scenario stays in that phase.

:meth:`Scenario.decide` answers, for a time and a seeded :class:`random.Random`, what the partner does with one
request (a :class:`Decision`); it reads nothing else, so the simulator, the live upstream and the test transport
play the same scenario the same way. Scenarios load from TOML (the bundled ones in
``integration_kit/sim/bundled/*.toml``, a project's in its ``scenarios/`` folder; see :func:`load_scenario`) or
from a mapping (:meth:`Scenario.from_mapping`, as inline in an integration spec), and a mistake raises
:class:`~integration_kit.errors.ConfigurationError` naming the file, the field and the reason::

    name = "outage-and-recovery"
    description = "healthy, a one-minute outage, then a gradual recovery"

    [[phases]]
    name = "healthy"
    duration = 60
    latency = { kind = "lognormal", median = 0.05, p99 = 0.3 }
    errors = { 503 = 0.01 }

    [[phases]]
    name = "outage"
    duration = 60
    latency = { kind = "constant", value = 0.02 }
    errors = { 503 = 0.9, refused = 0.05, hang = 0.05 }

Latency kinds: ``constant`` (``value``), ``uniform`` (``low``, ``high``), ``lognormal`` (``median``, ``p99``) and
``empirical`` (``samples``, resampled uniformly); a bare number is a constant. Error keys: ``"500"``, ``"502"``,
``"503"``, ``"504"``, ``"429"``, ``refused``, ``reset``, ``hang``, and ``retry_after`` (seconds sent with a 429,
default 1; ``-1`` sends no header). A gRPC partner's mix may name gRPC statuses as well: ``UNAVAILABLE``,
``RESOURCE_EXHAUSTED`` (its pushback is ``retry_after``), ``INTERNAL``, ``ABORTED`` and ``REFUSED_STREAM``
(:data:`~integration_kit.sim.faults.GRPC_FAULTS`; a hang is ``hang``); an HTTP partner plays their stand-ins.

A scenario or a phase may also give the partner a finite ``capacity`` (requests per second and/or concurrency, a
bounded queue, what overflows get; see :mod:`integration_kit.sim.capacity`): a phase's capacity wins over the
scenario's. Errors and latency then depend on the load the partner receives, retries included.

A scenario may name a ``provider`` table: the live upstream then enforces that provider's documented limits and
sends its rate-limit headers (see :mod:`integration_kit.sim.provider`).
"""

from __future__ import annotations

import bisect
import math
import random
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple

from integration_kit.errors import ConfigurationError
from integration_kit.sim.capacity import Capacity
from integration_kit.sim.faults import (
    _FAULTS,
    _TOML_KEYS,
    FAULT_ORDER,
    GRPC_FAULTS,
    GRPC_STAND_INS,
    Decision,
    ErrorMix,
    FaultKind,
    Latency,
    LatencyKind,
    _FieldError,
    _number,
)
from integration_kit.sim.provider import ProviderLimits

__all__ = [
    "FAULT_ORDER",
    "GRPC_FAULTS",
    "GRPC_STAND_INS",
    "Capacity",
    "SCENARIO_DIR",
    "Decision",
    "ErrorMix",
    "FaultKind",
    "Latency",
    "LatencyKind",
    "Phase",
    "Scenario",
    "bundled_scenarios",
    "load_scenario",
    "read_toml",
]

#: The scenarios bundled with the package (package data): :func:`load_scenario` looks here after the folders it
#: is given, so a project's own scenario of the same name wins.
SCENARIO_DIR = Path(__file__).resolve().parent / "bundled"


@dataclass(frozen=True, slots=True)
class Phase:
    """A stretch of ``duration`` seconds with one latency distribution and one error mix.

    ``ramp`` seconds (at most ``duration``) at the start of the phase blend in linearly from the previous phase.
    ``capacity`` bounds what the partner serves in this phase (``None``: the scenario's capacity, if any).
    """

    duration: float
    latency: Latency = field(default_factory=lambda: Latency.constant(0.02))
    errors: ErrorMix = field(default_factory=ErrorMix)
    ramp: float = 0.0
    name: str = ""
    capacity: Capacity | None = None

    def __post_init__(self) -> None:
        _number("duration", self.duration, strict=True)
        if _number("ramp", self.ramp) > self.duration:
            raise _FieldError("ramp", f"must be <= duration ({self.duration!r}), got {self.ramp!r}")


class _Compiled(NamedTuple):
    """A phase reduced to what sampling needs."""

    start: float
    ramp: float
    cumulative: tuple[float, ...]  # running sums of the fault probabilities
    total: float
    probabilities: tuple[float, ...]
    latency: Latency
    retry_after: float | None
    capacity: Capacity | None


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named sequence of phases; :meth:`decide` samples what the partner does at a given time.

    ``capacity`` bounds what the partner serves in every phase that gives none of its own (``None``: unbounded);
    ``provider`` is the provider whose limits and headers the live upstream plays (``None``: none).
    """

    name: str
    phases: tuple[Phase, ...]
    description: str = ""
    capacity: Capacity | None = None
    provider: ProviderLimits | None = None
    _starts: tuple[float, ...] = field(default=(), init=False, repr=False, compare=False)
    _compiled: tuple[_Compiled, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise _FieldError("name", f"must be a non-empty string, got {self.name!r}")
        if not self.phases:
            raise _FieldError("phases", "must hold at least one phase")
        if self.phases[0].ramp:
            raise _FieldError("phases[0].ramp", "the first phase has no previous phase to ramp from")
        starts: list[float] = []
        compiled: list[_Compiled] = []
        start = 0.0
        for phase in self.phases:
            probabilities = phase.errors.probabilities
            cumulative = tuple(sum(probabilities[: i + 1]) for i in range(len(probabilities)))
            compiled.append(
                _Compiled(
                    start,
                    phase.ramp,
                    cumulative,
                    cumulative[-1],
                    probabilities,
                    phase.latency,
                    phase.errors.retry_after,
                    phase.capacity if phase.capacity is not None else self.capacity,
                )
            )
            starts.append(start)
            start += phase.duration
        object.__setattr__(self, "_starts", tuple(starts))
        object.__setattr__(self, "_compiled", tuple(compiled))

    @property
    def duration(self) -> float:
        """The sum of the phases' durations (seconds)."""
        return math.fsum(p.duration for p in self.phases)

    @property
    def has_capacity(self) -> bool:
        """Whether any phase bounds the partner's capacity."""
        return any(c.capacity is not None for c in self._compiled)

    @property
    def max_concurrency(self) -> int:
        """The largest ``concurrency`` of any phase's capacity (1 when none gives one)."""
        return max((c.capacity.concurrency or 1 for c in self._compiled if c.capacity is not None), default=1)

    def capacity_at(self, t: float) -> Capacity | None:
        """The capacity in force at time ``t`` (``None``: unbounded)."""
        return self._compiled[self.phase_index(t)].capacity

    def phase_index(self, t: float) -> int:
        """The index of the phase in force at time ``t`` (the last phase goes on forever)."""
        return max(0, bisect.bisect_right(self._starts, t) - 1)

    def phase_at(self, t: float) -> Phase:
        """The phase in force at time ``t``."""
        return self.phases[self.phase_index(t)]

    def decide(self, t: float, rng: random.Random) -> Decision:
        """What the partner does with a request arriving at ``t`` seconds into the scenario, drawn with ``rng``."""
        index, code, latency = self.draw(t, rng)
        if code < 0:
            return Decision(FaultKind.RESPOND, 200, latency, None)
        name, key, fault, status = _FAULTS[code]
        if fault is FaultKind.HANG:
            latency = math.inf
        elif fault is FaultKind.REFUSE:
            latency = 0.0
        grpc = key if name.startswith("grpc_") else None
        return Decision(fault, status, latency, self._compiled[index].retry_after if status == 429 else None, grpc)

    def draw(self, t: float, rng: random.Random) -> tuple[int, int, float]:
        """The raw sample behind :meth:`decide`: (phase index, fault code, latency) with code -1 for a 200.

        The fault code indexes :data:`FAULT_ORDER`. This is the simulator's hot path: it
        builds no objects beyond the tuple.
        """
        index = bisect.bisect_right(self._starts, t) - 1
        if index < 0:  # noqa: PLR1730 - a branch costs less than a max() call on this hot path
            index = 0
        start, ramp, cumulative, total, _, latency_of, _, _ = self._compiled[index]  # one unpack, no attribute reads
        u = rng.random()
        since = t - start
        if since < ramp:
            return self._draw_ramped(index, since / ramp, u, rng)
        latency = latency_of.sample(rng)
        if u >= total:
            return index, -1, latency
        code = 0
        for threshold in cumulative:
            if u < threshold:
                break
            code += 1
        return index, code, latency

    def _draw_ramped(self, index: int, weight: float, u: float, rng: random.Random) -> tuple[int, int, float]:
        """A draw inside a ramp: probabilities and latency blended ``weight`` of the way to phase ``index``."""
        current = self._compiled[index]
        previous = self._compiled[index - 1]
        latency = (1 - weight) * previous.latency.sample(rng) + weight * current.latency.sample(rng)
        cumulative = 0.0
        for code, (old, new) in enumerate(zip(previous.probabilities, current.probabilities, strict=True)):
            cumulative += (1 - weight) * old + weight * new
            if u < cumulative:
                return index, code, latency
        return index, -1, latency

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], *, source: str = "<inline>", name: str | None = None, at: str = ""
    ) -> Scenario:
        """Build a scenario from plain data (a parsed TOML table); ``source`` names it in errors.

        ``name`` is used when the data has no ``name`` key (a file's stem, or the key of an inline table). ``at``
        is where the table sits in its file (``scenario[0]`` in a spec): errors name ``scenario[0].phases[1]``.
        """
        return _Loader(source, at).scenario(data, name)

    @classmethod
    def from_toml(cls, path: str | Path) -> Scenario:
        """Load a scenario from a TOML file; its name defaults to the file's stem."""
        path = Path(path)
        return cls.from_mapping(read_toml(path, "scenario"), source=str(path), name=path.stem)


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """Parse a TOML file; an unreadable or malformed one is a ConfigurationError naming the file and ``what``."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path}: not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigurationError(f"{path}: the {what} is not UTF-8 text (byte {exc.start})") from None


def load_scenario(
    name: str | Path, *, directory: str | Path | None = None, search: Sequence[str | Path] = ()
) -> Scenario:
    """A scenario by file path (``*.toml``) or by name: ``<directory>/<name>.toml`` when ``directory`` is given,
    else the first ``<folder>/<name>.toml`` among ``search`` and then :data:`SCENARIO_DIR` (the bundled ones).

    Raises :class:`~integration_kit.errors.ConfigurationError` naming the scenarios there are when none matches.
    """
    path = Path(name)
    if path.suffix == ".toml":
        return Scenario.from_toml(path)
    folders = [Path(directory)] if directory is not None else [*(Path(f) for f in search), SCENARIO_DIR]
    for folder in folders:
        candidate = folder / f"{name}.toml"
        if candidate.is_file():
            return Scenario.from_toml(candidate)
    known = ", ".join(sorted({p.stem for folder in folders for p in folder.glob("*.toml")})) or "none"
    where = " or ".join(str(f) for f in folders)
    raise ConfigurationError(f"no scenario named {str(name)!r} in {where} (available: {known})")


def bundled_scenarios(directory: str | Path | None = None) -> dict[str, Scenario]:
    """Every scenario in ``directory`` (default :data:`SCENARIO_DIR`, the bundled ones), by name, sorted by name."""
    folder = Path(directory) if directory is not None else SCENARIO_DIR
    found = (Scenario.from_toml(p) for p in sorted(folder.glob("*.toml")))
    return {s.name: s for s in sorted(found, key=lambda s: s.name)}


class _Loader:
    """Turns parsed TOML into scenario objects, translating every mistake into a ConfigurationError."""

    def __init__(self, source: str, at: str = "") -> None:
        self.source = source
        self.at = at

    def error(self, path: str, reason: str) -> ConfigurationError:
        where = _join(self.at, path)
        return ConfigurationError(f"{self.source}: {where or 'scenario'}: {reason}", field=where or None)

    def table(self, path: str, value: object, allowed: Sequence[str]) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.error(path, f"must be a table, got {type(value).__name__}")
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            raise self.error(_join(path, unknown[0]), f"unknown key; expected one of {', '.join(allowed)}")
        return value

    def build(self, path: str, factory: Any, **kwargs: Any) -> Any:
        try:
            return factory(**kwargs)
        except _FieldError as exc:
            raise self.error(_join(path, exc.path), exc.reason) from None

    def scenario(self, data: Mapping[str, Any], name: str | None) -> Scenario:
        data = self.table("", data, ("name", "description", "phases", "capacity", "provider"))
        phases = data.get("phases")
        if not isinstance(phases, list) or not phases:
            raise self.error("phases", "must be a non-empty array of tables ([[phases]])")
        built = tuple(self.phase(f"phases[{i}]", p) for i, p in enumerate(phases))
        description = data.get("description", "")
        if not isinstance(description, str):
            raise self.error("description", f"must be a string, got {description!r}")
        capacity = self.capacity("capacity", data["capacity"]) if "capacity" in data else None
        provider = self.provider("provider", data["provider"]) if "provider" in data else None
        return self.build(  # type: ignore[no-any-return]
            "",
            Scenario,
            name=data.get("name", name),
            phases=built,
            description=description,
            capacity=capacity,
            provider=provider,
        )

    def provider(self, path: str, data: object) -> ProviderLimits:
        names = [f.name for f in fields(ProviderLimits)]
        table = self.table(path, data, names)
        if "style" not in table or "quota" not in table:
            raise self.error(_join(path, "style" if "style" not in table else "quota"), "is required")
        try:
            return ProviderLimits(**table)
        except ValueError as exc:
            field_name, _, reason = str(exc).partition(": ")
            raise self.error(_join(path, field_name), reason) from None

    def phase(self, path: str, data: object) -> Phase:
        table = self.table(path, data, ("name", "duration", "latency", "errors", "ramp", "capacity"))
        if "duration" not in table:
            raise self.error(f"{path}.duration", "is required")
        kwargs: dict[str, Any] = {"duration": table["duration"], "ramp": table.get("ramp", 0.0)}
        if "name" in table:
            if not isinstance(table["name"], str):
                raise self.error(f"{path}.name", f"must be a string, got {table['name']!r}")
            kwargs["name"] = table["name"]
        if "latency" in table:
            kwargs["latency"] = self.latency(f"{path}.latency", table["latency"])
        if "errors" in table:
            kwargs["errors"] = self.errors(f"{path}.errors", table["errors"])
        if "capacity" in table:
            kwargs["capacity"] = self.capacity(f"{path}.capacity", table["capacity"])
        return self.build(path, Phase, **kwargs)  # type: ignore[no-any-return]

    def capacity(self, path: str, data: object) -> Capacity:
        table = self.table(path, data, ("rate", "concurrency", "queue", "overflow"))
        try:
            return Capacity(**table)
        except ValueError as exc:
            field_name, _, reason = str(exc).partition(": ")
            raise self.error(_join(path, field_name), reason) from None

    def latency(self, path: str, data: object) -> Latency:
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            return self.build(path, Latency.constant, value=data)  # type: ignore[no-any-return]
        names = [f.name for f in fields(Latency) if not f.name.startswith("_")]
        table = dict(self.table(path, data, names))
        kind = table.get("kind")
        if not isinstance(kind, str) or kind not in _LATENCY_FIELDS:
            raise self.error(f"{path}.kind", f"must be one of {', '.join(_LATENCY_FIELDS)}, got {kind!r}")
        for name in _LATENCY_FIELDS[kind]:
            if name not in table:
                raise self.error(f"{path}.{name}", f"is required for a {kind} latency")
        if "samples" in table:
            if not isinstance(table["samples"], list):
                raise self.error(f"{path}.samples", "must be an array of seconds")
            table["samples"] = tuple(table["samples"])
        return self.build(path, Latency, **table)  # type: ignore[no-any-return]

    def errors(self, path: str, data: object) -> ErrorMix:
        table = self.table(path, data, tuple(_TOML_KEYS))
        kwargs = {_TOML_KEYS[key]: value for key, value in table.items()}
        if kwargs.get("retry_after") == -1:
            kwargs["retry_after"] = None
        mix: ErrorMix = self.build(path, ErrorMix, **kwargs)
        return mix


_LATENCY_FIELDS: dict[str, tuple[str, ...]] = {
    "constant": ("value",),
    "uniform": ("low", "high"),
    "lognormal": ("median", "p99"),
    "empirical": ("samples",),
}


def _join(path: str, sub: str) -> str:
    """A dotted field path, skipping empty parts."""
    return ".".join(p for p in (path, sub) if p)
