"""Old import paths of modules that moved in 0.3, kept working for one release with a ``DeprecationWarning``.

0.3 gave the playbook one pipeline for every kind (``integration_kit.playbook.kinds``, ``.run``, ``.verdict``,
``.tune``, ``.cli``) and took the research tools out of it (``integration_kit.research``). Importing a module by
its 0.2 path gives the module at its new path (the same object) and warns once, naming the new path; the CHANGELOG
lists them. :func:`install` puts the finder on :data:`sys.meta_path` (``integration_kit/__init__.py`` does).
Some names inside the modules moved too: those are listed in the CHANGELOG and not aliased here.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType

__all__ = ["MOVED", "install"]

#: 0.2 module path -> 0.3 module path.
MOVED: dict[str, str] = {
    "integration_kit.playbook.charts": "integration_kit.playbook.kinds.http.charts",
    "integration_kit.playbook.design": "integration_kit.playbook.kinds.http.design",
    "integration_kit.playbook.fidelity": "integration_kit.research.fidelity",
    "integration_kit.playbook.figures": "integration_kit.playbook.kinds.http.figures",
    "integration_kit.playbook.findings": "integration_kit.playbook.kinds.http.findings",
    "integration_kit.playbook.live": "integration_kit.playbook.kinds.http.live",
    "integration_kit.playbook.notes": "integration_kit.playbook.kinds.http.notes",
    "integration_kit.playbook.objectives": "integration_kit.playbook.kinds.http.objectives",
    "integration_kit.playbook.overload": "integration_kit.research.overload",
    "integration_kit.playbook.progress": "integration_kit.playbook.run.progress",
    "integration_kit.playbook.queue_live": "integration_kit.playbook.kinds.queue.live",
    "integration_kit.playbook.queue_spec": "integration_kit.playbook.kinds.queue.spec",
    "integration_kit.playbook.runner": "integration_kit.playbook.run.runner",
    "integration_kit.playbook.runs": "integration_kit.playbook.run.runs",
    "integration_kit.playbook.scoreboard": "integration_kit.research.scoreboard",
    "integration_kit.playbook.sim_figures": "integration_kit.playbook.kinds.http.sim_figures",
    "integration_kit.playbook.spec": "integration_kit.playbook.kinds.http.spec",
    "integration_kit.playbook.spec_edit": "integration_kit.playbook.tune.spec_edit",
    "integration_kit.playbook.specs": "integration_kit.playbook.kinds.table",
    "integration_kit.playbook.targets": "integration_kit.research.targets",
    "integration_kit.playbook.tune_cli": "integration_kit.playbook.cli.tune",
    "integration_kit.playbook.tune_space": "integration_kit.playbook.kinds.http.tune_space",
    "integration_kit.playbook.webhook_charts": "integration_kit.playbook.kinds.webhook.charts",
    "integration_kit.playbook.webhook_cli": "integration_kit.playbook.cli.webhooks",
    "integration_kit.playbook.webhook_live": "integration_kit.playbook.kinds.webhook.live",
    "integration_kit.playbook.webhook_runner": "integration_kit.playbook.kinds.webhook.exercise",
    "integration_kit.playbook.webhook_sim": "integration_kit.playbook.kinds.webhook.sim",
    "integration_kit.playbook.webhook_spec": "integration_kit.playbook.kinds.webhook.spec",
    "integration_kit.queues.cli": "integration_kit.playbook.cli.queues",
}


class _Alias(importlib.abc.Loader):
    """Loads an old path as the module at its new path."""

    def __init__(self, new: str) -> None:
        self.new = new

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(
            f"{spec.name} moved to {self.new} in integration_kit 0.3; the old path goes in 0.4",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.import_module(self.new)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the module at the new path is already loaded."""


class _MovedFinder(importlib.abc.MetaPathFinder):
    """Finds the old paths of :data:`MOVED`, after every other finder has said no."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        new = MOVED.get(fullname)
        return importlib.util.spec_from_loader(fullname, _Alias(new)) if new is not None else None


def install() -> None:
    """Put the finder of old paths at the end of :data:`sys.meta_path` (once)."""
    if not any(isinstance(finder, _MovedFinder) for finder in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
