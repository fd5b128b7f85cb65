"""Keeping secrets out of output: a masked :class:`Secret` value, and redaction of URLs and headers.

Everything a driver puts into an event, a log record or an error goes through :func:`redact_url` or
:func:`redact_headers` first, and credentials are held as :class:`Secret`, whose ``repr`` and ``str`` are masked,
so a secret can only reach output through an explicit :meth:`Secret.reveal`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import re
from collections.abc import Iterable, Mapping
from typing import NoReturn
from urllib.parse import quote, quote_plus, unquote, urlsplit, urlunsplit

__all__ = [
    "MASK",
    "SECRET_HEADERS",
    "SECRET_QUERY_WORDS",
    "Secret",
    "MIN_SECRET_FORM",
    "redact_headers",
    "redact_http_logs",
    "redact_log_message",
    "redact_text",
    "redact_url",
    "secret_forms",
    "secret_query_values",
]

#: Forms of a secret shorter than this (characters) are not masked on their own: masking every ``a`` in a body
#: would hide the message and tell a reader the secret's length and letters. The full header value is always masked.
MIN_SECRET_FORM = 6


#: What a masked value is replaced with.
MASK = "***"

#: Query parameters whose (lower-cased) name contains one of these words have their value masked.
SECRET_QUERY_WORDS: tuple[str, ...] = (
    "token",
    "key",
    "secret",
    "signature",
    "sig",
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
    """``text`` with every occurrence of the given secret values masked (for bodies that may echo a credential).

    Longer values are masked first, so a value that contains another is masked whole.
    """
    plains = [value.reveal() if isinstance(value, Secret) else value for value in values]
    for plain in sorted(plains, key=len, reverse=True):
        if plain and plain in text:
            text = text.replace(plain, MASK)
    return text


def secret_forms(value: str | Secret) -> tuple[str, ...]:
    """Every form a credential header value can be echoed back in, longest first, for :func:`redact_text`.

    The value itself; its token without the scheme (``Bearer <token>``: the token); for ``Basic``, the decoded
    ``user:password`` and the password alone; and each of those URL-encoded (``quote`` and ``quote_plus``), base64
    encoded, and JSON-escaped. Forms shorter than :data:`MIN_SECRET_FORM` are left out, except the value itself.
    """
    plain = value.reveal() if isinstance(value, Secret) else value
    if not plain:
        return ()
    cores = {plain}
    scheme, _, token = plain.partition(" ")
    token = token.strip()
    if token and scheme.isalpha():
        cores.add(token)
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(token, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            if decoded:
                cores.add(decoded)
                cores.add(decoded.partition(":")[2])
    forms = set()
    for core in cores:
        if not core:
            continue
        forms.update({core, quote(core, safe=""), quote_plus(core), base64.b64encode(core.encode()).decode("ascii")})
        forms.add(core.replace("\\", "\\\\").replace('"', '\\"'))
    kept = {form for form in forms if form == plain or len(form) >= MIN_SECRET_FORM}
    return tuple(sorted(kept, key=len, reverse=True))


_HEADER_PAIR = re.compile(r"\((b?)(['\"])([^'\"]+)\2,\s*(b?)(['\"])(.*?)\5\)")
_QUERY_PAIR = re.compile(r"([?&;])([^=&\s'\"]+)=([^&\s'\"#]*)")


def redact_log_message(
    message: str, secrets: Iterable[str] = (), extra_names: Iterable[str] = (), extra_headers: Iterable[str] = ()
) -> str:
    """A log line (httpcore's DEBUG trace, httpx's request line) with secrets masked wherever they appear in it.

    Masks the values of credential headers in ``(b'Name', b'value')`` pairs (as httpcore logs header lists),
    the values of secret-looking query parameters in any URL (see :func:`redact_url`), and every one of
    ``secrets`` (forms from :func:`secret_forms`).
    """
    names = SECRET_HEADERS | {n.lower() for n in extra_headers}

    def header(match: re.Match[str]) -> str:
        lowered = match.group(3).lower()
        if lowered in names or any(w in lowered for w in ("token", "secret", "password")):
            return f"({match.group(1)}{match.group(2)}{match.group(3)}{match.group(2)}, {match.group(4)}'{MASK}')"
        return match.group(0)

    words = (*SECRET_QUERY_WORDS, *(n.lower() for n in extra_names))

    def query(match: re.Match[str]) -> str:
        if any(word in unquote(match.group(2)).lower() for word in words):
            return f"{match.group(1)}{match.group(2)}={MASK}"
        return match.group(0)

    message = _HEADER_PAIR.sub(header, message)
    if "=" in message:
        message = _QUERY_PAIR.sub(query, message)
    return redact_text(message, secrets)


def secret_query_values(query: Iterable[tuple[str, str]], extra_names: Iterable[str] = ()) -> list[str]:
    """The values of the secret-looking parameters among ``query``'s (name, value) pairs (see :func:`redact_url`)."""
    words = (*SECRET_QUERY_WORDS, *(n.lower() for n in extra_names))
    return [value for name, value in query if value and any(word in name.lower() for word in words)]


#: The loggers httpx and httpcore write to: a filter on a parent logger does not see its children's records.
_HTTP_LOGGERS = (
    "httpx",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)


class _HttpLogRedactor(logging.Filter):
    """Masks secrets in what httpx and httpcore log: URLs' query values, credential headers, echoed secrets.

    httpx logs ``HTTP Request: GET <url> ...``; httpcore's DEBUG trace logs whole header lists
    (``receive_response_headers.complete return_value=(..., [(b'Location', b'...?sig=...')])``). Each record's
    message is formatted and redacted with :func:`~integration_kit.http.redact.redact_log_message`.
    """

    def __init__(self) -> None:
        super().__init__()
        self.names: frozenset[str] = frozenset()
        self.secrets: frozenset[str] = frozenset()
        self.headers: frozenset[str] = frozenset()

    def install(self, names: Iterable[str], secrets: Iterable[str] = (), headers: Iterable[str] = ()) -> None:
        self.names = self.names | frozenset(names)
        self.secrets = self.secrets | frozenset(secrets)
        self.headers = self.headers | frozenset(headers)
        for logger_name in _HTTP_LOGGERS:
            target = logging.getLogger(logger_name)
            if self not in target.filters:
                target.addFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot be formatted is logged as it is, by logging's own handling
            return True
        record.msg = redact_log_message(message, self.secrets, self.names, self.headers)
        record.args = ()
        return True


_HTTP_LOG_REDACTOR = _HttpLogRedactor()


def redact_http_logs(names: Iterable[str] = (), secrets: Iterable[str] = (), headers: Iterable[str] = ()) -> None:
    """Redact what httpx and httpcore log from now on, in this process (see :func:`redact_log_message`).

    ``names``: more secret query parameter names; ``secrets``: values to mask wherever they appear (forms from
    :func:`secret_forms`); ``headers``: more credential header names. Each call adds to what earlier calls gave.
    """
    _HTTP_LOG_REDACTOR.install(names, secrets, headers)
