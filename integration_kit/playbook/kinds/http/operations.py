"""The optional ``[[operations]]`` table of an HTTP spec: the partner's operations the integration uses, each with
its resilience decision.

``integration-kit new NAME --openapi FILE`` writes one entry per operation of the partner's OpenAPI document;
``integration-kit check NAME --openapi FILE`` compares the entries with a newer document (contract drift). A spec
without the table is valid, as before. Each entry::

    [[operations]]
    id = "createCharge"          # the operationId
    method = "POST"
    path = "/charges"            # as templated in the document
    retry = "keyed"              # safe | keyed | once (see RETRY_RULES)
    timeout = "standard"         # fast | standard | slow (see TIMEOUT_CLASSES)
    errors = [400, 402, 429]     # the documented error statuses
    required = ["body.amount"]   # the request fields the document required then (drift's baseline)
    returns = "object"           # the JSON type of the 2xx answer then (drift's baseline)

A ``keyed`` entry's method must be in ``idempotency_methods`` (else the client sends no key) and a ``safe``
entry's method must be idempotent by HTTP semantics; each mismatch is a ``ConfigurationError`` naming the entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from integration_kit.errors import ConfigurationError
from integration_kit.policies.config import IDEMPOTENT_METHODS

__all__ = [
    "RETRY_RULES",
    "RETURN_TYPES",
    "TIMEOUT_CLASSES",
    "OperationEntry",
    "operations_from_table",
    "operations_section",
]

#: How an operation may be retried, and what each rule means.
RETRY_RULES: Mapping[str, str] = {
    "safe": "idempotent by HTTP method semantics (RFC 9110): retried on transient failures",
    "keyed": "a write that takes an Idempotency-Key: retried with the same key, so the partner applies it once",
    "once": "a write without an idempotency key: never retried once the partner may have seen it",
}
#: The timeout classes of operations, and what each is for (the spec's ``[timeouts]`` apply to every class; the
#: class tells a reader which calls are expected to be slow).
TIMEOUT_CLASSES: Mapping[str, str] = {
    "fast": "a lookup: answers in well under the read timeout",
    "standard": "a write or a listing: the spec's read timeout",
    "slow": "an export, upload, search or batch: may need a longer per-call timeout",
}
#: The JSON types a 2xx answer may be recorded as (``""``: not documented).
RETURN_TYPES = ("", "object", "array", "string", "number", "integer", "boolean", "null")
_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE", "POST", "PATCH"})


@dataclass(frozen=True, slots=True)
class OperationEntry:
    """One ``[[operations]]`` entry, checked (see the module docstring for each field)."""

    id: str
    method: str
    path: str
    retry: str
    timeout: str = "standard"
    errors: tuple[int, ...] = ()
    required: tuple[str, ...] = ()
    returns: str = ""

    @property
    def reason(self) -> str:
        """Why the entry is retried as it is, in words."""
        return f"{self.method}: {RETRY_RULES[self.retry]}"


Fail = Callable[[str, str], ConfigurationError]


def operations_from_table(value: object, idempotency_methods: frozenset[str], fail: Fail) -> tuple[OperationEntry, ...]:
    """The checked entries of the ``operations`` array (``None``: none); ``fail(field, reason)`` builds the error."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise fail("operations", "must be an array of tables ([[operations]])")
    found: list[OperationEntry] = []
    seen: set[str] = set()
    for index, item in enumerate(value):
        entry = _entry(item, f"operations[{index}]", idempotency_methods, fail)
        if entry.id in seen:
            raise fail(f"operations[{index}].id", f"operation {entry.id!r} is listed twice")
        seen.add(entry.id)
        found.append(entry)
    return tuple(found)


def _entry(item: object, at: str, keyed_methods: frozenset[str], fail: Fail) -> OperationEntry:
    if not isinstance(item, Mapping):
        raise fail(at, f"must be a table, got {type(item).__name__}")
    allowed = {f.name for f in fields(OperationEntry)}
    if unknown := sorted(set(item) - allowed):
        raise fail(f"{at}.{unknown[0]}", f"unknown field (expected one of {', '.join(sorted(allowed))})")
    for key in ("id", "method", "path", "retry"):
        if not isinstance(item.get(key), str) or not item[key]:
            raise fail(f"{at}.{key}", "is required and must be a non-empty string")
    method = item["method"].upper()
    if method not in _METHODS:
        raise fail(f"{at}.method", f"must be an HTTP method ({', '.join(sorted(_METHODS))}), got {item['method']!r}")
    if not item["path"].startswith("/"):
        raise fail(f"{at}.path", f"must start with '/', got {item['path']!r}")
    retry = _choice(item["retry"], RETRY_RULES, f"{at}.retry", fail)
    if retry == "safe" and method not in IDEMPOTENT_METHODS:
        raise fail(f"{at}.retry", f"{method} is not idempotent: use 'keyed' (with an Idempotency-Key) or 'once'")
    if retry == "keyed" and method not in keyed_methods:
        raise fail(f"{at}.retry", f"'keyed' needs {method} in idempotency_methods (else no key is sent)")
    timeout = _choice(item.get("timeout", "standard"), TIMEOUT_CLASSES, f"{at}.timeout", fail)
    returns = _choice(item.get("returns", ""), dict.fromkeys(RETURN_TYPES, ""), f"{at}.returns", fail)
    return OperationEntry(
        id=item["id"],
        method=method,
        path=item["path"],
        retry=retry,
        timeout=timeout,
        errors=tuple(_list(item.get("errors", []), int, f"{at}.errors", fail)),
        required=tuple(_list(item.get("required", []), str, f"{at}.required", fail)),
        returns=returns,
    )


def _choice(value: object, choices: Mapping[str, str], at: str, fail: Fail) -> str:
    if not isinstance(value, str) or value not in choices:
        raise fail(at, f"must be one of {', '.join(repr(c) for c in choices)}, got {value!r}")
    return value


def _list(value: object, kind: type[Any], at: str, fail: Fail) -> list[Any]:
    if not isinstance(value, list):
        raise fail(at, f"must be a list, got {type(value).__name__}")
    for index, item in enumerate(value):
        if not isinstance(item, kind) or isinstance(item, bool):
            raise fail(f"{at}[{index}]", f"must be a {kind.__name__}, got {item!r}")
        if kind is int and not 400 <= item <= 599:
            raise fail(f"{at}[{index}]", f"must be an error status from 400 to 599, got {item}")
    return list(value)


def operations_section(entries: Sequence[OperationEntry]) -> list[str]:
    """The design document's section on the operations (empty when the spec lists none): every operation with
    its resilience decision and the reason."""
    if not entries:
        return []
    lines = [
        "## Operations",
        "",
        "| Operation | Call | Retry | Why | Timeout class | Documented errors |",
        "|---|---|---|---|---|---|",
    ]
    for e in entries:
        errors = ", ".join(map(str, e.errors)) or "none"
        why = RETRY_RULES[e.retry].replace("|", "/")
        lines.append(f"| `{e.id}` | `{e.method} {e.path}` | {e.retry} | {why} | {e.timeout} | {errors} |")
    return [*lines, ""]
