"""An HTTP spec written from an OpenAPI document: ``integration-kit new NAME --openapi FILE``.

:func:`decide` makes each operation's resilience decision from the document: retried freely when its method is
idempotent (RFC 9110), retried with its key when it is a write that declares an ``Idempotency-Key`` header, never
retried once seen otherwise; a timeout class; its documented error statuses. :func:`spec_text` writes the spec:
the base URL from ``servers``, auth from ``securitySchemes`` (the *names* of environment variables, never values),
scenarios chosen by the documented 429 and 503 answers, one ``[[operations]]`` entry per operation, and a comment
on every value saying where it came from (a JSON pointer into the document, or "kit default" for what a document
cannot say: timeouts, the retry schedule, the breaker, the fallback).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from integration_kit.openapi.contract import Contract
from integration_kit.openapi.errors import OpenAPIError
from integration_kit.openapi.model import ApiDocument, Operation, SecurityScheme

__all__ = ["Decision", "decide", "select", "spec_text"]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
_SLOW = re.compile(r"export|report|upload|download|bulk|batch|search|import|archive", re.IGNORECASE)
_SLOW_MEDIA = ("multipart/", "application/octet-stream")


@dataclass(frozen=True, slots=True)
class Decision:
    """One operation's resilience decision: ``retry`` (``safe``, ``keyed``, ``once``), ``timeout`` class
    (``fast``, ``standard``, ``slow``) and the reasons, each naming the pointer it rests on."""

    operation: Operation
    retry: str
    retry_reason: str
    timeout: str
    timeout_reason: str


def decide(operation: Operation) -> Decision:
    """The resilience decision for ``operation`` (see the module docstring)."""
    op = operation
    key = op.idempotency_key
    if op.method in _SAFE_METHODS:
        retry, why = "safe", f"{op.method} is idempotent (RFC 9110): retried on transient failures"
    elif key is not None:
        retry, why = "keyed", f"{op.method} declares an Idempotency-Key header ({key.pointer}): retried with the key"
    else:
        retry, why = "once", f"{op.method} without an Idempotency-Key parameter: not retried once it may be seen"
    media = op.body.media_type if op.body is not None else ""
    if media.startswith(_SLOW_MEDIA) or _SLOW.search(f"{op.operation_id} {op.path}"):
        timeout, twhy = "slow", "an upload, export, search or batch (its body or name)"
    elif op.method in ("GET", "HEAD"):
        timeout, twhy = "fast", "a read"
    else:
        timeout, twhy = "standard", "a write"
    return Decision(op, retry, why, timeout, twhy)


def select(document: ApiDocument, ids: Sequence[str] | None) -> tuple[Operation, ...]:
    """The operations named by ``ids`` (``operationId`` s, in that order), or all; raises :class:`OpenAPIError`
    for an unknown id, or when the selection is empty."""
    chosen = tuple(document.operation(i) for i in ids) if ids else document.operations
    if not chosen:
        raise OpenAPIError(document.source, "/paths", "the document has no operation to integrate")
    return chosen


def spec_text(document: ApiDocument, name: str, ids: Sequence[str] | None = None) -> str:
    """The TOML text of an HTTP spec named ``name`` for the operations ``ids`` (default: all) of ``document``.

    Raises :class:`OpenAPIError` naming the pointer when the document has no absolute HTTPS (or loopback) server
    URL, or names an operation that does not exist.
    """
    operations = select(document, ids)
    decisions = [decide(op) for op in operations]
    contract = Contract(document)
    base_url, base_where = _base_url(document)
    keyed = sorted({d.operation.method for d in decisions if d.retry == "keyed"})
    key_where = next((d.operation.pointer for d in decisions if d.retry == "keyed"), "")
    statuses = {s: next((op.pointer for op in operations if s in op.error_statuses), "") for s in (429, 503)}
    scenarios = [("steady", "kit default: a healthy partner"), ("slow-partner", "kit default: hangs and 504s")]
    if statuses[503]:
        scenarios += [("outage-and-recovery", f"503 at {statuses[503]}/responses"), ("brownout", "503 documented")]
    if statuses[429]:
        scenarios.append(("rate-limited", f"429 at {statuses[429]}/responses"))
    exercise = next((d.operation for d in decisions if d.operation.method == "GET"), operations[0])
    title = document.title or name
    lines = [
        f"# {name}: generated from {document.source} (OpenAPI {document.version}) by integration-kit new --openapi.",
        "# Each comment says where its value came from: a JSON pointer into the document, or 'kit default'.",
        f"name = {_q(name)}  # the NAME given to integration-kit new",
        f"description = {_q(f'Calls {title} ({len(operations)} operations) as its OpenAPI document describes.')}"
        "  # /info/title",
        'owner = "your-team"                      # kit default: who answers for it',
        f"base_url = {_q(base_url)}  # {base_where}",
        "deadline = 8.0                           # kit default (seconds): the document says nothing of deadlines",
        f"idempotency_methods = {json.dumps(keyed)}  # "
        + (f"Idempotency-Key header declared at {key_where}/parameters" if keyed else "no operation declares one"),
        f"scenarios = {json.dumps([s for s, _ in scenarios])}  # " + "; ".join(f"{s}: {w}" for s, w in scenarios),
        "",
        *_auth(document, operations, name),
        "",
        "[timeouts]                               # kit default (seconds): a document has no timeouts",
        "connect = 2.0",
        "read = 5.0",
        "write = 5.0",
        "pool = 1.0",
        "",
        "[retry]                                  # kit default schedule; what is retried comes from [[operations]]",
        "max_attempts = 3",
        "base_delay = 0.2",
        "max_delay = 2.0",
        'jitter = "full"',
        "respect_retry_after = true               "
        + (f"# 429 documented at {statuses[429]}/responses" if statuses[429] else "# kit default"),
        "max_retry_after = 4.0                    # kit default: must fit in the deadline",
        "",
        "[budget]                                 # kit default: gRPC A6 retry throttling",
        "max_tokens = 20",
        "token_ratio = 0.5",
        "",
        "[breaker]                                # kit default",
        "failure_rate_threshold = 0.5",
        'window_type = "time"',
        "window_size = 10",
        "minimum_calls = 20",
        "wait_in_open = 5",
        *(
            [f"ignore_statuses = [429]                  # 429 at {statuses[429]}/responses: pacing, not an outage"]
            if statuses[429]
            else []
        ),
        "",
        "[fallback]                               # not in the document: decide what answers when the partner cannot",
        'kind = "static"',
        'description = "the caller gets an explicit \\"partner unavailable\\" answer (edit: say what the user sees)"',
        "",
        f"[exercise]                               # {exercise.pointer}",
        f"method = {_q(exercise.method)}  # {exercise.pointer}",
        f"path = {_q(exercise.path)}  # {exercise.pointer.rsplit('/', 1)[0]}",
        "rate = 20                                # kit default (calls/s)",
    ]
    for d in decisions:
        lines += ["", *_entry(d, contract)]
    return "\n".join(lines) + "\n"


def _entry(d: Decision, contract: Contract) -> list[str]:
    op = d.operation
    required = contract.required_fields(op)
    returns = contract.response_type(op)
    return [
        "[[operations]]",
        f"id = {_q(op.operation_id)}  # {op.id_pointer}",
        f"method = {_q(op.method)}  # {op.pointer}",
        f"path = {_q(op.path)}  # {op.pointer.rsplit('/', 1)[0]}",
        f"retry = {_q(d.retry)}  # {d.retry_reason}",
        f"timeout = {_q(d.timeout)}  # {d.timeout_reason}",
        f"errors = {json.dumps(list(op.error_statuses))}  # {op.pointer}/responses",
        f"required = {json.dumps(list(required))}  # {op.body.pointer if op.body else op.pointer + '/parameters'}",
        f"returns = {_q(returns)}  # {op.pointer}/responses (2xx schema type)",
    ]


def _auth(document: ApiDocument, operations: Sequence[Operation], name: str) -> list[str]:
    used = [s for op in operations for s in document.security_of(op)]
    scheme = next((document.security_schemes[s] for s in used if s in document.security_schemes), None)
    if scheme is None:
        return ["# no [auth]: the document declares no security scheme for these operations"]
    prefix = re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_")
    where = scheme.pointer
    if scheme.type == "apiKey" and scheme.location == "header":
        return [
            "[auth]",
            f'type = "header"  # {where}/in',
            f"header = {_q(scheme.header)}  # {where}/name",
            f'env = "{prefix}_API_KEY"  # the NAME of the variable holding the key, never the key',
        ]
    if (scheme.type == "http" and scheme.scheme == "basic") or scheme.type == "basic":
        return [
            "[auth]",
            f'type = "basic"  # {where}',
            f'username_env = "{prefix}_USERNAME"  # a NAME, never a value',
            f'password_env = "{prefix}_PASSWORD"  # a NAME, never a value',
        ]
    note = _bearer_note(scheme)
    return ["[auth]", f'type = "bearer"  # {where} ({note})', f'env = "{prefix}_API_TOKEN"  # a NAME, never a value']


def _bearer_note(scheme: SecurityScheme) -> str:
    if scheme.type == "apiKey":
        return f"an API key in the {scheme.location}, which the kit refuses to put in a URL: sent as a bearer token"
    return f"{scheme.type} {scheme.scheme}".strip()


def _base_url(document: ApiDocument) -> tuple[str, str]:
    if not document.servers:
        where = "/host" if document.dialect == "2.0" else "/servers"
        raise OpenAPIError(document.source, where, "no server URL: the spec needs one for its base_url")
    server = document.servers[0]
    parts = urlsplit(server.url)
    if not parts.scheme or not parts.hostname:
        raise OpenAPIError(document.source, server.pointer, f"{server.url!r} is not an absolute URL")
    loopback = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if parts.scheme != "https" and not loopback:
        raise OpenAPIError(document.source, server.pointer, f"{server.url!r} is plain http: the kit needs https")
    return server.url, server.pointer


def _q(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(text, ensure_ascii=False)
