"""The errors of the server side: idempotency keys the guard cannot honour, and webhooks that fail verification.

Each is an :class:`~integration_kit.errors.IntegrationError`, so ``except IntegrationError`` still catches them;
the call's own tree is drawn in :mod:`integration_kit.errors`.

```
IntegrationError                    (integration_kit.errors)
├── IdempotencyError                an idempotency key could not be honoured (server side)
│   ├── RequestInFlight             the same key is executing elsewhere; ``retry_after`` seconds (HTTP 409)
│   └── IdempotencyKeyReused        the key was first used with another request fingerprint (HTTP 422)
└── WebhookError                    a webhook could not be received or delivered
    ├── WebhookVerificationError (ValueError)  a delivery failed verification: answered 4xx, never processed
    │   ├── SignatureMissing        a required header (signature, id, timestamp) is absent
    │   ├── SignatureMalformed      a header cannot be parsed
    │   ├── TimestampOutsideTolerance  the signed timestamp is too old or too new (a replay)
    │   └── SignatureMismatch       no signature matches any active secret
    ├── PayloadTooLarge (ValueError)  the body passed the receiver's ``max_body_bytes`` (HTTP 413)
    └── ...                         the sender's own: see :mod:`integration_kit.webhooks.errors`
```

``WebhookError`` lives here, not with the sender, because the receiver (this layer) raises its subclasses and
imports only point down; :mod:`integration_kit.webhooks.errors` re-exports it with the whole webhook tree.
"""

from __future__ import annotations

from integration_kit.errors import IntegrationError

__all__ = [
    "IdempotencyError",
    "IdempotencyKeyReused",
    "PayloadTooLarge",
    "RequestInFlight",
    "SignatureMalformed",
    "SignatureMismatch",
    "SignatureMissing",
    "TimestampOutsideTolerance",
    "WebhookError",
    "WebhookVerificationError",
]


class IdempotencyError(IntegrationError):
    """An idempotency key could not be honoured for this request. ``key`` is the key."""

    def __init__(self, message: str, *, key: str, **context: str | None) -> None:
        super().__init__(message, **context)  # type: ignore[arg-type]
        self.key = key


class RequestInFlight(IdempotencyError):
    """A request with the same key is still executing; try again after ``retry_after`` seconds (HTTP 409)."""

    def __init__(self, message: str, *, key: str, retry_after: float, **context: str | None) -> None:
        super().__init__(message, key=key, **context)
        self.retry_after = retry_after


class IdempotencyKeyReused(IdempotencyError):
    """The key was first used with a different request (method, path or body): HTTP 422."""


class WebhookError(IntegrationError):
    """A webhook could not be received or delivered."""


class WebhookVerificationError(WebhookError, ValueError):
    """A delivery failed verification; it is answered with a 4xx and never processed.

    ``scheme`` names the signature scheme and ``header`` the header at fault. Neither the message nor any attribute
    holds a secret or a signature.
    """

    def __init__(self, message: str, *, scheme: str, header: str | None = None, **context: str | None) -> None:
        super().__init__(f"{scheme}: {message}", **context)  # type: ignore[arg-type]
        self.scheme = scheme
        self.header = header


class SignatureMissing(WebhookVerificationError):
    """A header the scheme requires (signature, message id, timestamp) is absent or empty."""


class SignatureMalformed(WebhookVerificationError):
    """A header is present but cannot be parsed (no timestamp, bad base64, not a number, no known version)."""


class TimestampOutsideTolerance(WebhookVerificationError):
    """The signed timestamp is further from now than the tolerance: a replay or a badly wrong clock.

    ``skew`` is how far (seconds, positive: in the past) and ``tolerance`` the allowed distance.
    """

    def __init__(self, message: str, *, scheme: str, header: str | None, skew: float, tolerance: float) -> None:
        super().__init__(message, scheme=scheme, header=header)
        self.skew = skew
        self.tolerance = tolerance


class SignatureMismatch(WebhookVerificationError):
    """No signature in the header matches the body under any active secret: forged, altered or a wrong secret."""


class PayloadTooLarge(WebhookError, ValueError):
    """A webhook body passed ``limit`` bytes; it was refused (HTTP 413) before being verified or stored."""

    def __init__(self, message: str, *, limit: int, **context: str | None) -> None:
        super().__init__(message, **context)  # type: ignore[arg-type]
        self.limit = limit
