"""Keeping secrets out of output: a masked :class:`Secret` value, and redaction of URLs and headers.

Everything a driver puts into an event, a log record or an error goes through :func:`redact_url` or
:func:`redact_headers` first, and credentials are held as :class:`Secret`, whose ``repr`` and ``str`` are masked,
so a secret can only reach output through an explicit :meth:`Secret.reveal`.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from typing import NoReturn
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = [
    "MASK",
    "SECRET_HEADERS",
    "SECRET_QUERY_WORDS",
    "Secret",
    "redact_headers",
    "redact_text",
    "redact_url",
    "secret_query_values",
]

#: What a masked value is replaced with.
MASK = "***"

#: Query parameters whose (lower-cased) name contains one of these words have their value masked.
SECRET_QUERY_WORDS: tuple[str, ...] = (
    "token",
    "key",
    "secret",
    "signature",
    "password",
    "passwd",
    "auth",
    "credential",
    "session",
)

#: Headers whose value is always masked (lower-case names).
SECRET_HEADERS: frozenset[str] = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token", "api-key"}
)


class Secret:
    """A credential whose ``repr`` and ``str`` are masked; :meth:`reveal` is the one way to read it.

    It refuses to be pickled, so it cannot leak through a serialised object either. Two secrets compare equal
    when their values do (in constant time).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"Secret: expected a str, got {type(value).__name__}")
        self._value = value

    def reveal(self) -> str:
        """The secret value. Call it only where the value is sent, never where it could be printed."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, len(self._value)))

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled")


def redact_url(url: str, extra_names: Iterable[str] = ()) -> str:
    """``url`` with its userinfo removed and the values of secret-looking query parameters masked.

    A parameter is secret-looking when its lower-cased name contains one of :data:`SECRET_QUERY_WORDS` or one of
    ``extra_names``. The rest of the URL is kept byte for byte, so a redacted URL still says where a call went.
    """
    if "?" not in url and "@" not in url:
        return url  # the common case: nothing that can hold a secret
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = netloc.rpartition("@")[2]
    query = parts.query
    if query:
        words = (*SECRET_QUERY_WORDS, *(n.lower() for n in extra_names))
        query = "&".join(_redact_pair(pair, words) for pair in query.split("&"))
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _redact_pair(pair: str, words: tuple[str, ...]) -> str:
    name, sep, _value = pair.partition("=")
    lowered = unquote(name).lower()
    if sep and any(word in lowered for word in words):
        return f"{name}={MASK}"
    return pair


def redact_headers(
    headers: Mapping[str, str] | Iterable[tuple[str, str]], extra_names: Iterable[str] = ()
) -> dict[str, str]:
    """A copy of ``headers`` with credential headers masked (:data:`SECRET_HEADERS` and ``extra_names``).

    Names are matched case-insensitively; so are names containing "token", "secret" or "password".
    """
    secret_names = SECRET_HEADERS | {n.lower() for n in extra_names}
    items = headers.items() if isinstance(headers, Mapping) else headers
    redacted: dict[str, str] = {}
    for name, value in items:
        lowered = name.lower()
        if lowered in secret_names or any(w in lowered for w in ("token", "secret", "password")):
            redacted[name] = MASK
        else:
            redacted[name] = value
    return redacted


def redact_text(text: str, values: Iterable[str | Secret]) -> str:
    """``text`` with every occurrence of the given secret values masked (for bodies that may echo a credential)."""
    for value in values:
        plain = value.reveal() if isinstance(value, Secret) else value
        if plain and plain in text:
            text = text.replace(plain, MASK)
    return text


def secret_query_values(query: Iterable[tuple[str, str]], extra_names: Iterable[str] = ()) -> list[str]:
    """The values of the secret-looking parameters among ``query``'s (name, value) pairs (see :func:`redact_url`)."""
    words = (*SECRET_QUERY_WORDS, *(n.lower() for n in extra_names))
    return [value for name, value in query if value and any(word in name.lower() for word in words)]
