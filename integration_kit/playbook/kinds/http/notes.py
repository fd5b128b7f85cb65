"""Why each setting is what it is: the comments a spec file gives its settings, read back for the design document.

A spec explains a setting in the comment on its line, continued on the comment-only lines right below it::

    [budget]
    token_ratio = 1.0       # a 30% brownout fails ~30% of attempts: A6 keeps retrying only while
                            # token_ratio >= f/(1-f) = 0.43

:func:`setting_notes` maps each commented setting's dotted key (``"budget.token_ratio"``, ``"deadline"``,
``"objectives.p99_latency"``, ``"scenario_objectives.brownout.success_rate"``) to its comment, joined into one line.
TOML has no comments in its data model, so this reads the text; a ``#`` inside a quoted string is not a comment.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["setting_notes"]

_TABLE = re.compile(r"^\s*\[([^\[\]]+)\]\s*(?:#.*)?$")
_ARRAY_TABLE = re.compile(r"^\s*\[\[")
_KEY = re.compile(r"^\s*([A-Za-z0-9_.\"-]+)\s*=")


def setting_notes(path: str | Path) -> dict[str, str]:
    """The comment of every commented setting in the TOML file at ``path``, by dotted key (empty when none)."""
    notes: dict[str, str] = {}
    table = ""
    last: str | None = None
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if _ARRAY_TABLE.match(line):
            table, last = "\0", None  # [[scenario]] tables describe scenarios, not settings
            continue
        if match := _TABLE.match(line):
            table, last = match.group(1).strip().replace('"', ""), None
            continue
        comment = _comment(line)
        if match := _KEY.match(line):
            key = match.group(1).replace('"', "")
            last = None
            if table != "\0":
                last = f"{table}.{key}" if table else key
                if comment:
                    notes[last] = comment
            continue
        if line.strip().startswith("#") and last is not None and last in notes:
            notes[last] += " " + comment  # a comment-only line continues the setting's note
        elif not line.strip().startswith("#"):
            last = None
    return notes


def _comment(line: str) -> str:
    """The text after the first ``#`` that is not inside a string, stripped ("" when none)."""
    quote = ""
    for index, char in enumerate(line):
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "#":
            return line[index + 1 :].strip()
    return ""
