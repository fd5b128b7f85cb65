"""Run folders: ``out/<integration>/<run id>/``, one per playbook run, and keeping their number in check.

A main run writes about 50 MB of events, notebooks and charts per integration; :func:`clean_runs` keeps the
newest ``keep`` runs of each integration and deletes the rest (``integration-kit clean``). Run ids sort by time
(:func:`~integration_kit.playbook.run.runner.new_run_id`); ``latest`` (interactive notebook sessions) is kept.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable
from pathlib import Path

from integration_kit.errors import ConfigurationError

__all__ = ["DEFAULT_KEEP", "clean_runs", "run_folders"]

#: Runs kept per integration by ``integration-kit clean`` unless told otherwise.
DEFAULT_KEEP = 3

_RUN_ID = re.compile(r"^\d{8}T\d{6}\d{3}Z$")


def run_folders(out: str | Path, integration: str) -> list[Path]:
    """The run folders of ``integration`` under ``out``, oldest first (only folders named like a run id)."""
    folder = Path(out) / integration
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and _RUN_ID.fullmatch(p.name))


def clean_runs(out: str | Path, *, keep: int = DEFAULT_KEEP, integrations: Iterable[str] | None = None) -> list[Path]:
    """Delete all but the newest ``keep`` runs of each integration under ``out``; return the deleted folders.

    ``integrations`` limits it to some (default: every folder under ``out``). Raises
    :class:`~integration_kit.errors.ConfigurationError` when ``keep`` is negative.
    """
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
        raise ConfigurationError(f"keep must be an integer >= 0, got {keep!r}")
    root = Path(out)
    names = (
        list(integrations)
        if integrations is not None
        else sorted(p.name for p in root.iterdir() if p.is_dir())
        if root.is_dir()
        else []
    )
    deleted = []
    for name in names:
        runs = run_folders(root, name)
        for folder in runs[: max(0, len(runs) - keep)]:
            shutil.rmtree(folder)
            deleted.append(folder)
    return deleted
