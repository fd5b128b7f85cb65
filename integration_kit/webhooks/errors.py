"""The errors of webhooks, in one place: the sender's own, and the receiver's re-exported.

Each is an :class:`~integration_kit.errors.IntegrationError`, so ``except IntegrationError`` still catches them.
The receiver's classes are defined in :mod:`integration_kit.server.errors` (the receiver sits a layer below the
sender and raises them) and are importable from here too.

```
IntegrationError                    (integration_kit.errors)
├── UnsafeRequest (ValueError)      (integration_kit.errors)
└── WebhookError                    a webhook could not be received or delivered
    ├── WebhookVerificationError (ValueError)  a delivery failed verification: answered 4xx, never processed
    │   ├── SignatureMissing        a required header (signature, id, timestamp) is absent
    │   ├── SignatureMalformed      a header cannot be parsed
    │   ├── TimestampOutsideTolerance  the signed timestamp is too old or too new (a replay)
    │   └── SignatureMismatch       no signature matches any active secret
    ├── PayloadTooLarge (ValueError)  the body passed the receiver's ``max_body_bytes`` (HTTP 413)
    ├── UnsafeDestination (UnsafeRequest)  a destination resolves to a refused address (SSRF guard)
    └── EndpointDisabled            deliveries to the endpoint stopped: it answered 410 or failed too long
```
"""

from __future__ import annotations

from integration_kit.errors import UnsafeRequest
from integration_kit.server.errors import (
    PayloadTooLarge,
    SignatureMalformed,
    SignatureMismatch,
    SignatureMissing,
    TimestampOutsideTolerance,
    WebhookError,
    WebhookVerificationError,
)

__all__ = [
    "EndpointDisabled",
    "PayloadTooLarge",
    "SignatureMalformed",
    "SignatureMismatch",
    "SignatureMissing",
    "TimestampOutsideTolerance",
    "UnsafeDestination",
    "WebhookError",
    "WebhookVerificationError",
]


class UnsafeDestination(WebhookError, UnsafeRequest):
    """A webhook destination was refused before connecting (SSRF guard).

    ``host`` is the host name and ``address`` the refused address (loopback, private, link-local, multicast,
    reserved or a cloud metadata address), or ``None`` when the URL itself was refused (scheme, credentials).
    """

    def __init__(self, message: str, *, host: str, address: str | None = None, **context: str | None) -> None:
        super().__init__(message, **context)  # type: ignore[arg-type]
        self.host = host
        self.address = address


class EndpointDisabled(WebhookError):
    """Deliveries to ``endpoint`` stopped: it answered 410 Gone, or kept failing past the allowed time."""

    def __init__(self, message: str, *, endpoint: str, reason: str, **context: str | None) -> None:
        super().__init__(message, **context)  # type: ignore[arg-type]
        self.endpoint = endpoint
        self.reason = reason
