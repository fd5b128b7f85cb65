"""Apply settings to a spec's TOML text, keeping everything else (comments, order, layout) as it is.

:func:`apply_settings` sets ``table.key = value`` pairs (``"retry.max_attempts"``) in the text of an integration
spec: a key already in its table has its value replaced (its comment is kept when it has one), a missing key is
added at the end of its table, a missing table is added at the end of the top-level tables (before the first
``[[scenario]]``). :func:`settings_diff` shows the change as a unified diff. The result is parsed again, so a
broken edit is an error, never a broken file.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from integration_kit.errors import ConfigurationError

__all__ = ["apply_settings", "settings_diff", "toml_value", "write_settings"]

_HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\-]+)\s*\]\]?\s*(#.*)?$")


def toml_value(value: Any) -> str:
    """``value`` as a TOML literal (bool, int, float, string, or a list of them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if value != int(value) else f"{value:.1f}"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"toml_value: cannot write a {type(value).__name__}")


def apply_settings(text: str, settings: Mapping[str, Any], *, source: str = "<spec>") -> str:
    """``text`` with each ``"table.key": value`` of ``settings`` set (see the module docstring)."""
    lines = text.splitlines()
    for dotted, value in settings.items():
        table, _, key = dotted.partition(".")
        if not table or not key:
            raise ValueError(f"apply_settings: expected 'table.key', got {dotted!r}")
        lines = _set(lines, table, key, toml_value(value))
    edited = "\n".join(lines) + "\n"
    try:
        tomllib.loads(edited)
    except tomllib.TOMLDecodeError as exc:  # pragma: no cover - a bug here, not a user's mistake
        raise ConfigurationError(f"{source}: the edited spec is not valid TOML: {exc}") from exc
    return edited


def _set(lines: list[str], table: str, key: str, literal: str) -> list[str]:
    headers = [
        (i, m.group(1), line.lstrip().startswith("[[")) for i, line in enumerate(lines) if (m := _HEADER.match(line))
    ]
    start = next((i for i, name, array in headers if name == table and not array), None)
    if start is None:
        first_array = next((i for i, _, array in headers if array), len(lines))
        insert_at = first_array
        while insert_at > 0 and not lines[insert_at - 1].strip():
            insert_at -= 1
        block = ["", f"[{table}]", f"{key} = {literal}"]
        return [*lines[:insert_at], *block, *([""] if insert_at < len(lines) else []), *lines[insert_at:]]
    end = next((i for i, _, _ in headers if i > start), len(lines))
    pattern = re.compile(rf"^(\s*){re.escape(key)}\s*=\s*(.*?)(\s+#.*)?$")
    last_key = start
    for i in range(start + 1, end):
        stripped = lines[i].strip()
        if stripped and not stripped.startswith("#"):
            last_key = i
        m = pattern.match(lines[i])
        if m:
            setting = f"{m.group(1)}{key} = {literal}"
            comment = (m.group(3) or "").lstrip()
            if comment:  # the comment stays in its column while the new value fits before it
                column = len(lines[i]) - len(comment)
                setting = setting.ljust(column - 1) + " " + comment
            return [*lines[:i], setting, *lines[i + 1 :]]
    return [*lines[: last_key + 1], f"{key} = {literal}", *lines[last_key + 1 :]]


def settings_diff(path: str | Path, settings: Mapping[str, Any]) -> str:
    """The unified diff that :func:`write_settings` would apply to the spec file at ``path`` ('' when none)."""
    path = Path(path)
    before = path.read_text()
    after = apply_settings(before, settings, source=str(path))
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True), after.splitlines(keepends=True), f"a/{path.name}", f"b/{path.name}"
        )
    )


def write_settings(path: str | Path, settings: Mapping[str, Any]) -> Path:
    """Apply ``settings`` to the spec file at ``path`` in place and return the path."""
    path = Path(path)
    path.write_text(apply_settings(path.read_text(), settings, source=str(path)))
    return path
