"""What ``integration-kit tune`` may change, within which bounds, and how a spec's ``[tune]`` table narrows them.

:data:`SPACE` lists every searched setting as a :class:`Dimension` (``policy.field``, its kind and the kit's own
bounds). A setting is searched only when the spec's policy is on and the setting itself is not switched off
(``None``): the tuner never adds a rate limit or a slow-call threshold the spec does not have, it only moves the
ones it has. A spec narrows the bounds in a ``[tune]`` table, one dotted key per setting::

    [tune]
    retry.max_attempts = [2, 5]              # an integer range, both ends included
    retry.base_delay = [0.05, 0.5]           # a float range (seconds)
    retry.jitter = ["full", "equal"]         # the choices to try
    breaker.ignore_statuses = [[429]]        # one choice: always leave 429s out of the breaker's window
    limits.rate = [100, 150]                 # the partner's quota is 150 requests/s

:func:`narrow` checks such a table (or the CLI's ``--bound``) and raises
:class:`~integration_kit.errors.ConfigurationError` naming the field for an unknown setting, a range that is not
two numbers low <= high, one outside the kit's bounds, or a choice the kit does not know.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from integration_kit.errors import ConfigurationError
from integration_kit.policies.config import PolicySet

__all__ = ["SPACE", "Bounds", "Dimension", "bounds_from_table", "kit_bounds", "narrow"]

#: A setting's bounds: ``(low, high)`` for a number, the allowed choices for a choice.
Bounds = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Dimension:
    """One searched setting: ``policy.field``, ``kind`` (``"int"``, ``"float"`` or ``"choice"``), the kit's bounds
    ``low``..``high`` (numbers; ``log``: searched on a log scale) or its ``choices``."""

    policy: str
    field: str
    kind: Literal["int", "float", "choice"]
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    choices: tuple[Any, ...] = ()

    @property
    def key(self) -> str:
        """``"policy.field"``, the name in settings, in ``[tune]`` and in the diff."""
        return f"{self.policy}.{self.field}"


#: Every setting the tuner may change, with the kit's bounds (a ``[tune]`` table can only narrow them). Delays
#: and timeouts in seconds. Time-based breaker windows use :data:`TIME_WINDOW_BOUNDS` instead.
SPACE: tuple[Dimension, ...] = (
    Dimension("retry", "max_attempts", "int", 1, 5),
    Dimension("retry", "base_delay", "float", 0.01, 2.0, log=True),
    Dimension("retry", "max_delay", "float", 0.5, 30.0, log=True),
    Dimension("retry", "jitter", "choice", choices=("full", "equal", "decorrelated")),  # AWS's randomised ones
    Dimension("budget", "max_tokens", "float", 5, 1000, log=True),
    Dimension("budget", "token_ratio", "float", 0.05, 5.0, log=True),  # retries stop above 5 / 6 failing
    Dimension("breaker", "failure_rate_threshold", "float", 0.2, 0.9, log=True),
    Dimension("breaker", "window_size", "int", 20, 400),
    Dimension("breaker", "minimum_calls", "int", 5, 100),
    Dimension("breaker", "slow_call_duration", "float", 0.1, 30.0, log=True),
    Dimension("breaker", "slow_call_rate_threshold", "float", 0.2, 1.0),
    Dimension("breaker", "wait_in_open", "float", 1.0, 60.0, log=True),
    Dimension("breaker", "wait_in_open_multiplier", "float", 1.0, 4.0, log=True),
    Dimension("breaker", "half_open_max_calls", "int", 1, 10),
    # 429 is the partner asking us to wait, not failing: whether the breaker's window counts it.
    Dimension("breaker", "ignore_statuses", "choice", choices=((), (429,))),
    Dimension("timeouts", "read", "float", 0.2, 30.0, log=True),
    Dimension("limits", "rate", "float", 1.0, 100_000.0, log=True),
    Dimension("limits", "max_concurrent", "int", 1, 1000),
)
#: The kit's bounds of ``breaker.window_size`` for a time window (seconds, not calls).
TIME_WINDOW_BOUNDS: tuple[int, int] = (2, 120)

_BY_KEY = {d.key: d for d in SPACE}


def kit_bounds(config: PolicySet) -> dict[str, Bounds]:
    """The kit's bounds of each setting ``config`` lets the tuner search (see the module docstring)."""
    found: dict[str, Bounds] = {}
    for dim in SPACE:
        holder = getattr(config, dim.policy)
        if holder is None or getattr(holder, dim.field) is None:
            continue  # a policy or a setting the spec switches off stays off
        if dim.key == "breaker.slow_call_rate_threshold" and config.breaker.slow_call_duration is None:  # type: ignore[union-attr]
            continue
        if dim.kind == "choice":
            found[dim.key] = dim.choices
        elif dim.key == "breaker.window_size" and config.breaker.window_type == "time":  # type: ignore[union-attr]
            found[dim.key] = TIME_WINDOW_BOUNDS
        else:
            found[dim.key] = (dim.low, dim.high)
    return found


def narrow(config: PolicySet, given: Mapping[str, Sequence[Any]] | None, *, where: str = "tune") -> dict[str, Bounds]:
    """:func:`kit_bounds` for ``config`` narrowed by ``given`` (``{"retry.max_attempts": (2, 4)}``).

    Raises :class:`ConfigurationError` naming ``where.<setting>`` for an unknown setting, a setting ``config``
    switches off, a range that is not two numbers ``low <= high`` inside the kit's bounds (integers for an
    integer setting), or a choice that is not one of the kit's.
    """
    found = kit_bounds(config)
    for key, value in (given or {}).items():
        name = f"{where}.{key}"
        dim = _BY_KEY.get(key)
        if dim is None:
            raise ConfigurationError(f"{name}: unknown setting; expected one of {', '.join(_BY_KEY)}")
        if key not in found:
            raise ConfigurationError(f"{name}: the spec switches this setting off, so there is nothing to tune")
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise ConfigurationError(f"{name}: expected a list, got {value!r}")
        found[key] = _choices(name, dim, value) if dim.kind == "choice" else _range(name, dim, value, found[key])
    return found


def bounds_from_table(table: object, *, where: str = "tune") -> dict[str, Sequence[Any]]:
    """The settings of a spec's ``[tune]`` table (``{"retry": {"max_attempts": [2, 5]}}``) as dotted keys,
    unchecked (:func:`narrow` checks them against a client's settings). Raises :class:`ConfigurationError` for
    a table of the wrong shape."""
    if not isinstance(table, Mapping):
        raise ConfigurationError(f"{where}: must be a table of settings, e.g. retry.max_attempts = [2, 5]")
    flat: dict[str, Sequence[Any]] = {}
    for policy, settings in table.items():
        if not isinstance(settings, Mapping):
            raise ConfigurationError(
                f"{where}.{policy}: expected dotted settings such as {policy}.<field> = [low, high], got {settings!r}"
            )
        for name, value in settings.items():
            flat[f"{policy}.{name}"] = value
    return flat


def _range(name: str, dim: Dimension, value: Sequence[Any], kit: Bounds) -> Bounds:
    numbers = (int,) if dim.kind == "int" else (int, float)
    kind = "integers" if dim.kind == "int" else "numbers"
    if len(value) != 2:
        raise ConfigurationError(f"{name}: expected [low, high], two {kind}, got {list(value)!r}")
    for index, bound in enumerate(value):
        if not isinstance(bound, numbers) or isinstance(bound, bool):
            raise ConfigurationError(f"{name}[{index}]: expected [low, high], two {kind}, got {list(value)!r}")
    low, high = value
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise ConfigurationError(f"{name}: expected low <= high, got [{low}, {high}]")
    if not kit[0] <= low <= high <= kit[1]:
        raise ConfigurationError(
            f"{name}: must lie within the kit's bounds [{kit[0]:g}, {kit[1]:g}], got [{low}, {high}]"
        )
    return (low, high)


def _choices(name: str, dim: Dimension, value: Sequence[Any]) -> Bounds:
    picked = []
    for item in value:
        choice = tuple(item) if isinstance(item, list) else item
        if choice not in dim.choices:
            known = ", ".join(repr(list(c) if isinstance(c, tuple) else c) for c in dim.choices)
            raise ConfigurationError(f"{name}: {item!r} is not one of the choices {known}")
        if choice not in picked:
            picked.append(choice)
    if not picked:
        raise ConfigurationError(f"{name}: list at least one choice")
    return tuple(picked)
