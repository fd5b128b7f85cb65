"""The errors of reading an OpenAPI document and of validating calls against it.

```
IntegrationError
├── ConfigurationError
│   └── OpenAPIError            the document cannot be used: names the file and the JSON pointer of the place
├── InvalidRequest (ValueError) the request does not match the operation's schema: refused, nothing sent
└── AttemptError > PermanentError > InvalidResponse
    └── InvalidResponseBody     the response body does not match the documented schema: the failing field's path
```

Messages never hold a value from a request or response body (it may be a card number or a token): they name the
field's JSON pointer and the rule it broke.
"""

from __future__ import annotations

from integration_kit.errors import ConfigurationError, IntegrationError, InvalidResponse

__all__ = ["InvalidRequest", "InvalidResponseBody", "OpenAPIError"]


class OpenAPIError(ConfigurationError):
    """An OpenAPI document cannot be read or used. ``source`` is the file, ``pointer`` the JSON pointer (RFC 6901)
    of the place at fault (``""``: the whole document; ``line 3, column 7`` for a YAML syntax error)."""

    def __init__(self, source: str, pointer: str, reason: str) -> None:
        where = f"#{pointer}" if pointer.startswith("/") or pointer == "" else pointer
        super().__init__(f"{source}: {where}: {reason}", field=pointer or None)
        self.source = source
        self.pointer = pointer


class InvalidRequest(IntegrationError, ValueError):
    """A request failed the operation's schema before its first attempt: nothing was sent.

    ``operation`` is the ``operationId``, ``path`` the JSON pointer of the failing field inside what the caller
    gave (``/body/amount``, ``/query/limit``) and ``rule`` the schema keyword it broke (``type``, ``required``).
    """

    def __init__(self, message: str, *, operation: str, path: str, rule: str, **context: str | None) -> None:
        super().__init__(message, **context)  # type: ignore[arg-type]
        self.operation = operation
        self.path = path
        self.rule = rule


class InvalidResponseBody(InvalidResponse):
    """A response failed the documented schema of its status. ``path`` is the JSON pointer of the failing field
    in the body, ``rule`` the schema keyword it broke; the value itself is never shown."""

    def __init__(self, message: str, *, operation: str, path: str, rule: str, **context: str | None) -> None:
        super().__init__(message, **context)  # type: ignore[arg-type]
        self.operation = operation
        self.path = path
        self.rule = rule
