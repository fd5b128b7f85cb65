"""Reading an OpenAPI document's file into plain data, safely: bounded size, no YAML aliases, no deep nesting.

A YAML "billion laughs" document is a few hundred bytes of anchors and aliases that expand to gigabytes when the
data is walked. PyYAML's safe loader builds aliases as shared references, so the expansion happens later, in
whoever walks the tree: :func:`read_source` refuses any alias (real OpenAPI documents do not use them), naming its
line and column. The file's size is checked before it is read (:data:`MAX_DOCUMENT_BYTES`, default 64 MiB), and
nesting deeper than the parsers' stacks is an :class:`~integration_kit.openapi.errors.OpenAPIError`, not a crash.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from integration_kit.openapi.errors import OpenAPIError

__all__ = ["MAX_DOCUMENT_BYTES", "read_source"]

#: The largest document :func:`read_source` reads, in bytes: four times the largest public description we know
#: (GitHub's, ~12 MB as JSON), far below what would strain a laptop.
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_source(path: str | Path, *, max_bytes: int = MAX_DOCUMENT_BYTES) -> dict[str, Any]:
    """The parsed document at ``path`` (JSON, or YAML when it does not start with ``{``).

    Raises :class:`~integration_kit.openapi.errors.OpenAPIError` for a missing or unreadable file, one larger
    than ``max_bytes``, a syntax error (with its line and column), a YAML alias, nesting too deep to parse, or a
    document that is not a mapping.
    """
    path = Path(path)
    source = str(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise OpenAPIError(source, "", f"cannot read the file ({exc.strerror})") from None
    if size > max_bytes:
        raise OpenAPIError(source, "", f"the file has {size} bytes, more than the limit of {max_bytes}")
    try:
        with path.open("rb") as fh:
            raw = fh.read(max_bytes + 1)
        text = raw.decode("utf-8-sig")
    except OSError as exc:
        raise OpenAPIError(source, "", f"cannot read the file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise OpenAPIError(source, "", "the file is not UTF-8 text") from None
    data = _json(text, source) if text.lstrip().startswith("{") else _yaml(text, source)
    if not isinstance(data, dict):
        raise OpenAPIError(source, "", f"not an OpenAPI document: the top level is a {type(data).__name__}")
    return data


def _json(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise OpenAPIError(source, f"line {exc.lineno}, column {exc.colno}", f"malformed JSON ({exc.msg})") from None
    except RecursionError:
        raise OpenAPIError(source, "", "the JSON is nested too deeply to read") from None


def _yaml(text: str, source: str) -> Any:
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.AliasEvent):
                mark = event.start_mark
                where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
                raise OpenAPIError(
                    source,
                    where,
                    f"YAML alias *{event.anchor} refused (aliases can expand a small file into gigabytes)",
                )
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader, and no alias left to expand
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise OpenAPIError(source, where, f"malformed YAML ({exc.problem})") from None
    except yaml.YAMLError as exc:
        raise OpenAPIError(source, "", f"malformed YAML ({type(exc).__name__})") from None
    except RecursionError:
        raise OpenAPIError(source, "", "the YAML is nested too deeply to read") from None
