"""Spec files, whatever their kind: names, where a name's file is, reading it, and where its scenarios are found.

Every kind stores one spec per TOML file, ``<project integrations>/<name>.toml`` (see
:class:`~integration_kit.playbook.project.Project`), whose ``name`` equals its file name. A spec is named either by
that name or by the path of a ``.toml`` file. Scenarios named in a spec are looked up in the project that holds the
spec file, then among the bundled ones (:func:`scenario_search`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeGuard, TypeVar

from integration_kit.errors import ConfigurationError
from integration_kit.playbook.project import Project, ProjectNotFound, find_root
from integration_kit.sim.scenarios import read_toml

__all__ = [
    "SUMMARY_FILE",
    "integrations_dir",
    "is_name",
    "read_spec",
    "read_summary",
    "scenario_search",
    "spec_kind",
    "spec_names",
    "spec_path",
]

#: The summary document every kind's exercise writes into its run folder (stage 02), and its judge reads back.
SUMMARY_FILE = "summary.json"


class _Named(Protocol):
    @property
    def name(self) -> str: ...


S = TypeVar("S", bound=_Named)

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def is_name(value: object) -> TypeGuard[str]:
    """Whether ``value`` is an integration or scenario name: 1 to 64 lower-case letters, digits, '-' or '_',
    starting with a letter or digit (names become file names, so nothing else)."""
    return isinstance(value, str) and _NAME.fullmatch(value) is not None


def integrations_dir(directory: str | Path | None = None) -> Path:
    """``directory`` if given, else the integrations folder of the project holding the current directory.

    Raises :class:`~integration_kit.playbook.project.ProjectNotFound` when there is no such project.
    """
    return Path(directory) if directory is not None else Project.discover().integrations


def spec_names(directory: str | Path | None = None) -> list[str]:
    """The names of the specs in ``directory`` (default: the current project's integrations folder), sorted."""
    return sorted(p.stem for p in integrations_dir(directory).glob("*.toml"))


def spec_path(name: str | Path, *, directory: str | Path | None = None) -> Path:
    """The file of a spec given by name (``<directory>/<name>.toml``, default the current project's integrations
    folder) or by the path of a TOML file.

    A name must be a plain name: anything that tries to leave the directory (``../x``, an absolute path without
    ``.toml``) is refused. Raises :class:`~integration_kit.errors.ConfigurationError` for a bad or unknown name.
    """
    text = str(name)
    if text.endswith(".toml"):
        return Path(text)
    if not _NAME.fullmatch(text):
        raise ConfigurationError(f"{text!r} is not an integration name (lower-case letters, digits, '-' and '_' only)")
    folder = integrations_dir(directory)
    path = folder / f"{text}.toml"
    if not path.is_file():
        known = ", ".join(spec_names(folder)) or "none"
        raise ConfigurationError(f"no integration named {text!r} in {folder} (available: {known})")
    return path


def read_spec(name: str | Path, build: Callable[..., S], *, directory: str | Path | None = None) -> S:
    """Read the spec file named ``name`` (see :func:`spec_path`) and build it with
    ``build(data, source=..., path=...)`` (a spec class's ``from_mapping``); the spec's ``name`` must equal its
    file name.

    Raises :class:`~integration_kit.errors.ConfigurationError` for a bad name, unreadable TOML, an invalid spec
    (from ``build``) or a name that differs from the file's.
    """
    path = spec_path(name, directory=directory)
    spec = build(read_toml(path, "spec"), source=str(path), path=path)
    if spec.name != path.stem:
        raise ConfigurationError(
            f"{path}: name: the spec's name {spec.name!r} must equal its file name {path.stem!r} "
            f"(rename the file to {spec.name}.toml or set name = {path.stem!r})"
        )
    return spec


def spec_kind(name: str | Path, *, directory: str | Path | None = None) -> str:
    """The ``kind`` a spec file declares (``"http"`` when it declares none, or when the file cannot be read: the
    loader then gives the precise error)."""
    text = str(name)
    if not text.endswith(".toml") and not _NAME.fullmatch(text):
        return "http"
    try:
        path = spec_path(text, directory=directory)
        kind = read_toml(path, "spec").get("kind", "http")
    except ConfigurationError:
        return "http"
    return kind if isinstance(kind, str) else "http"


def scenario_search(path: Path | None) -> tuple[Path, ...]:
    """The folders a spec's named scenarios are looked up in before the bundled ones: the scenarios folder of the
    project holding the spec file (``path``), else of the current directory's project, else none."""
    root = find_root(path.resolve().parent) if path is not None else None
    root = root or find_root(Path.cwd())
    if root is None:
        return ()
    try:
        return (Project.at(root).scenarios,)
    except ProjectNotFound:  # pragma: no cover - find_root found its table a moment ago
        return ()


def read_summary(out_dir: str | Path) -> dict[str, Any]:
    """The summary document (:data:`SUMMARY_FILE`) an exercise wrote into ``out_dir``.

    Raises :class:`~integration_kit.errors.ConfigurationError` when the folder holds no exercise.
    """
    file = Path(out_dir) / SUMMARY_FILE
    if not file.is_file():
        raise ConfigurationError(f"{out_dir}: no exercise results ({SUMMARY_FILE} missing): run stage 02 first")
    loaded: dict[str, Any] = json.loads(file.read_text())
    return loaded
