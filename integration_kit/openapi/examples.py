"""An answer that conforms to a documented schema, for a stand-in partner to send: the document's own example when
it gives one, else the smallest instance the schema allows (required properties only, one array item, the lowest
number, the first enum value), built through the document's references (:mod:`.refs`).

It is a stand-in's body, not a validator: the tests check what it builds with the validators
(:mod:`.validation`), and :func:`malformed` breaks one field of it on purpose.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from integration_kit.openapi.model import escape
from integration_kit.openapi.refs import References

__all__ = ["Examples", "malformed"]

#: How deep an example is built before nested optional structure stops (a recursive schema ends here).
MAX_DEPTH = 12
_STRINGS = {
    "date-time": "2026-01-01T00:00:00Z",
    "date": "2026-01-01",
    "email": "someone@example.com",
    "uri": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


class Examples:
    """Builds example instances of a document's schemas (see the module docstring)."""

    def __init__(self, refs: References) -> None:
        self._refs = refs

    def of(self, schema: object, pointer: str, depth: int = 0) -> Any:
        """An instance of the schema at ``pointer`` (``schema`` is its value there, ``$ref`` and all)."""
        node, where = self._refs.resolve(schema, pointer)
        if not isinstance(node, Mapping) or depth > MAX_DEPTH:
            return None
        for key in ("example", "default", "const"):
            if key in node:
                return node[key]
        if isinstance(node.get("enum"), list) and node["enum"]:
            return node["enum"][0]
        for key in ("allOf", "oneOf", "anyOf"):
            parts = node.get(key)
            if isinstance(parts, list) and parts:
                return self._combined(key, parts, where, depth)
        return self._typed(node, where, depth)

    def _combined(self, key: str, parts: list[Any], where: str, depth: int) -> Any:
        if key != "allOf":
            return self.of(parts[0], f"{where}/{key}/0", depth + 1)
        merged: dict[str, Any] = {}
        for index, part in enumerate(parts):
            value = self.of(part, f"{where}/allOf/{index}", depth + 1)
            if isinstance(value, dict):
                merged.update(value)
        return merged

    def _typed(self, node: Mapping[str, Any], where: str, depth: int) -> Any:
        kind = node.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind == "object" or (kind is None and "properties" in node):
            properties = node.get("properties") or {}
            return {
                name: self.of(properties[name], f"{where}/properties/{escape(name)}", depth + 1)
                for name in node.get("required", [])
                if name in properties
            }
        if kind == "array":
            return [self.of(node.get("items", {}), f"{where}/items", depth + 1)]
        if kind in ("integer", "number"):
            low = node.get("minimum", node.get("exclusiveMinimum", 0))
            return int(low) + 1 if kind == "integer" else float(low) + 1.0
        if kind == "boolean":
            return True
        if kind == "string":
            text = _STRINGS.get(str(node.get("format")), "example")
            return text.ljust(int(node.get("minLength", 0)), "x")
        return None


def malformed(body: Any, rng: random.Random) -> Any:
    """``body`` with one field broken: a value of the wrong type for a field of an object (chosen by ``rng``), or
    a string where the body was anything else."""
    if isinstance(body, dict) and body:
        name = rng.choice(sorted(body))
        value = body[name]
        return {**body, name: 12345 if isinstance(value, str) else "malformed"}
    if isinstance(body, list) and body:
        return [malformed(body[0], rng), *body[1:]]
    return "malformed"
