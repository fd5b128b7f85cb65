"""What an operation asks and answers, reduced to what a spec records and drift compares: the required request
fields and the JSON type of the 2xx answer, read through the document's references (:mod:`.refs`).

Required fields are named ``body.<property>`` (the body schema's top level, ``allOf`` members included) and
``<location>.<name>`` for required parameters (``query.limit``, ``path.id``, ``header.X-Account``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from integration_kit.openapi.model import ApiDocument, Operation
from integration_kit.openapi.refs import References

__all__ = ["Contract"]


class Contract:
    """Reads operations' request and response shapes from one document."""

    def __init__(self, document: ApiDocument) -> None:
        self.document = document
        self._refs = References(document.data, document.source)

    def required_fields(self, operation: Operation) -> tuple[str, ...]:
        """The request fields ``operation`` requires, sorted (see the module docstring for the names)."""
        names = {f"{p.location}.{p.name}" for p in operation.parameters if p.required}
        body = operation.body
        if body is not None and body.schema is not None:
            names |= {f"body.{name}" for name in self._required(body.schema, body.schema_pointer, 0)}
        return tuple(sorted(names))

    def response_type(self, operation: Operation) -> str:
        """The JSON type of the first documented 2xx answer (``""``: none documented, or not one type)."""
        for response in operation.responses:
            if response.status.startswith("2") and response.schema is not None:
                schema, _ = self._refs.resolve(response.schema, response.schema_pointer)
                return _type_of(schema)
        return ""

    def _required(self, schema: Mapping[str, Any], pointer: str, depth: int) -> set[str]:
        node, where = self._refs.resolve(schema, pointer)
        if not isinstance(node, Mapping) or depth > 8:
            return set()
        names = {str(n) for n in node.get("required", []) if isinstance(n, str)}
        for index, part in enumerate(node.get("allOf", []) or []):
            if isinstance(part, Mapping):
                names |= self._required(part, f"{where}/allOf/{index}", depth + 1)
        return names


def _type_of(schema: object) -> str:
    if not isinstance(schema, Mapping):
        return ""
    kind = schema.get("type")
    if isinstance(kind, str):
        return kind
    if isinstance(kind, list):  # 3.1: ["object", "null"]
        kinds = [k for k in kind if k != "null"]
        return str(kinds[0]) if len(kinds) == 1 else ""
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return ""
