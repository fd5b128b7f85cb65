"""Objectives: what an integration must achieve under each fault scenario, declared in its spec.

A spec's ``[objectives]`` table sets the targets for every scenario; ``[scenario_objectives.<scenario>]`` tables
override some of them for one scenario (a partner that throttles 60% of requests for a minute cannot be met with
the same success rate as a healthy one). Both take the fields of :class:`Objectives`; an unknown key is a
:class:`~integration_kit.errors.ConfigurationError` naming the field and listing the valid ones.

Readers (the verdict, telemetry alert rules, tuning constraints) ask the spec, never this table's raw form::

    spec.objectives                       # the defaults declared in [objectives] (Objectives)
    spec.objectives_for("brownout")       # the defaults with that scenario's overrides applied (Objectives)

How each figure is measured (phases come from the scenario; see :mod:`integration_kit.playbook.kinds.http.figures`):

- ``success_rate``: calls that succeeded / calls made, over the whole run and over each degraded phase. Outage
  phases are left out: no client setting makes a call succeed against a partner that is down, the fallback
  answers there, and the outage is judged by ``outage_load`` and ``recovery_time`` instead.
- ``p99_latency``: the 99th percentile of the duration of completed calls (calls that reached the partner;
  calls the breaker or a limit refused are counted apart), over the whole run.
- ``amplification``: upstream attempts per logical call, over the whole run and over each bad phase.
- ``outage_load``: attempts the partner received during an outage phase per call offered in it.
- ``recovery_time``: seconds from the end of a bad phase until the success rate of the calls started in a
  sliding window of :data:`~integration_kit.playbook.kinds.http.figures.RECOVERY_WINDOW` seconds first reaches
  :data:`~integration_kit.playbook.kinds.http.figures.RECOVERED_SUCCESS` (95%).
- ``rate_limited``: attempts the partner refused for their rate (answered 429, or 403 as GitHub does) / attempts
  sent, over the whole run; judged only when a spec declares it (the default, 1.0, cannot fail). Client-side
  pacing (``quota_reserve``) keeps it near 0 against a partner that reports its quota.
- ``deadline_overruns``: calls that took longer than the deadline; always 0, not configurable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar

from integration_kit.errors import ConfigurationError

__all__ = ["DEFAULT_OBJECTIVES", "ObjectiveSet", "Objectives", "objectives_from_spec"]


@dataclass(frozen=True, slots=True)
class Objectives:
    """Targets for one scenario run. The defaults are the kit's, used when a spec declares none.

    - ``success_rate``: minimum share of calls that succeed (0..1; default 0.95).
    - ``p99_latency``: maximum 99th percentile of completed calls' duration, seconds (default 5.0).
    - ``amplification``: maximum upstream attempts per logical call (>= 1; default 2.0).
    - ``outage_load``: maximum attempts the partner receives during an outage per call offered (>= 0; default 0.5).
    - ``recovery_time``: maximum seconds from the end of a bad phase until 95% of calls succeed again
      (default 30.0).
    - ``rate_limited``: maximum share of attempts the partner refused for rate limit (0..1; default 1.0: not
      judged unless declared).
    - :attr:`deadline_overruns` is always 0: a call never outlives its deadline.

    Raises ``ValueError`` for a value out of range (the spec loader turns it into a ``ConfigurationError``).
    """

    success_rate: float = 0.95
    p99_latency: float = 5.0
    amplification: float = 2.0
    outage_load: float = 0.5
    recovery_time: float = 30.0
    rate_limited: float = 1.0
    #: Calls that may outlive the deadline: none, ever.
    deadline_overruns: ClassVar[int] = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise _bad(f.name, f"must be a finite number, got {value!r}")
            object.__setattr__(self, f.name, float(value))
        for name in ("success_rate", "rate_limited"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise _bad(name, f"must be in [0, 1], got {getattr(self, name)!r}")
        for name in ("p99_latency", "recovery_time"):
            if getattr(self, name) <= 0:
                raise _bad(name, f"must be > 0 seconds, got {getattr(self, name)!r}")
        if self.amplification < 1.0:
            raise _bad("amplification", f"must be >= 1 (one attempt per call), got {self.amplification!r}")
        if self.outage_load < 0:
            raise _bad("outage_load", f"must be >= 0, got {self.outage_load!r}")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The configurable fields, in the order the verdict lists them."""
        return tuple(f.name for f in fields(cls))

    def with_overrides(self, values: Mapping[str, Any]) -> Objectives:
        """A copy with ``values`` applied; unknown keys raise ``ValueError`` listing the valid ones."""
        if problem := _bad_key(values):
            raise ValueError(f"objectives.{problem[0]}: {problem[1]}")
        return replace(self, **values)


#: The kit's defaults (:class:`Objectives` with no arguments).
DEFAULT_OBJECTIVES = Objectives()


@dataclass(frozen=True, slots=True)
class ObjectiveSet:
    """A spec's objectives: ``defaults`` for every scenario and ``per_scenario`` overrides (already merged)."""

    defaults: Objectives = DEFAULT_OBJECTIVES
    per_scenario: Mapping[str, Objectives] = field(default_factory=dict)
    #: Which objectives the spec itself set (``"objectives.success_rate"``, ``"brownout.success_rate"``).
    declared: frozenset[str] = frozenset()

    def for_scenario(self, scenario: str) -> Objectives:
        """The objectives that judge ``scenario``: its overrides on top of the defaults."""
        return self.per_scenario.get(scenario, self.defaults)


def objectives_from_spec(data: Mapping[str, Any], scenarios: tuple[str, ...], source: str) -> ObjectiveSet:
    """Read ``[objectives]`` and ``[scenario_objectives.<name>]`` from a parsed spec.

    ``scenarios`` are the spec's scenario names (an override for another name is an error). Errors are
    :class:`ConfigurationError` s naming ``source``, the field and the reason.
    """

    def fail(fieldname: str, reason: str) -> ConfigurationError:
        return ConfigurationError(f"{source}: {fieldname}: {reason}", field=fieldname)

    declared: set[str] = set()
    table = data.get("objectives", {})
    if not isinstance(table, Mapping):
        raise fail("objectives", f"must be a table, got {type(table).__name__}")
    defaults = _build(DEFAULT_OBJECTIVES, table, "objectives", fail)
    declared.update(f"objectives.{k}" for k in table)
    overrides = data.get("scenario_objectives", {})
    if not isinstance(overrides, Mapping):
        raise fail("scenario_objectives", f"must be a table of tables, got {type(overrides).__name__}")
    per_scenario: dict[str, Objectives] = {}
    for name, values in overrides.items():
        where = f"scenario_objectives.{name}"
        if name not in scenarios:
            raise fail(where, f"no such scenario in this spec (its scenarios: {', '.join(scenarios)})")
        if not isinstance(values, Mapping):
            raise fail(where, f"must be a table, got {type(values).__name__}")
        per_scenario[name] = _build(defaults, values, where, fail)
        declared.update(f"{name}.{k}" for k in values)
    return ObjectiveSet(defaults, per_scenario, frozenset(declared))


def _build(base: Objectives, values: Mapping[str, Any], where: str, fail: Any) -> Objectives:
    if problem := _bad_key(values):
        raise fail(f"{where}.{problem[0]}", problem[1])
    try:
        return replace(base, **values)
    except ConfigurationError as exc:
        raise fail(f"{where}.{exc.field}", exc.message.removeprefix(f"objectives.{exc.field} ")) from None


def _bad(name: str, reason: str) -> ConfigurationError:
    """The error for a bad objective ``name`` (a :class:`ConfigurationError`, so a ``ValueError``)."""
    return ConfigurationError(f"objectives.{name} {reason}", field=name)


def _bad_key(values: Mapping[str, Any]) -> tuple[str, str] | None:
    """The first key of ``values`` that is not a configurable objective, and why; ``None`` when all are."""
    valid = Objectives.names()
    for key in values:
        if key == "deadline_overruns":
            return key, "is always 0 and cannot be configured"
        if key not in valid:
            return key, f"unknown field (expected one of {', '.join(sorted(valid))})"
    return None
