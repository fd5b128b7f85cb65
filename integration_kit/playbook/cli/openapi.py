"""The ``--openapi`` options of ``new`` and ``check``: a spec written from a partner's OpenAPI document, and the
contract drift between a spec and a newer document.

``integration-kit new NAME --openapi FILE [--operations id1,id2]`` writes ``<integrations>/NAME.toml`` from the
document (:func:`integration_kit.openapi.generate.spec_text`) and loads it back, so what is written passes the
spec's validation. ``integration-kit check NAME --openapi FILE`` prints the drift of each operation the spec
lists (:func:`integration_kit.openapi.drift.drift`); the check fails when one is gone or incompatible.
"""

from __future__ import annotations

from pathlib import Path

from integration_kit.errors import ConfigurationError
from integration_kit.openapi.drift import drift
from integration_kit.openapi.generate import spec_text
from integration_kit.openapi.read import read_openapi
from integration_kit.playbook.kinds.files import is_name
from integration_kit.playbook.kinds.http.spec import IntegrationSpec, load_integration
from integration_kit.playbook.project import Project

__all__ = ["drift_report", "write_openapi_spec"]


def write_openapi_spec(
    project: Project, name: str, document: str | Path, operations: str | None = None, *, force: bool = False
) -> Path:
    """Write the spec ``name`` generated from the OpenAPI ``document`` (``operations``: comma-separated
    ``operationId`` s, default all); return its path.

    Raises :class:`~integration_kit.errors.ConfigurationError` (an
    :class:`~integration_kit.openapi.errors.OpenAPIError` naming the JSON pointer for the document's faults) for a
    bad name, an existing file (unless ``force``), or a document the spec cannot come from. Nothing is written
    then.
    """
    if not is_name(name):
        raise ConfigurationError(f"{name!r} is not an integration name (lower-case letters, digits, '-' and '_')")
    target = project.integrations / f"{name}.toml"
    if target.exists() and not force:
        raise ConfigurationError(f"{target} exists (--force replaces it)")
    ids = [i.strip() for i in operations.split(",") if i.strip()] if operations else None
    text = spec_text(read_openapi(document), name, ids)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".toml.partial")
    partial.write_text(text, encoding="utf-8")
    try:
        load_integration(partial.rename(target))
    except ConfigurationError:
        target.unlink()
        raise
    return target


def drift_report(spec: object, document: str | Path) -> tuple[list[str], bool]:
    """The lines reporting ``spec``'s drift from the OpenAPI ``document``, and whether any change breaks it.

    A spec of another kind, or without ``[[operations]]``, cannot be compared: a
    :class:`~integration_kit.errors.ConfigurationError`.
    """
    if not isinstance(spec, IntegrationSpec):
        raise ConfigurationError(f"--openapi compares HTTP specs; {getattr(spec, 'name', spec)!r} is another kind")
    if not spec.operations:
        raise ConfigurationError(
            f"{spec.name}: operations: the spec lists no [[operations]] to compare (new --openapi writes them)",
            field="operations",
        )
    retry = spec.client.retry
    paced = spec.client.limits.rate is not None or (retry.respect_retry_after and 429 in retry.retry_on_status)
    findings = drift(read_openapi(document), spec.operations, paced=paced)
    breaking = [f for f in findings if f.breaking]
    lines = [str(f) for f in findings]
    lines.append(
        f"\n{spec.name}: {len(spec.operations)} operation(s) compared with {document}: "
        f"{len(breaking)} breaking change(s), {len(findings) - len(breaking)} note(s)"
    )
    return lines, bool(breaking)
