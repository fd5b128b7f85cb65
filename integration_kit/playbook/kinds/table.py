"""The table of kinds: every kind of integration the playbook runs, one line each, and loading a spec of any kind.

A spec file's ``kind`` (``"http"`` when absent) names the :class:`~integration_kit.playbook.kinds.protocol.Kind`
that validates, designs, exercises, judges and charts it. Adding a kind is one subpackage of
:mod:`integration_kit.playbook.kinds` and one line in :data:`TABLE`; nothing else in the playbook tests a spec's
class (``docs/playbook/kinds.md`` says how).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from integration_kit.errors import ConfigurationError
from integration_kit.playbook.kinds.files import read_spec
from integration_kit.playbook.kinds.grpc.kind import GRPC
from integration_kit.playbook.kinds.grpc.spec import GrpcSpec
from integration_kit.playbook.kinds.http.kind import HTTP
from integration_kit.playbook.kinds.http.spec import IntegrationSpec
from integration_kit.playbook.kinds.protocol import CheckItem, Kind, Spec
from integration_kit.playbook.kinds.queue.kind import QUEUE
from integration_kit.playbook.kinds.queue.spec import QueueSpec
from integration_kit.playbook.kinds.webhook.kind import WEBHOOK
from integration_kit.playbook.kinds.webhook.spec import WebhookSpec
from integration_kit.playbook.kinds.websocket.kind import WEBSOCKET
from integration_kit.playbook.kinds.websocket.spec import WebSocketSpec

__all__ = ["KINDS", "TABLE", "AnySpec", "kind_named", "kind_of", "load_spec", "spec_checklist"]

#: Every kind, once.
TABLE: tuple[Kind[Any], ...] = (HTTP, WEBHOOK, QUEUE, GRPC, WEBSOCKET)

#: Every ``kind`` a spec file may declare, in the table's order.
KINDS: tuple[str, ...] = tuple(name for kind in TABLE for name in kind.names)

#: Any spec the playbook loads (for type hints; the pipeline itself only uses :class:`Spec`).
AnySpec = IntegrationSpec | QueueSpec | WebhookSpec | GrpcSpec | WebSocketSpec


def kind_named(name: object, *, source: str = "kind") -> Kind[Any]:
    """The kind whose spec files declare ``kind = name``; raises ConfigurationError naming the valid ones."""
    for kind in TABLE:
        if name in kind.names:
            return kind
    raise ConfigurationError(f"{source}: kind: must be one of {', '.join(KINDS)}, got {name!r}")


def kind_of(spec: Spec) -> Kind[Any]:
    """The kind that runs ``spec``."""
    return kind_named(spec.kind)


def load_spec(name: str | Path, *, directory: str | Path | None = None) -> Any:
    """Load and validate a spec of any kind, by name (``<directory>/<name>.toml``, default the current project's
    integrations folder) or by the path of a TOML file.

    Raises :class:`~integration_kit.errors.ConfigurationError` for an unknown name or kind, or an invalid spec.
    """
    return read_spec(name, _build, directory=directory)


def _build(data: Mapping[str, Any], *, source: str, path: Path) -> Spec:
    """Build the spec its ``kind`` names (the file is read once, by :func:`read_spec`)."""
    kind: Kind[Any] = kind_named(data.get("kind", "http"), source=source)
    spec: Spec = kind.build(data, source=source, path=path)
    return spec


def spec_checklist(spec: Spec) -> list[CheckItem]:
    """The checklist of a spec of any kind, one item per rule of its kind."""
    return kind_of(spec).checklist(spec)
