"""A project: the user's repository, where their integration specs, scenarios and runs live.

A folder is a project when it holds an ``integration-kit.toml`` or a ``pyproject.toml`` with a
``[tool.integration-kit]`` table. :meth:`Project.discover` finds the nearest one from a folder upward (as git finds
its repository); ``integration-kit --project DIR`` names one. The table says where things live, relative to the
project's root; every key is optional::

    [tool.integration-kit]
    integrations = "integrations"   # one <name>.toml spec per integration
    scenarios = "scenarios"         # the project's own fault scenarios, looked up before the bundled ones
    out = "out"                     # run folders (add it to .gitignore)

In ``integration-kit.toml`` the same keys sit at the top level. Scenarios are looked up by name in the project
first, then among the scenarios bundled with the package (:data:`~integration_kit.sim.scenarios.SCENARIO_DIR`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from integration_kit.errors import ConfigurationError
from integration_kit.sim.scenarios import SCENARIO_DIR, read_toml

__all__ = ["DEFAULTS", "PROJECT_FILE", "Project", "ProjectNotFound", "find_root"]

#: The project file that is not a ``pyproject.toml``.
PROJECT_FILE = "integration-kit.toml"
#: Where each folder of a project is, relative to its root, when its table does not say.
DEFAULTS: Mapping[str, str] = {"integrations": "integrations", "scenarios": "scenarios", "out": "out"}


class ProjectNotFound(ConfigurationError):
    """No project in a folder or any of its parents (``integration-kit init`` makes one)."""


@dataclass(frozen=True, slots=True)
class Project:
    """A project's root and its three folders (absolute paths; they need not exist yet)."""

    root: Path
    integrations: Path
    scenarios: Path
    out: Path
    #: The file that declared the project (``pyproject.toml`` or ``integration-kit.toml``).
    config_file: Path

    @classmethod
    def discover(cls, start: str | Path | None = None) -> Project:
        """The project holding ``start`` (default: the current directory), looking upward.

        Raises :class:`ProjectNotFound` naming ``start`` when no folder from it up to ``/`` is a project, and
        :class:`~integration_kit.errors.ConfigurationError` for an invalid project table.
        """
        origin = Path(start if start is not None else os.getcwd()).resolve()
        root = find_root(origin)
        if root is None:
            raise ProjectNotFound(
                f"no integration-kit project in {origin} or its parents: run `integration-kit init` there, or add "
                "a [tool.integration-kit] table to its pyproject.toml (or pass --project DIR)"
            )
        return cls.at(root)

    @classmethod
    def at(cls, root: str | Path) -> Project:
        """The project whose root is ``root``; raises :class:`ProjectNotFound` when it declares none."""
        folder = Path(root).resolve()
        found = _table(folder)
        if found is None:
            raise ProjectNotFound(
                f"{folder} is not an integration-kit project: it has no {PROJECT_FILE} and no [tool.integration-kit] "
                "table in a pyproject.toml (run `integration-kit init` there)"
            )
        path, table = found
        return cls.from_table(folder, table, source=str(path), config_file=path)

    @classmethod
    def from_table(
        cls, root: Path, table: Mapping[str, Any], *, source: str = "<project>", config_file: Path | None = None
    ) -> Project:
        """Build a project from its table; an unknown key or a value that is not a relative path is an error
        naming ``source`` and the key."""
        unknown = sorted(set(table) - set(DEFAULTS))
        if unknown:
            raise ConfigurationError(
                f"{source}: {unknown[0]}: unknown key in the project table (expected {', '.join(DEFAULTS)})"
            )
        folders: dict[str, Path] = {}
        for key, default in DEFAULTS.items():
            value = table.get(key, default)
            if not isinstance(value, str) or not value.strip():
                raise ConfigurationError(f"{source}: {key}: must be a folder path, got {value!r}")
            folders[key] = (root / value).resolve()
        return cls(root=root, config_file=config_file or root / PROJECT_FILE, **folders)

    def spec_names(self) -> list[str]:
        """The names of the project's integration specs (``<integrations>/<name>.toml``), sorted."""
        return sorted(p.stem for p in self.integrations.glob("*.toml"))

    def scenario_dirs(self) -> tuple[Path, ...]:
        """Where scenarios are looked up by name, in order: the project's, then the bundled ones."""
        return (self.scenarios, SCENARIO_DIR)

    def relative(self, path: Path) -> str:
        """``path`` relative to the project's root when it is inside it (for messages), else as given."""
        try:
            return str(path.resolve().relative_to(self.root))
        except ValueError:
            return str(path)


def find_root(start: Path) -> Path | None:
    """The nearest folder from ``start`` upward that declares a project, or ``None``."""
    for folder in (start, *start.parents):
        if _table(folder) is not None:
            return folder
    return None


def _table(folder: Path) -> tuple[Path, Mapping[str, Any]] | None:
    """The project table declared in ``folder`` and the file it is in, or ``None``."""
    own = folder / PROJECT_FILE
    if own.is_file():
        return own, read_toml(own, "project file")
    pyproject = folder / "pyproject.toml"
    if pyproject.is_file():
        tool = read_toml(pyproject, "pyproject.toml").get("tool", {})
        table = tool.get("integration-kit") if isinstance(tool, Mapping) else None
        if table is not None:
            if not isinstance(table, Mapping):
                raise ConfigurationError(f"{pyproject}: tool.integration-kit: must be a table")
            return pyproject, table
    return None
