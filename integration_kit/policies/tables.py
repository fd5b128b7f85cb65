"""Settings built from a user's tables: every value's type checked first, every error naming the field as written.

A spec or config file is parsed TOML: tables, arrays, strings, numbers, booleans. Before a frozen settings class
(a policy, a spec's ``[exercise]``, a scenario) is built from one of its tables, :func:`check_table` compares each
value with the class's annotation, at any depth, and refuses a wrong one with a
:class:`~integration_kit.errors.ConfigurationError` whose ``field`` is the path as the user wrote it
(``retry_on_status[0]``); the loader that knows where the table sits puts its own key in front
(:meth:`~integration_kit.errors.ConfigurationError.under`: ``retry.retry_on_status[0]``). The class's own checks
then see only values of the right type, so a list where a number goes is never a ``TypeError`` from a comparison
or a ``frozenset`` of lists, and never blamed on another field.

Understood annotations: ``bool``, ``int``, ``float`` (finite; an ``int`` is accepted), ``str``, ``None``,
``Literal[...]``, unions (``X | None``), ``tuple[X, ...]``, ``tuple[X, Y]`` and ``frozenset[X]`` (given as an
array). Anything else (a nested settings class, a mapping) is left to the class.
"""

from __future__ import annotations

import math
import types
from collections.abc import Mapping
from dataclasses import fields
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from integration_kit.errors import ConfigurationError

__all__ = ["check_table", "check_value"]


def check_table(cls: type[Any], values: Mapping[str, Any], *, owner: str | None = None) -> None:
    """Check each of ``values`` whose key is a field of the dataclass ``cls`` against the field's annotation.

    Raises :class:`ConfigurationError` with ``field`` set to the key (and the index inside an array), naming
    ``owner`` (default: the class's name) in the message. Keys that are not fields are left to the caller.
    """
    hints = _hints(cls)
    for key, value in values.items():
        if key in hints:
            check_value(hints[key], value, field=str(key), owner=owner or cls.__name__)


def check_value(annotation: Any, value: object, *, field: str, owner: str) -> None:
    """Check one value against ``annotation``; raises :class:`ConfigurationError` naming ``field`` (a path)."""
    problem = _problem(annotation, value, field)
    if problem is not None:
        path, expected, got = problem
        raise ConfigurationError(f"{owner}.{path} must be {expected}, got {got!r}", field=path)


def _hints(cls: type[Any]) -> dict[str, Any]:
    """The annotations of ``cls``'s init fields, resolved once per class."""
    if cls not in _HINTS:
        names = {f.name for f in fields(cls) if f.init}
        try:
            hints = get_type_hints(cls)
        except (NameError, TypeError):  # an annotation only importable under TYPE_CHECKING: leave it to the class
            hints = {}
        _HINTS[cls] = {name: hint for name, hint in hints.items() if name in names}
    return _HINTS[cls]


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _problem(annotation: Any, value: object, path: str) -> tuple[str, str, object] | None:
    """``None`` when ``value`` fits ``annotation``, else (the path at fault, what was expected, what was found)."""
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        options = get_args(annotation)
        found = [_problem(option, value, path) for option in options]
        if any(p is None for p in found):
            return None
        deeper = [p for p in found if p is not None and p[0] != path]  # the value had the shape; an item was wrong
        if deeper:
            return deeper[0]
        expected = " or ".join(_expected(o) for o in options if o is not type(None))
        return path, expected + (" (or left out)" if type(None) in options else ""), value
    if origin in (tuple, frozenset):
        return _array_problem(annotation, value, path)
    if _expected(annotation) == "" or _fits(annotation, value):
        return None
    return path, _expected(annotation), value


def _array_problem(annotation: Any, value: object, path: str) -> tuple[str, str, object] | None:
    args = get_args(annotation)
    fixed = get_origin(annotation) is tuple and not (len(args) == 2 and args[1] is Ellipsis)
    if not isinstance(value, (list, tuple, frozenset, set)) or (fixed and len(value) != len(args)):
        return path, _expected(annotation), value
    items = zip(args, value, strict=True) if fixed else ((args[0], item) for item in value)
    indexed = isinstance(value, (list, tuple))  # a set has no order to point into
    for index, (item_type, item) in enumerate(items):
        problem = _problem(item_type, item, f"{path}[{index}]" if indexed else path)
        if problem is not None:
            return problem
    return None


def _fits(annotation: Any, value: object) -> bool:
    if get_origin(annotation) is Literal:
        return any(type(value) is type(choice) and value == choice for choice in get_args(annotation))
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is type(None):
        return value is None
    return isinstance(value, annotation)


def _expected(annotation: Any) -> str:
    """What ``annotation`` asks for, in the user's words; ``""`` for an annotation this module leaves alone."""
    origin = get_origin(annotation)
    if origin is Literal:
        return f"one of {', '.join(map(repr, get_args(annotation)))}"
    if origin in (tuple, frozenset):
        args = get_args(annotation)
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            return f"an array of {len(args)} values"
        return f"an array of {_PLURAL.get(args[0], 'values')}"
    return _SINGULAR.get(annotation, "")


_SINGULAR: dict[Any, str] = {
    bool: "true or false",
    int: "an integer",
    float: "a finite number",
    str: "a string",
    type(None): "left out",
}
_PLURAL: dict[Any, str] = {bool: "booleans", int: "integers", float: "finite numbers", str: "strings"}
