"""The neutral model of an OpenAPI document: what the kit needs from OpenAPI 3.0, 3.1 or Swagger 2.0.

Every part keeps ``pointer``, the JSON pointer (RFC 6901) of where it is written in the document, so a generated
spec and every error can say where a value came from. Schemas are kept as written (``$ref`` and all) with the
pointer of their place; :mod:`integration_kit.openapi.validation` compiles them with the document's registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from integration_kit.openapi.errors import OpenAPIError

__all__ = [
    "IDEMPOTENCY_HEADER",
    "ApiDocument",
    "Body",
    "Operation",
    "Parameter",
    "Response",
    "SecurityScheme",
    "Server",
    "escape",
]

#: The request header an operation declares to take an idempotency key (IETF draft-ietf-httpapi-idempotency-key).
IDEMPOTENCY_HEADER = "idempotency-key"

Location = Literal["query", "header", "path", "cookie"]


def escape(token: str) -> str:
    """One reference token of a JSON pointer (RFC 6901): ``~`` as ``~0``, ``/`` as ``~1``."""
    return token.replace("~", "~0").replace("/", "~1")


@dataclass(frozen=True, slots=True)
class Server:
    """A base URL, with its variables replaced by their defaults; ``pointer`` is where it is written."""

    url: str
    pointer: str


@dataclass(frozen=True, slots=True)
class SecurityScheme:
    """One security scheme: ``type`` is ``http``, ``apiKey``, ``oauth2``, ``openIdConnect`` or ``basic`` (2.0);
    ``scheme`` the HTTP scheme (``bearer``, ``basic``); ``location`` and ``header`` where an API key goes."""

    name: str
    type: str
    pointer: str
    scheme: str = ""
    location: str = ""
    header: str = ""


@dataclass(frozen=True, slots=True)
class Parameter:
    """A parameter: its ``name``, where it goes, whether it is required, and its schema (``None``: any) with the
    schema's pointer (``""`` when the schema is not written as one: a Swagger 2.0 parameter's own ``type``)."""

    name: str
    location: Location
    required: bool
    pointer: str
    schema: Mapping[str, Any] | None = None
    schema_pointer: str = ""


@dataclass(frozen=True, slots=True)
class Body:
    """A request body: its media type, whether it is required, its schema and the schema's pointer."""

    media_type: str
    required: bool
    pointer: str
    schema: Mapping[str, Any] | None = None
    schema_pointer: str = ""


@dataclass(frozen=True, slots=True)
class Response:
    """A documented response: ``status`` as written (``"200"``, ``"4XX"``, ``"default"``), its JSON schema if any."""

    status: str
    pointer: str
    media_type: str = ""
    schema: Mapping[str, Any] | None = None
    schema_pointer: str = ""

    def matches(self, status: int) -> bool:
        """Whether this entry documents ``status`` exactly or by its class (``2XX``)."""
        return self.status == str(status) or self.status.upper() == f"{status // 100}XX"


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation: ``method`` (upper case), ``path`` as templated in the document, ``operation_id`` (the
    document's, else ``"METHOD path"``), parameters (path-level ones merged in), body, responses and the names of
    the security schemes it accepts (``None`` for the document's default)."""

    operation_id: str
    method: str
    path: str
    pointer: str
    parameters: tuple[Parameter, ...] = ()
    body: Body | None = None
    responses: tuple[Response, ...] = ()
    security: tuple[str, ...] | None = None
    summary: str = ""
    deprecated: bool = False
    id_pointer: str = ""

    @property
    def idempotency_key(self) -> Parameter | None:
        """The ``Idempotency-Key`` header parameter the operation declares, if any."""
        for p in self.parameters:
            if p.location == "header" and p.name.lower() == IDEMPOTENCY_HEADER:
                return p
        return None

    @property
    def error_statuses(self) -> tuple[int, ...]:
        """The documented 4xx and 5xx statuses, sorted (classes like ``5XX`` and ``default`` are not numbers)."""
        return tuple(sorted(int(r.status) for r in self.responses if r.status.isdigit() and int(r.status) >= 400))

    def response_for(self, status: int) -> Response | None:
        """The documented response for ``status``: the exact code, else its class, else ``default``."""
        exact = [r for r in self.responses if r.status == str(status)]
        ranged = [r for r in self.responses if r.matches(status)]
        fallback = [r for r in self.responses if r.status == "default"]
        found = exact or ranged or fallback
        return found[0] if found else None


@dataclass(frozen=True, slots=True)
class ApiDocument:
    """A read OpenAPI document: ``version`` as written (``"3.1.0"``, ``"2.0"``), its servers, operations and
    security schemes, and the parsed ``data`` (read-only by convention) that schemas' pointers point into."""

    source: str
    version: str
    title: str
    servers: tuple[Server, ...]
    operations: tuple[Operation, ...]
    security_schemes: Mapping[str, SecurityScheme]
    default_security: tuple[str, ...]
    data: Mapping[str, Any] = field(repr=False)

    @property
    def dialect(self) -> Literal["2.0", "3.0", "3.1"]:
        """The OpenAPI generation: ``"2.0"`` (Swagger), ``"3.0"`` or ``"3.1"``."""
        if self.version.startswith("2"):
            return "2.0"
        return "3.1" if self.version.startswith("3.1") else "3.0"

    def operation(self, operation_id: str) -> Operation:
        """The operation of that ``operationId``; raises :class:`OpenAPIError` naming ``/paths`` when none."""
        for op in self.operations:
            if op.operation_id == operation_id:
                return op
        raise OpenAPIError(self.source, "/paths", f"no operation has operationId {operation_id!r}")

    def find(self, method: str, path: str) -> Operation | None:
        """The operation at ``method`` and ``path`` (as templated in the document), if any."""
        for op in self.operations:
            if op.method == method.upper() and op.path == path:
                return op
        return None

    def security_of(self, operation: Operation) -> tuple[str, ...]:
        """The security scheme names ``operation`` accepts (its own, else the document's default)."""
        return operation.security if operation.security is not None else self.default_security
