"""OpenAPI documents for integrations: read one (3.0, 3.1 or Swagger 2.0), generate a spec from it, validate calls
against it, and detect a partner's contract drift.

- :func:`read_openapi` reads a document into the neutral model (:class:`ApiDocument`, :class:`Operation`), or
  raises :class:`OpenAPIError` naming the JSON pointer at fault (:mod:`.read`, :mod:`.source`, :mod:`.refs`);
- :mod:`.generate` writes an HTTP spec from it (``integration-kit new NAME --openapi FILE``) and :mod:`.drift`
  compares a spec's operations with a newer document (``integration-kit check NAME --openapi FILE``);
- :class:`OperationValidators` compiles each operation's request and response schemas once (jsonschema and
  openapi-schema-validator, with the document's ``referencing`` registry);
- :class:`ValidatedCalls` and :class:`AsyncValidatedCalls` call operations by ``operationId`` through a resilient
  client, raising :class:`InvalidRequest` (nothing sent) or :class:`InvalidResponseBody`;
- :class:`~integration_kit.openapi.stand_in.DocumentedAnswers` makes a test upstream answer what the document
  says, with counted malformed answers.

Needs the ``openapi`` extra (PyYAML, referencing, jsonschema, openapi-schema-validator).
"""

from integration_kit.openapi.calls import AsyncValidatedCalls, ValidatedCalls
from integration_kit.openapi.errors import InvalidRequest, InvalidResponseBody, OpenAPIError
from integration_kit.openapi.model import ApiDocument, Body, Operation, Parameter, Response, SecurityScheme, Server
from integration_kit.openapi.read import read_openapi
from integration_kit.openapi.validation import OperationValidators

__all__ = [
    "ApiDocument",
    "AsyncValidatedCalls",
    "Body",
    "InvalidRequest",
    "InvalidResponseBody",
    "OpenAPIError",
    "Operation",
    "OperationValidators",
    "Parameter",
    "Response",
    "SecurityScheme",
    "Server",
    "ValidatedCalls",
    "read_openapi",
]
