"""The kinds of spec in ``data/integrations``, as one typed union, and what every kind has: a loader and a checklist.

A spec file's ``kind`` (:func:`~integration_kit.playbook.spec.spec_kind`) says which module validates and runs it:

- ``http`` (the default): :class:`~integration_kit.playbook.spec.IntegrationSpec`, loaded by
  :func:`~integration_kit.playbook.spec.load_integration`;
- ``queue``: :class:`~integration_kit.playbook.queue_spec.QueueSpec`, loaded by
  :func:`~integration_kit.playbook.queue_spec.load_queue_spec`;
- ``webhook-in`` and ``webhook-out``: :class:`~integration_kit.playbook.webhook_spec.WebhookSpec`, loaded by
  :func:`~integration_kit.playbook.webhook_spec.load_webhook_spec`.

:func:`load_spec` dispatches on the kind and returns :data:`AnySpec`; commands that work on every kind (``list``,
``check``, ``run``) use it, and commands that only make sense for one kind call that kind's loader, which refuses
the others with a :class:`~integration_kit.errors.ConfigurationError` naming the kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from integration_kit.errors import ConfigurationError
from integration_kit.playbook.design import CheckItem, checklist
from integration_kit.playbook.queue_spec import QueueSpec, queue_checklist
from integration_kit.playbook.spec import IntegrationSpec, read_spec
from integration_kit.playbook.webhook_spec import WebhookSpec, webhook_checklist

__all__ = ["KINDS", "AnySpec", "load_spec", "spec_checklist"]

#: Any spec the playbook loads.
AnySpec = IntegrationSpec | QueueSpec | WebhookSpec

#: Every ``kind`` a spec file may declare.
KINDS = ("http", "queue", "webhook-in", "webhook-out")


def load_spec(name: str | Path, *, directory: str | Path | None = None) -> AnySpec:
    """Load and validate a spec of any kind, by name (``<directory>/<name>.toml``) or by the path of a TOML file.

    Raises :class:`~integration_kit.errors.ConfigurationError` for an unknown name or kind, or an invalid spec.
    """
    return read_spec(name, _build, directory=directory)


def _build(data: Mapping[str, Any], *, source: str, path: Path) -> AnySpec:
    """Build the spec class its ``kind`` names (the file is read once, by :func:`read_spec`)."""
    kind = data.get("kind", "http")
    if kind == "http":
        return IntegrationSpec.from_mapping(data, source=source, path=path)
    if kind == "queue":
        return QueueSpec.from_mapping(data, source=source, path=path)
    if kind in ("webhook-in", "webhook-out"):
        return WebhookSpec.from_mapping(data, source=source, path=path)
    raise ConfigurationError(f"{source}: kind: must be one of {', '.join(KINDS)}, got {kind!r}")


def spec_checklist(spec: AnySpec) -> list[CheckItem]:
    """The checklist of a spec of any kind, one :class:`~integration_kit.playbook.design.CheckItem` per rule."""
    if isinstance(spec, QueueSpec):
        return queue_checklist(spec)
    if isinstance(spec, WebhookSpec):
        return webhook_checklist(spec)
    return checklist(spec)
