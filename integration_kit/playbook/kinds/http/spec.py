"""Integration specs: one declarative TOML file per integration, under ``data/integrations/``.

A spec says what the integration talks to and how every call must behave: base URL, auth (the *name* of the
environment variable holding the secret, never the secret), timeouts, deadline, retry, budget, breaker, limits,
idempotency, the fallback, and the fault scenarios to exercise it against (bundled ones by name, or inline).
Every field is documented in ``data/README.md``. :func:`load_integration` validates the whole file and raises a
:class:`~integration_kit.errors.ConfigurationError` naming the file, the field and the reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

from integration_kit.errors import ConfigurationError
from integration_kit.http.config import ClientConfig
from integration_kit.playbook.kinds.files import is_name, read_spec, scenario_search, spec_kind, spec_names
from integration_kit.playbook.kinds.http.objectives import Objectives, ObjectiveSet, objectives_from_spec
from integration_kit.playbook.kinds.http.operations import OperationEntry, operations_from_table
from integration_kit.playbook.kinds.http.tune_space import Bounds, bounds_from_table, narrow
from integration_kit.policies.tables import check_table
from integration_kit.sim.scenarios import Scenario, load_scenario

__all__ = [
    "ExerciseSettings",
    "Fallback",
    "FallbackKind",
    "PROTOCOLS",
    "IntegrationSpec",
    "bundled_integrations",
    "integration_names",
    "load_integration",
]

#: The names of the specs in a folder (default: the current project's integrations), every kind.
integration_names = spec_names

FallbackKind = Literal["none", "static", "cache", "queue"]


#: Spec keys that are ``ClientConfig`` fields, in the order the design document lists them.
CLIENT_KEYS: tuple[str, ...] = (
    "base_url",
    "auth",
    "timeouts",
    "deadline",
    "retry",
    "budget",
    "breaker",
    "limits",
    "idempotency_methods",
    "max_response_bytes",
    "follow_redirects",
    "verify",
    "allow_insecure_http",
    "headers",
    "user_agent",
    "redact_query_params",
    "profile",
    "quota_reserve",
    "quota_store_env",
)
#: The ``protocol`` values an HTTP spec may declare: what its client speaks, and the body format (default
#: ``https+json``). Anything else (``grpc``) is a ``ConfigurationError`` naming the field.
PROTOCOLS: tuple[str, ...] = ("https+json", "http+json", "https", "http", "https+xml", "http+xml")
_TOP_KEYS = frozenset({"name", "description", "protocol", "owner", "fallback", "scenarios", "scenario", "exercise"})
_TOP_KEYS |= {"kind"}  # "http" (the default); other kinds are loaded by their own modules (see spec_kind)
_TOP_KEYS = _TOP_KEYS | {"objectives", "scenario_objectives"}  # the verdict's targets (playbook/objectives.py)
_TOP_KEYS = _TOP_KEYS | {"tune"}  # bounds that narrow `integration-kit tune`'s search (playbook/tune_space.py)
_TOP_KEYS = _TOP_KEYS | {"operations"}  # the partner's operations and their decisions (kinds/http/operations.py)


@dataclass(frozen=True, slots=True)
class Fallback:
    """What answers when the partner cannot: ``none``, a ``static`` answer, a ``cache`` of the last good answer,
    or a ``queue`` that defers the write; ``description`` says what the user sees."""

    kind: FallbackKind = "none"
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in get_args(FallbackKind):
            raise ValueError(f"fallback.kind must be one of {', '.join(get_args(FallbackKind))}, got {self.kind!r}")
        if not isinstance(self.description, str):
            raise ValueError(f"fallback.description must be a string, got {type(self.description).__name__}")
        if self.kind != "none" and not self.description.strip():
            raise ValueError("fallback.description must say what answers when the partner cannot")

    @property
    def defined(self) -> bool:
        """Whether a fallback answers failed calls."""
        return self.kind != "none"


@dataclass(frozen=True, slots=True)
class ExerciseSettings:
    """How the exercise stage loads the integration: the request ``method`` and ``path``, open-loop ``rate`` (calls
    per second) and ``workers`` (closed-loop), and ``duration`` (virtual seconds; ``None``: each scenario's own)."""

    method: str = "GET"
    path: str = "/"
    rate: float = 50.0
    workers: int = 0
    duration: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.method, str) or not self.method.isalpha():
            raise ValueError(f"exercise.method must be an HTTP method, got {self.method!r}")
        object.__setattr__(self, "method", self.method.upper())
        if not isinstance(self.path, str) or not self.path.startswith("/"):
            raise ValueError(f"exercise.path must start with '/', got {self.path!r}")
        if not _finite(self.rate) or not 0 <= self.rate <= MAX_RATE:
            raise ValueError(f"exercise.rate must be a number from 0 to {MAX_RATE:g} (calls/s), got {self.rate!r}")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or not 0 <= self.workers <= MAX_WORKERS:
            raise ValueError(f"exercise.workers must be an integer from 0 to {MAX_WORKERS}, got {self.workers!r}")
        if self.rate == 0 and self.workers == 0:
            raise ValueError("exercise needs load: set rate > 0 or workers > 0")
        if self.duration is not None and (not _finite(self.duration) or not 0 < self.duration <= MAX_DURATION):
            raise ValueError(
                f"exercise.duration must be a number of seconds in (0, {MAX_DURATION:g}], got {self.duration!r}"
            )


#: Bounds on the load a spec (or the CLI) may ask the simulator for: far above any real exercise, far below the
#: memory of a laptop (the simulator records every call's events).
MAX_RATE = 100_000.0
MAX_WORKERS = 10_000
MAX_DURATION = 7 * 24 * 3600.0


def _finite(value: object) -> bool:
    """Whether ``value`` is a real, finite int or float (not a bool, NaN or infinity)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True, slots=True)
class IntegrationSpec:
    """One integration, loaded and validated.

    ``sources`` tells, per client setting (``"retry"``, and ``"retry.max_attempts"`` for a nested one), whether
    the spec set it (``"spec"``); a setting that is not there took its default.
    """

    name: str
    description: str
    protocol: str
    owner: str
    client: ClientConfig
    fallback: Fallback
    exercise: ExerciseSettings
    scenarios: tuple[Scenario, ...]
    path: Path | None = None
    sources: Mapping[str, str] = field(default_factory=dict)
    objective_set: ObjectiveSet = field(default_factory=ObjectiveSet)
    #: The ``[tune]`` table, checked: each searched setting's bounds (``(low, high)`` or the choices), the kit's
    #: own for the settings the table does not name (:func:`~integration_kit.playbook.kinds.http.tune_space.narrow`).
    tune_bounds: Mapping[str, Bounds] = field(default_factory=dict)
    #: The ``[[operations]]`` the integration uses, each with its resilience decision (empty: not listed).
    operations: tuple[OperationEntry, ...] = ()

    @property
    def kind(self) -> Literal["http"]:
        """Always ``"http"``: the ``kind`` of the spec (see :mod:`integration_kit.playbook.kinds.table`)."""
        return "http"

    @property
    def objectives(self) -> Objectives:
        """The objectives of every scenario (``[objectives]``, else the kit's defaults)."""
        return self.objective_set.defaults

    def objectives_for(self, scenario: str) -> Objectives:
        """The objectives that judge ``scenario``: ``[objectives]`` with ``[scenario_objectives.<scenario>]``
        applied. Raises :class:`ConfigurationError` when the spec has no such scenario."""
        self.scenario(scenario)
        return self.objective_set.for_scenario(scenario)

    def source(self, setting: str) -> str:
        """``"spec"`` when the spec file set ``setting`` (dotted for nested settings), else ``"default"``."""
        return self.sources.get(setting, "default")

    def scenario(self, name: str) -> Scenario:
        """One of this integration's scenarios by name."""
        for s in self.scenarios:
            if s.name == name:
                return s
        known = ", ".join(s.name for s in self.scenarios)
        raise ConfigurationError(f"integration {self.name!r} has no scenario {name!r} (it has: {known})")

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], *, source: str = "<inline>", path: Path | None = None
    ) -> IntegrationSpec:
        """Build and validate a spec from parsed TOML; every error names ``source``, the field and the reason."""
        return _build(cls, data, source, path)


def _build(cls: type[IntegrationSpec], data: Mapping[str, Any], source: str, path: Path | None) -> IntegrationSpec:
    def fail(fieldname: str, reason: str) -> ConfigurationError:
        return ConfigurationError(f"{source}: {fieldname}: {reason}", field=fieldname)

    unknown = sorted(set(data) - _TOP_KEYS - set(CLIENT_KEYS))
    if unknown:
        raise fail(unknown[0], f"unknown field (expected one of {', '.join(sorted(_TOP_KEYS | set(CLIENT_KEYS)))})")
    name = data.get("name")
    if not is_name(name):
        raise fail("name", f"must be lower-case letters, digits, '-' or '_' (at most 64), got {name!r}")
    texts = _texts(data, fail)
    client_values = {k: data[k] for k in CLIENT_KEYS if k in data}
    if "base_url" not in client_values:
        raise fail("base_url", "is required")
    try:
        client = ClientConfig.from_mapping({"name": name, **client_values})
    except ConfigurationError as exc:  # its field is the path as written (retry.retry_on_status[0]), or None
        if exc.field is None:
            raise ConfigurationError(f"{source}: {exc.message}") from None
        raise fail(exc.field, exc.reason) from None
    fallback = _sub(Fallback, data.get("fallback"), "fallback", fail)
    exercise = _sub(ExerciseSettings, data.get("exercise"), "exercise", fail)
    scenarios = _scenarios(data, source, fail, scenario_search(path))
    sources: dict[str, str] = {}
    for key in CLIENT_KEYS:
        sources[key] = "spec" if key in data else "default"
        if isinstance(data.get(key), Mapping):
            sources.update({f"{key}.{sub}": "spec" for sub in data[key]})
    return cls(
        name=name,
        description=texts["description"].strip(),
        protocol=texts["protocol"] or "https+json",
        owner=texts["owner"],
        client=client,
        fallback=fallback,
        exercise=exercise,
        scenarios=scenarios,
        path=path,
        sources=sources,
        objective_set=objectives_from_spec(data, tuple(s.name for s in scenarios), source),
        tune_bounds=_tune_bounds(client, data.get("tune", {}), source),
        operations=operations_from_table(data.get("operations"), client.idempotency_methods, fail),
    )


def _tune_bounds(client: ClientConfig, table: object, source: str) -> dict[str, Bounds]:
    try:
        return narrow(client, bounds_from_table(table, where="tune"), where="tune")
    except ConfigurationError as exc:
        raise ConfigurationError(f"{source}: {exc}") from None


def _texts(data: Mapping[str, Any], fail: Any) -> dict[str, str]:
    texts = {}
    for key in ("description", "protocol", "owner"):
        value = data.get(key, "")
        if not isinstance(value, str):
            raise fail(key, f"must be a string, got {type(value).__name__}")
        texts[key] = value
    if not texts["description"].strip():
        raise fail("description", "must say what the integration is for")
    if texts["protocol"] and texts["protocol"] not in PROTOCOLS:
        raise fail(
            "protocol",
            f"the http kind cannot speak {texts['protocol']!r} (it speaks {', '.join(PROTOCOLS)}; a gRPC, WebSocket,"
            " webhook or queue integration declares its own kind)",
        )
    return texts


def _sub(cls: type[Any], value: object, key: str, fail: Any) -> Any:
    if value is None:
        return cls()
    if not isinstance(value, Mapping):
        raise fail(key, f"must be a table, got {type(value).__name__}")
    allowed = {f.name for f in fields(cls)}
    if unknown := sorted(set(value) - allowed):
        raise fail(f"{key}.{unknown[0]}", f"unknown field (expected one of {', '.join(sorted(allowed))})")
    try:
        check_table(cls, value, owner=key)
        return cls(**value)
    except ConfigurationError as exc:
        located = exc.under(key)
        raise fail(located.field, located.reason) from None
    except (ValueError, TypeError) as exc:
        raise fail(key, str(exc)) from None


def _scenarios(data: Mapping[str, Any], source: str, fail: Any, search: tuple[Path, ...]) -> tuple[Scenario, ...]:
    found: list[Scenario] = []
    names = data.get("scenarios", [])
    if not isinstance(names, list):
        raise fail("scenarios", "must be a list of bundled scenario names (define new ones in [[scenario]] tables)")
    for index, scenario_name in enumerate(names):
        if not is_name(scenario_name):
            raise fail(f"scenarios[{index}]", f"{scenario_name!r} is not a scenario name")
        try:
            found.append(load_scenario(scenario_name, search=search))
        except ConfigurationError as exc:
            raise fail(f"scenarios[{index}]", str(exc)) from None
    inline = data.get("scenario", [])
    if not isinstance(inline, list):
        raise fail("scenario", "must be an array of tables ([[scenario]])")
    for index, table in enumerate(inline):  # Scenario.from_mapping refuses an item that is not a table
        found.append(Scenario.from_mapping(table, source=source, at=f"scenario[{index}]"))
    seen: set[str] = set()
    for s in found:
        if s.name in seen:
            raise fail("scenarios", f"scenario {s.name!r} is listed twice")
        seen.add(s.name)
    if not found:
        raise fail("scenarios", "list at least one scenario to exercise the integration against")
    return tuple(found)


def _http_spec(data: Mapping[str, Any], *, source: str, path: Path) -> IntegrationSpec:
    kind = data.get("kind", "http")
    if kind != "http":
        raise ConfigurationError(
            f'{source}: kind: {path.stem!r} is a {kind!r} spec, and this needs an HTTP spec (kind = "http")'
        )
    return IntegrationSpec.from_mapping(data, source=source, path=path)


def load_integration(name: str | Path, *, directory: str | Path | None = None) -> IntegrationSpec:
    """Load and validate an HTTP integration by name (``<directory>/<name>.toml``, default the current project's
    integrations folder) or by the path of a TOML file.

    Raises :class:`~integration_kit.errors.ConfigurationError` for a bad name (see
    :func:`~integration_kit.playbook.kinds.files.spec_path`), an invalid spec, or a spec of another kind (a queue or
    webhook spec: :func:`integration_kit.playbook.kinds.table.load_spec` loads any kind).
    """
    return read_spec(name, _http_spec, directory=directory)


def bundled_integrations(directory: str | Path | None = None) -> dict[str, IntegrationSpec]:
    """Every HTTP integration in ``directory`` (default: the current project's integrations folder), by name."""
    names = [n for n in spec_names(directory) if spec_kind(n, directory=directory) == "http"]
    return {n: load_integration(n, directory=directory) for n in names}
