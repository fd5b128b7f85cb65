"""The document's ``$ref`` s, through the ``referencing`` library: one registry per document, every reference
checked once when the document is read, and chains of references followed with a bound.

A reference that points nowhere, to another file, or round in a circle (``A: {$ref: B}``, ``B: {$ref: A}``) is an
:class:`~integration_kit.openapi.errors.OpenAPIError` naming the pointer of the ``$ref`` that fails. A schema that
refers to itself *through a property* (a tree node) is legitimate and left alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from referencing import Registry, Resource
from referencing.exceptions import Unresolvable

from integration_kit.openapi.errors import OpenAPIError
from integration_kit.openapi.model import escape

__all__ = ["DOCUMENT_URI", "MAX_REF_HOPS", "References"]

#: The URI the document is registered under: every local ``$ref`` (``#/components/...``) resolves against it.
DOCUMENT_URI = "urn:integration-kit:openapi"
#: The longest chain of ``$ref`` to ``$ref`` followed before the chain is called a cycle.
MAX_REF_HOPS = 64


class References:
    """The ``referencing`` registry of one document, and checked lookups naming ``source`` in their errors."""

    def __init__(self, data: Mapping[str, Any], source: str) -> None:
        self.source = source
        self.registry: Registry[Any] = Registry().with_resource(DOCUMENT_URI, Resource.opaque(data))
        self._resolver = self.registry.resolver(base_uri=DOCUMENT_URI)
        self._checked: dict[str, str] = {}

    def target(self, ref: object, at: str) -> str:
        """The JSON pointer ``ref`` (the value of the ``$ref`` at pointer ``at``) resolves to; raises when it
        points nowhere, outside the document, or is not a string."""
        if not isinstance(ref, str):
            raise OpenAPIError(self.source, at, f"$ref must be a string, got {type(ref).__name__}")
        if ref in self._checked:
            return self._checked[ref]
        if not ref.startswith("#"):
            raise OpenAPIError(self.source, at, f"$ref {ref!r} points outside the document (bundle it first)")
        try:
            self._resolver.lookup(ref)
        except Unresolvable:
            raise OpenAPIError(self.source, at, f"$ref {ref!r} points to nothing in the document") from None
        self._checked[ref] = ref[1:]
        return ref[1:]

    def resolve(self, node: object, at: str) -> tuple[Any, str]:
        """``node`` with its ``$ref`` chain followed: ``(the object, its pointer)``. Raises on a broken ref or a
        cycle, naming the ``$ref`` where it was found."""
        seen: set[str] = set()
        pointer = at
        while isinstance(node, Mapping) and "$ref" in node:
            target = self.target(node["$ref"], f"{pointer}/$ref")
            if target in seen or len(seen) >= MAX_REF_HOPS:
                raise OpenAPIError(self.source, f"{pointer}/$ref", f"$ref cycle through {node['$ref']!r}")
            seen.add(target)
            node = self._resolver.lookup(node["$ref"]).contents
            pointer = target
        return node, pointer

    def check_all(self, data: Mapping[str, Any]) -> None:
        """Check every ``$ref`` in ``data`` resolves (examples excepted: they are data, not references), and that
        no schema is only a chain of references that comes back to itself."""
        stack: list[tuple[Any, str]] = [(data, "")]
        while stack:
            node, at = stack.pop()
            if isinstance(node, Mapping):
                ref = node.get("$ref")
                if isinstance(ref, str):
                    self.resolve(node, at)
                for key, value in node.items():
                    if key in ("example", "examples", "x-examples") or not isinstance(value, Mapping | list):
                        continue
                    stack.append((value, f"{at}/{escape(str(key))}"))
            elif isinstance(node, list):
                stack.extend((value, f"{at}/{i}") for i, value in enumerate(node) if isinstance(value, Mapping | list))
