"""Contract drift: what changed in a partner's document since a spec's ``[[operations]]`` were written.

:func:`drift` compares each operation the spec uses with a (newer) document and reports, per operation: gone
(no operation with that ``operationId`` nor that method and path), moved (same id, another method or path),
renamed (same method and path, another id), new required request fields, a changed response type, and a newly
documented 429 while the spec has no pacing. The first four that break a call (gone, moved, new required
fields, changed response type) are ``breaking``: ``integration-kit check NAME --openapi FILE`` exits 1 on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from integration_kit.openapi.contract import Contract
from integration_kit.openapi.model import ApiDocument

__all__ = ["DriftFinding", "UsedOperation", "drift"]


class UsedOperation(Protocol):
    """What a spec records of an operation it uses (an ``[[operations]]`` entry)."""

    @property
    def id(self) -> str: ...
    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def errors(self) -> tuple[int, ...]: ...
    @property
    def required(self) -> tuple[str, ...]: ...
    @property
    def returns(self) -> str: ...


@dataclass(frozen=True, slots=True)
class DriftFinding:
    """One change: the ``operation`` id, the ``kind`` (``gone``, ``moved``, ``renamed``, ``new-required``,
    ``response-type``, ``new-429``), what changed in words, and whether it breaks the integration's calls."""

    operation: str
    kind: str
    detail: str
    breaking: bool

    def __str__(self) -> str:
        return f"{'BREAKING' if self.breaking else 'note'} {self.operation}: {self.kind}: {self.detail}"


def drift(document: ApiDocument, used: Sequence[UsedOperation], *, paced: bool) -> list[DriftFinding]:
    """The changes between the operations ``used`` and ``document`` (see the module docstring); ``paced`` says
    whether the spec paces calls (a client rate limit, or Retry-After honoured on 429)."""
    contract = Contract(document)
    ids = {op.operation_id: op for op in document.operations}
    found: list[DriftFinding] = []
    for entry in used:
        op = ids.get(entry.id)
        if op is None:
            same = document.find(entry.method, entry.path)
            if same is None:
                found.append(
                    DriftFinding(entry.id, "gone", f"{entry.method} {entry.path} is not in the document", True)
                )
                continue
            found.append(DriftFinding(entry.id, "renamed", f"now operationId {same.operation_id!r}", False))
            op = same
        elif (op.method, op.path) != (entry.method, entry.path):
            found.append(
                DriftFinding(entry.id, "moved", f"{entry.method} {entry.path} is now {op.method} {op.path}", True)
            )
        new = sorted(set(contract.required_fields(op)) - set(entry.required))
        if new:
            found.append(DriftFinding(entry.id, "new-required", f"new required request fields: {', '.join(new)}", True))
        returns = contract.response_type(op)
        if entry.returns and returns != entry.returns:
            found.append(
                DriftFinding(
                    entry.id,
                    "response-type",
                    f"the 2xx answer was {entry.returns}, is now {returns or 'undocumented'}",
                    True,
                )
            )
        if 429 in op.error_statuses and 429 not in entry.errors and not paced:
            found.append(
                DriftFinding(
                    entry.id,
                    "new-429",
                    f"429 newly documented at {op.pointer}/responses and the spec has no pacing (set limits.rate, or "
                    "retry.respect_retry_after with 429 in retry.retry_on_status)",
                    False,
                )
            )
    return found
