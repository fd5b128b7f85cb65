"""Webhook signatures: sign and verify the Standard Webhooks, Stripe, GitHub and a generic HMAC scheme.

Every scheme signs the raw body bytes with HMAC and compares in constant time (:func:`hmac.compare_digest` on
bytes). Several secrets may be active at once (rotation): signing emits one signature per secret where the scheme
allows it, and verification accepts a signature made with any of them. Time comes from an injected clock (seconds
since the epoch, :class:`~integration_kit.clock.WallClock` by default), so the tolerance window is tested with a
:class:`~integration_kit.clock.ManualClock`.

==================  ===============================================  ==============================================
scheme              header(s)                                        signed content and signature
==================  ===============================================  ==============================================
StandardWebhooks    ``webhook-id``, ``webhook-timestamp``,           ``{id}.{timestamp}.{body}``, base64, ``whsec_``
                    ``webhook-signature: v1,<b64> v1,<b64>``         base64 secrets (standardwebhooks.com)
StripeSignature     ``Stripe-Signature: t=<ts>,v1=<hex>,v1=<hex>``   ``{t}.{body}``, hex; the ``whsec_`` string is
                                                                     the key as it is (docs.stripe.com/webhooks)
GitHubSignature     ``X-Hub-Signature-256: sha256=<hex>``            the body, hex; no timestamp (replays are caught
                                                                     by deduplication on ``X-GitHub-Delivery``)
HMACSignature       any header, algorithm, hex or base64, prefix     the body (optionally with a timestamp header)
==================  ===============================================  ==============================================

:meth:`~WebhookScheme.verify` raises only the :class:`~integration_kit.server.errors.WebhookVerificationError` family
(missing header, malformed header, timestamp outside the tolerance, no matching signature) or
:class:`~integration_kit.server.errors.PayloadTooLarge`, whatever the headers and body hold; messages never contain a
secret or a signature. The default tolerance is 5 minutes (300 s), as the Standard Webhooks specification and
Stripe's libraries use; the default body limit is 1 MiB (raise it for GitHub, which sends up to 25 MB).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

from integration_kit.clock import Clock, WallClock
from integration_kit.errors import ConfigurationError
from integration_kit.server.errors import (
    PayloadTooLarge,
    SignatureMalformed,
    SignatureMismatch,
    SignatureMissing,
    TimestampOutsideTolerance,
)

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_TOLERANCE",
    "GitHubSignature",
    "HMACSignature",
    "StandardWebhooks",
    "StripeSignature",
    "VerifiedWebhook",
    "WebhookScheme",
    "generate_standard_secret",
]

#: The replay window (seconds): 5 minutes, the Standard Webhooks specification's and Stripe's default.
DEFAULT_TOLERANCE = 300.0
#: The largest body verified (bytes): 1 MiB. GitHub caps its payloads at 25 MB; raise the limit for it.
DEFAULT_MAX_BODY_BYTES = 1 << 20
#: The longest header value parsed (characters); a longer one is malformed, so parsing stays cheap.
MAX_HEADER_CHARS = 8192

Algorithm = Literal["sha1", "sha256", "sha512"]
Encoding = Literal["hex", "base64"]


@dataclass(frozen=True, slots=True)
class VerifiedWebhook:
    """A delivery that passed verification.

    ``id`` is the sender's event or message id (the deduplication key): the ``webhook-id`` header, Stripe's event
    ``id`` in the body, GitHub's ``X-GitHub-Delivery``, or the body's SHA-256 when the scheme carries none.
    ``timestamp`` is the signed time (epoch seconds) when the scheme has one; ``body`` the raw bytes.
    """

    id: str
    timestamp: float | None
    body: bytes
    scheme: str


class WebhookScheme(ABC):
    """A signature scheme with its active secrets, tolerance window, body limit and clock."""

    #: The scheme's name in errors and events.
    name: ClassVar[str]

    def __init__(
        self,
        secrets: str | Sequence[str],
        *,
        tolerance: float = DEFAULT_TOLERANCE,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        clock: Clock | None = None,
    ) -> None:
        values = [secrets] if isinstance(secrets, str) else list(secrets)
        if not values or any(not isinstance(v, str) or not v.strip() for v in values):
            raise ConfigurationError(f"{self.name}: at least one non-empty secret is required")
        if not (isinstance(tolerance, (int, float)) and math.isfinite(tolerance) and tolerance > 0):
            raise ConfigurationError(f"{self.name}: tolerance must be a positive number of seconds, got {tolerance!r}")
        if not (isinstance(max_body_bytes, int) and max_body_bytes > 0):
            raise ConfigurationError(f"{self.name}: max_body_bytes must be a positive int, got {max_body_bytes!r}")
        self._keys = tuple(self._key(v) for v in values)
        self.tolerance = float(tolerance)
        self.max_body_bytes = max_body_bytes
        self.clock: Clock = clock if clock is not None else WallClock()

    @property
    def secret_count(self) -> int:
        """How many secrets are active (two during a rotation)."""
        return len(self._keys)

    def _key(self, secret: str) -> bytes:
        """The HMAC key of one secret (raises :class:`ConfigurationError` for a malformed secret)."""
        return secret.encode()

    @abstractmethod
    def sign(self, body: bytes, *, msg_id: str, timestamp: int | None = None) -> dict[str, str]:
        """The headers that sign ``body`` as message ``msg_id`` at ``timestamp`` (epoch seconds; default: now)."""

    @abstractmethod
    def verify(self, headers: Mapping[str, str], body: bytes) -> VerifiedWebhook:
        """Verify a delivery's headers (any case) against its raw ``body``; see the module docstring for errors."""

    def _check_body(self, body: bytes) -> None:
        if len(body) > self.max_body_bytes:
            raise PayloadTooLarge(
                f"{self.name}: body of {len(body)} bytes passes max_body_bytes={self.max_body_bytes}",
                limit=self.max_body_bytes,
            )

    def _timestamp(self, text: str, header: str) -> float:
        """Parse an integer epoch timestamp and check it against the tolerance window."""
        text = text.strip()
        if not text.isascii() or not text.isdigit() or len(text) > 12:
            raise SignatureMalformed(
                "the timestamp is not an integer number of seconds", scheme=self.name, header=header
            )
        when = float(int(text))
        skew = self.clock.now() - when
        if abs(skew) > self.tolerance:
            age = "old" if skew > 0 else "new"
            raise TimestampOutsideTolerance(
                f"timestamp is {abs(skew):.0f}s too {age} (tolerance {self.tolerance:.0f}s)",
                scheme=self.name,
                header=header,
                skew=skew,
                tolerance=self.tolerance,
            )
        return when

    def _now(self, timestamp: int | None) -> int:
        return int(self.clock.now()) if timestamp is None else int(timestamp)

    def _mac(self, key: bytes, content: bytes, algorithm: str = "sha256") -> bytes:
        return hmac.new(key, content, algorithm).digest()

    def _match(self, content: bytes, candidates: Iterable[bytes], algorithm: str = "sha256") -> None:
        """Raise :class:`SignatureMismatch` unless a candidate equals the MAC of ``content`` under an active key."""
        expected = [self._mac(key, content, algorithm) for key in self._keys]
        found = False
        for candidate in candidates:
            for mac in expected:  # no early exit: the work does not depend on which secret matched
                found |= hmac.compare_digest(mac, candidate)
        if not found:
            raise SignatureMismatch("no signature matches an active secret", scheme=self.name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(secrets={self.secret_count}, tolerance={self.tolerance:g})"


def _header(headers: Mapping[str, str], name: str, scheme: str) -> str:
    """The value of header ``name`` (any case), stripped; missing or empty raises :class:`SignatureMissing`."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if isinstance(k, str) and k.lower() == lowered), None)
    if not isinstance(value, str) or not value.strip():
        raise SignatureMissing(f"header {name} is missing", scheme=scheme, header=name)
    if len(value) > MAX_HEADER_CHARS:
        raise SignatureMalformed(f"header {name} is too long", scheme=scheme, header=name)
    return value.strip()


def _present(headers: Mapping[str, str], name: str) -> bool:
    """Whether header ``name`` (any case) is in ``headers``."""
    if name in headers:
        return True
    return any(isinstance(k, str) and k.lower() == name for k in headers)


def _unhex(text: str) -> bytes | None:
    try:
        return bytes.fromhex(text) if text.isascii() else None
    except ValueError:
        return None


def _unbase64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None


def generate_standard_secret(entropy: bytes) -> str:
    """A Standard Webhooks secret, ``whsec_`` + base64 of ``entropy`` (24 to 64 random bytes, e.g. os.urandom(32))."""
    if not 24 <= len(entropy) <= 64:
        raise ConfigurationError("a Standard Webhooks secret needs 24 to 64 bytes of entropy")
    return "whsec_" + base64.b64encode(entropy).decode()


class StandardWebhooks(WebhookScheme):
    """The Standard Webhooks scheme (standardwebhooks.com), as Svix sends it; secrets are ``whsec_<base64>``."""

    name = "standard-webhooks"
    ID_HEADER = "webhook-id"
    TIMESTAMP_HEADER = "webhook-timestamp"
    SIGNATURE_HEADER = "webhook-signature"

    #: Svix's own names for the three headers, accepted as aliases.
    SVIX_HEADERS = ("svix-id", "svix-timestamp", "svix-signature")

    def _family(self, headers: Mapping[str, str]) -> tuple[str, str, str]:
        """Svix's header names when the message carries ``svix-id`` (Svix's verifier reads them first), else the
        standard ones."""
        if _present(headers, self.SVIX_HEADERS[0]):
            return self.SVIX_HEADERS
        return (self.ID_HEADER, self.TIMESTAMP_HEADER, self.SIGNATURE_HEADER)

    def _key(self, secret: str) -> bytes:
        raw = secret.removeprefix("whsec_")
        key = _unbase64(raw + "=" * (-len(raw) % 4))
        if not key:
            raise ConfigurationError(f"{self.name}: a secret must be whsec_ followed by base64")
        return key

    def sign(self, body: bytes, *, msg_id: str, timestamp: int | None = None) -> dict[str, str]:
        """``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` (one ``v1,`` entry per secret)."""
        when = self._now(timestamp)
        content = f"{msg_id}.{when}.".encode() + body
        signatures = " ".join("v1," + base64.b64encode(self._mac(k, content)).decode() for k in self._keys)
        return {self.ID_HEADER: msg_id, self.TIMESTAMP_HEADER: str(when), self.SIGNATURE_HEADER: signatures}

    def verify(self, headers: Mapping[str, str], body: bytes) -> VerifiedWebhook:
        """Check the three headers; any ``v1`` entry made with an active secret passes (others are ignored).

        Svix sends the same three under its own names (``svix-id``, ``svix-timestamp``, ``svix-signature``), and
        its verifier accepts either family (docs.svix.com, "Verifying payloads"). As there, a message that carries
        ``svix-id`` is read from the ``svix-`` headers, any other from the ``webhook-`` ones.
        """
        self._check_body(body)
        names = self._family(headers)
        msg_id = _header(headers, names[0], self.name)
        stamp = _header(headers, names[1], self.name)
        header = _header(headers, names[2], self.name)
        if not msg_id.isprintable():
            raise SignatureMalformed("the message id holds control characters", scheme=self.name, header=self.ID_HEADER)
        when = self._timestamp(stamp, self.TIMESTAMP_HEADER)
        candidates = []
        for entry in header.split():
            version, sep, value = entry.partition(",")
            if not sep:
                raise SignatureMalformed("a signature entry is not version,signature", scheme=self.name)
            if version == "v1" and (decoded := _unbase64(value)) is not None:
                candidates.append(decoded)
        if not candidates:
            raise SignatureMalformed("no v1 signature in the header", scheme=self.name, header=self.SIGNATURE_HEADER)
        self._match(f"{msg_id}.{stamp.strip()}.".encode() + body, candidates)
        return VerifiedWebhook(msg_id, when, body, self.name)


class StripeSignature(WebhookScheme):
    """Stripe's ``Stripe-Signature`` scheme; the event id (the deduplication key) is the ``id`` of the JSON body."""

    name = "stripe"
    SIGNATURE_HEADER = "stripe-signature"

    def sign(self, body: bytes, *, msg_id: str = "", timestamp: int | None = None) -> dict[str, str]:
        """``Stripe-Signature: t=<timestamp>,v1=<hex>`` with one ``v1`` per secret (``msg_id`` is in the body)."""
        when = self._now(timestamp)
        content = f"{when}.".encode() + body
        entries = ",".join("v1=" + self._mac(k, content).hex() for k in self._keys)
        return {self.SIGNATURE_HEADER: f"t={when},{entries}"}

    def verify(self, headers: Mapping[str, str], body: bytes) -> VerifiedWebhook:
        """Check ``t`` against the tolerance and any ``v1`` entry against the active secrets."""
        self._check_body(body)
        header = _header(headers, self.SIGNATURE_HEADER, self.name)
        stamps: list[str] = []
        candidates: list[bytes] = []
        for item in header.split(","):
            key, sep, value = item.strip().partition("=")
            if not sep:
                continue
            if key == "t":
                stamps.append(value)
            elif key == "v1" and (decoded := _unhex(value)) is not None:
                candidates.append(decoded)
        if len(stamps) != 1:
            raise SignatureMalformed("the header needs exactly one t=", scheme=self.name, header=self.SIGNATURE_HEADER)
        if not candidates:
            raise SignatureMalformed("no v1 signature in the header", scheme=self.name, header=self.SIGNATURE_HEADER)
        when = self._timestamp(stamps[0], self.SIGNATURE_HEADER)
        self._match(f"{stamps[0].strip()}.".encode() + body, candidates)
        return VerifiedWebhook(_json_id(body), when, body, self.name)


class GitHubSignature(WebhookScheme):
    """GitHub's ``X-Hub-Signature-256: sha256=<hex>``; the id is ``X-GitHub-Delivery``. GitHub signs no timestamp."""

    name = "github"
    SIGNATURE_HEADER = "x-hub-signature-256"
    ID_HEADER = "x-github-delivery"

    def sign(self, body: bytes, *, msg_id: str, timestamp: int | None = None) -> dict[str, str]:
        """``X-Hub-Signature-256`` with the first secret (GitHub sends one signature) and ``X-GitHub-Delivery``."""
        return {self.SIGNATURE_HEADER: "sha256=" + self._mac(self._keys[0], body).hex(), self.ID_HEADER: msg_id}

    def verify(self, headers: Mapping[str, str], body: bytes) -> VerifiedWebhook:
        """Check the ``sha256=`` signature; the id header is optional (the body's SHA-256 stands in for it)."""
        self._check_body(body)
        header = _header(headers, self.SIGNATURE_HEADER, self.name)
        prefix, sep, value = header.partition("=")
        decoded = _unhex(value) if sep and prefix == "sha256" else None
        if decoded is None:
            raise SignatureMalformed("expected sha256=<hex>", scheme=self.name, header=self.SIGNATURE_HEADER)
        self._match(body, [decoded])
        try:
            msg_id = _header(headers, self.ID_HEADER, self.name)
        except (SignatureMissing, SignatureMalformed):
            msg_id = _body_id(body)
        return VerifiedWebhook(msg_id, None, body, self.name)


class HMACSignature(WebhookScheme):
    """A generic HMAC scheme: ``header`` holds ``prefix`` + the MAC of the body in ``encoding``.

    With ``timestamp_header``, the signed content is ``{timestamp}.{body}`` and the timestamp must lie within the
    tolerance; ``id_header`` names the header carrying the event id (else the body's SHA-256 is the id).
    """

    name = "hmac"

    def __init__(
        self,
        secrets: str | Sequence[str],
        *,
        header: str,
        algorithm: Algorithm = "sha256",
        encoding: Encoding = "hex",
        prefix: str = "",
        id_header: str | None = None,
        timestamp_header: str | None = None,
        tolerance: float = DEFAULT_TOLERANCE,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        clock: Clock | None = None,
    ) -> None:
        if algorithm not in ("sha1", "sha256", "sha512"):
            raise ConfigurationError(f"hmac: algorithm must be sha1, sha256 or sha512, got {algorithm!r}")
        if encoding not in ("hex", "base64"):
            raise ConfigurationError(f"hmac: encoding must be hex or base64, got {encoding!r}")
        if not header:
            raise ConfigurationError("hmac: header must name the signature header")
        super().__init__(secrets, tolerance=tolerance, max_body_bytes=max_body_bytes, clock=clock)
        self.header = header.lower()
        self.algorithm = algorithm
        self.encoding = encoding
        self.prefix = prefix
        self.id_header = id_header.lower() if id_header else None
        self.timestamp_header = timestamp_header.lower() if timestamp_header else None

    def _content(self, body: bytes, stamp: str | None) -> bytes:
        return f"{stamp}.".encode() + body if stamp is not None else body

    def sign(self, body: bytes, *, msg_id: str, timestamp: int | None = None) -> dict[str, str]:
        """The signature header (first secret), and the id and timestamp headers when configured."""
        headers: dict[str, str] = {}
        stamp = None
        if self.timestamp_header:
            stamp = str(self._now(timestamp))
            headers[self.timestamp_header] = stamp
        mac = self._mac(self._keys[0], self._content(body, stamp), self.algorithm)
        headers[self.header] = self.prefix + (mac.hex() if self.encoding == "hex" else base64.b64encode(mac).decode())
        if self.id_header:
            headers[self.id_header] = msg_id
        return headers

    def verify(self, headers: Mapping[str, str], body: bytes) -> VerifiedWebhook:
        """Check the configured header (and timestamp) against the active secrets."""
        self._check_body(body)
        header = _header(headers, self.header, self.name)
        if not header.startswith(self.prefix):
            raise SignatureMalformed(f"expected the prefix {self.prefix!r}", scheme=self.name, header=self.header)
        value = header[len(self.prefix) :]
        decoded = _unhex(value) if self.encoding == "hex" else _unbase64(value)
        if decoded is None:
            raise SignatureMalformed(f"the signature is not {self.encoding}", scheme=self.name, header=self.header)
        when = stamp = None
        if self.timestamp_header:
            stamp = _header(headers, self.timestamp_header, self.name)
            when = self._timestamp(stamp, self.timestamp_header)
        self._match(self._content(body, stamp), [decoded], self.algorithm)
        msg_id = _body_id(body)
        if self.id_header:
            msg_id = _header(headers, self.id_header, self.name)
        return VerifiedWebhook(msg_id, when, body, self.name)


def _body_id(body: bytes) -> str:
    """The deduplication key of a delivery that names no id: the SHA-256 of its body."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _json_id(body: bytes) -> str:
    """The ``id`` field of a JSON object body (Stripe's event id), else the body's SHA-256."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return _body_id(body)
    value = data.get("id") if isinstance(data, dict) else None
    return value if isinstance(value, str) and value and value.isprintable() else _body_id(body)
