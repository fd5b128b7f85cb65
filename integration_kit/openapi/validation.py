"""Request and response validation against an operation's documented schemas, compiled once per operation.

The schemas are checked by ``openapi-schema-validator`` (jsonschema with OpenAPI's dialects: ``nullable``,
``readOnly``/``writeOnly`` for 3.0, JSON Schema 2020-12 for 3.1; Swagger 2.0 schemas are read as 3.0 ones), with
the document's ``referencing`` registry so a ``$ref`` anywhere in the document resolves. A validator is built the
first time an operation is used and kept: later calls only run it.

A failure names the JSON pointer of the failing field and the rule it broke, never the value (a request or
response body may hold a card number or a token).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema.exceptions import ValidationError, best_match
from jsonschema.protocols import Validator
from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator, OAS31Validator

from integration_kit.openapi.model import ApiDocument, Operation, escape
from integration_kit.openapi.refs import DOCUMENT_URI, References

__all__ = ["Violation", "OperationValidators"]


@dataclass(frozen=True, slots=True)
class Violation:
    """One schema failure: ``path`` (a JSON pointer inside what was checked: ``/body/card/number``), ``rule`` (the
    schema keyword: ``type``, ``required``, ``enum``) and ``expected`` (what the schema asks, from the schema, never
    the value)."""

    path: str
    rule: str
    expected: str

    def __str__(self) -> str:
        return f"{self.path or '/'} breaks {self.rule!r}" + (f" (expected {self.expected})" if self.expected else "")


class OperationValidators:
    """The compiled validators of a document's operations, built on first use and kept (thread-safe enough: two
    threads racing build the same validator twice and keep one)."""

    def __init__(self, document: ApiDocument) -> None:
        self.document = document
        self._registry = References(document.data, document.source).registry
        self._write, self._read = _classes(document.dialect)
        self._cache: dict[tuple[str, str], Validator] = {}

    def check_request(
        self,
        operation: Operation,
        *,
        path_params: Mapping[str, Any],
        params: Mapping[str, Any],
        headers: Mapping[str, str],
        body: Any,
    ) -> Violation | None:
        """The first violation of the request's parts against ``operation``'s parameters and body, or ``None``.

        ``body`` is the JSON body (``None``: no body). Headers are matched without regard to case.
        """
        given: dict[str, Mapping[str, Any]] = {
            "path": path_params,
            "query": params,
            "header": {k.lower(): v for k, v in headers.items()},
            "cookie": {},
        }
        for p in operation.parameters:
            values = given[p.location]
            key = p.name.lower() if p.location == "header" else p.name
            if key not in values:
                if p.required and p.location != "cookie":
                    return Violation(f"/{p.location}/{escape(p.name)}", "required", "a value")
                continue
            if p.schema is not None:
                found = self._first(self._validator(p.schema_pointer, self._write, p.schema), values[key])
                if found is not None:
                    return Violation(f"/{p.location}/{escape(p.name)}{found.path}", found.rule, found.expected)
        spec = operation.body
        if spec is None:
            return None
        if body is None:
            return Violation("/body", "required", "a request body") if spec.required else None
        if not spec.schema_pointer:
            return None
        found = self._first(self._validator(spec.schema_pointer, self._write), body)
        return None if found is None else Violation(f"/body{found.path}", found.rule, found.expected)

    def check_response(self, operation: Operation, status: int, body: Any) -> Violation | None:
        """The first violation of a parsed JSON response ``body`` against the schema documented for ``status``,
        or ``None`` (also when nothing is documented for it)."""
        documented = operation.response_for(status)
        if documented is None or not documented.schema_pointer:
            return None
        return self._first(self._validator(documented.schema_pointer, self._read), body)

    def _validator(self, pointer: str, cls: type[Validator], inline: Mapping[str, Any] | None = None) -> Validator:
        """The validator of the schema at ``pointer``, or of ``inline`` when it has none (built once, kept)."""
        key = (pointer or f"inline:{id(inline)}", cls.__name__)
        found = self._cache.get(key)
        if found is None:
            schema = {"$ref": f"{DOCUMENT_URI}#{pointer}"} if pointer else dict(inline or {})
            found = cls(schema, registry=self._registry)
            self._cache[key] = found
        return found

    @staticmethod
    def _first(validator: Validator, instance: Any) -> Violation | None:
        try:
            error = best_match(validator.iter_errors(instance))
        except RecursionError:
            return Violation("", "depth", "a value nested less deeply")
        return None if error is None else _violation(error)


def _violation(error: ValidationError) -> Violation:
    """The path, rule and expectation of ``error``, without the failing value."""
    path = "".join(f"/{escape(str(p))}" for p in error.absolute_path)
    rule = str(error.validator)
    expected = ""
    if rule == "required" and isinstance(error.instance, Mapping) and isinstance(error.validator_value, list):
        missing = [name for name in error.validator_value if name not in error.instance]
        if missing:
            return Violation(f"{path}/{escape(str(missing[0]))}", "required", "a value")
    if rule in ("type", "format", "minimum", "maximum", "minLength", "maxLength", "maxItems", "minItems"):
        expected = f"{rule} {error.validator_value!r}"
    elif rule == "enum" and isinstance(error.validator_value, list):
        expected = "one of " + ", ".join(repr(v) for v in error.validator_value[:10])
    elif rule == "additionalProperties":
        expected = "no other properties"
    return Violation(path, rule, expected)


def _classes(dialect: str) -> tuple[type[Validator], type[Validator]]:
    """The validator classes for requests and responses of a document of ``dialect``."""
    if dialect == "3.1":
        return OAS31Validator, OAS31Validator
    return OAS30WriteValidator, OAS30ReadValidator
