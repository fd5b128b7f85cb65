"""OpenAPI documents for integrations: read one (3.0, 3.1 or Swagger 2.0), generate a spec from it, validate calls
against it, and detect a partner's contract drift.

- :func:`read_openapi` reads a document into the neutral model (:class:`ApiDocument`, :class:`Operation`), or
  raises :class:`OpenAPIError` naming the JSON pointer at fault;
- :class:`OperationValidators` compiles each operation's request and response schemas once (jsonschema and
  openapi-schema-validator, with the document's ``referencing`` registry);
- :class:`ValidatedCalls` and :class:`AsyncValidatedCalls` call operations by ``operationId`` through a resilient
  client, raising :class:`InvalidRequest` (nothing sent) or :class:`InvalidResponseBody`.
"""

from integration_kit.openapi.errors import InvalidRequest, InvalidResponseBody, OpenAPIError
from integration_kit.openapi.model import ApiDocument, Body, Operation, Parameter, Response, SecurityScheme, Server
from integration_kit.openapi.read import read_openapi

__all__ = [
    "ApiDocument",
    "Body",
    "InvalidRequest",
    "InvalidResponseBody",
    "OpenAPIError",
    "Operation",
    "Parameter",
    "Response",
    "SecurityScheme",
    "Server",
    "read_openapi",
]
