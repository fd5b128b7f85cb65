"""``init``, ``new``, ``notebooks`` and ``lab``: a project in the user's repository, its specs and its notebooks.

``init`` makes a folder a project (a ``[tool.integration-kit]`` table in its ``pyproject.toml``, or an
``integration-kit.toml``) with one commented example spec that passes ``check``; ``new NAME --kind KIND`` writes a
commented spec of a kind; ``notebooks --copy`` puts editable copies of the stage notebooks in the project (runs then
use them); ``lab`` opens JupyterLab on the project with the stage notebooks at hand (its copies, else fresh ones
in ``<project out>/lab``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from integration_kit.errors import ConfigurationError
from integration_kit.playbook.cli.args import Command, project_of
from integration_kit.playbook.cli.openapi import write_openapi_spec
from integration_kit.playbook.kinds.files import is_name
from integration_kit.playbook.kinds.table import KINDS, kind_named
from integration_kit.playbook.project import DEFAULTS, PROJECT_FILE, Project, ProjectNotFound, find_root
from integration_kit.playbook.run.runner import NOTEBOOKS, notebook_path

__all__ = ["COMMANDS", "init_project", "write_spec"]

#: The project table ``init`` adds to an existing ``pyproject.toml``.
_TABLE = """
[tool.integration-kit]                  # this repository is an integration-kit project
integrations = "integrations"           # one <name>.toml spec per integration
scenarios = "scenarios"                 # the project's own fault scenarios (looked up before the bundled ones)
out = "out"                             # run folders: keep them out of git
"""


def init_project(folder: Path) -> list[Path]:
    """Make ``folder`` a project with an example HTTP spec; return the files written or changed.

    Raises :class:`~integration_kit.errors.ConfigurationError` when ``folder`` is already a project.
    """
    folder = folder.resolve()
    root = find_root(folder)
    if root == folder:
        raise ConfigurationError(f"{folder} is already an integration-kit project ({Project.at(folder).config_file})")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    pyproject = folder / "pyproject.toml"
    if pyproject.is_file():
        with pyproject.open("a", encoding="utf-8") as fh:
            fh.write(_TABLE)
        written.append(pyproject)
    else:
        config = folder / PROJECT_FILE
        body = _TABLE.lstrip("\n").split("\n", 1)[1]  # the table's keys, without its pyproject header
        config.write_text("# An integration-kit project: where its specs, scenarios and runs live.\n" + body, "utf-8")
        written.append(config)
    project = Project.at(folder)
    project.scenarios.mkdir(parents=True, exist_ok=True)
    written.append(write_spec(project, "example", "http"))
    ignore = folder / ".gitignore"
    lines = ignore.read_text(encoding="utf-8").splitlines() if ignore.is_file() else []
    if f"{DEFAULTS['out']}/" not in lines:
        ignore.write_text("\n".join([*lines, f"{DEFAULTS['out']}/"]) + "\n", encoding="utf-8")
        written.append(ignore)
    return written


def write_spec(project: Project, name: str, kind: str, *, force: bool = False) -> Path:
    """Write the commented example spec of ``kind`` as ``<integrations>/<name>.toml``; return its path.

    Raises :class:`~integration_kit.errors.ConfigurationError` for a bad name or kind, or a file that exists
    (unless ``force``).
    """
    if not is_name(name):
        raise ConfigurationError(f"{name!r} is not an integration name (lower-case letters, digits, '-' and '_')")
    template = kind_named(kind, source="--kind").templates[kind]
    target = project.integrations / f"{name}.toml"
    if target.exists() and not force:
        raise ConfigurationError(f"{target} exists (--force replaces it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(template.replace("{name}", name), encoding="utf-8")
    return target


def _init_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", nargs="?", default=".", help="the folder to make a project (default: this one)")


def _init_command(args: argparse.Namespace) -> int:
    written = init_project(Path(args.folder))
    for path in written:
        print(f"wrote {path}")
    print("\nnext: integration-kit check example, then integration-kit run example (or run --all in CI)")
    return 0


def _new_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the integration's name (lower-case letters, digits, '-' and '_')")
    parser.add_argument("--kind", choices=KINDS, default="http", help="the kind of integration (default http)")
    parser.add_argument("--force", action="store_true", help="replace a spec of that name")
    parser.add_argument(
        "--openapi", metavar="FILE", help="write an HTTP spec from this OpenAPI document (JSON or YAML)"
    )
    parser.add_argument(
        "--operations", metavar="IDS", help="with --openapi: comma-separated operationIds (default all)"
    )


def _new_command(args: argparse.Namespace) -> int:
    if args.operations and not args.openapi:
        raise ConfigurationError("--operations needs --openapi")
    if args.openapi and args.kind != "http":
        raise ConfigurationError("--openapi writes an HTTP spec (--kind http)")
    if args.openapi:
        path = write_openapi_spec(project_of(args), args.name, args.openapi, args.operations, force=args.force)
    else:
        path = write_spec(project_of(args), args.name, args.kind, force=args.force)
    print(f"wrote {path}: edit it, then integration-kit check {args.name}")
    return 0


def _notebooks_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--copy", action="store_true", help="copy the stage notebooks into <project>/notebooks")
    parser.add_argument("--force", action="store_true", help="with --copy: replace copies that exist")


def _notebooks_command(args: argparse.Namespace) -> int:
    project = project_of(args)
    target = project.root / "notebooks"
    for name in NOTEBOOKS:
        with notebook_path(name) as source:
            if not args.copy:
                mine = target / name
                print(f"{name}: {mine if mine.is_file() else source}")
                continue
            if (target / name).exists() and not args.force:
                raise ConfigurationError(f"{target / name} exists (--force replaces it)")
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target / name)
            print(f"copied {name} to {target}")
    return 0


def _lab_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "jupyter_args", nargs=argparse.REMAINDER, help="options passed to JupyterLab (e.g. --no-browser --port 8890)"
    )


def _lab_command(args: argparse.Namespace) -> int:
    """JupyterLab rooted at the project. Without copies of the stage notebooks in ``<project>/notebooks``, fresh
    copies go to ``<project out>/lab`` (git-ignored scratch) so they are at hand."""
    try:
        project = project_of(args)
    except ProjectNotFound as exc:
        raise ConfigurationError(f"{exc} (lab opens on a project)") from None
    if not all((project.root / "notebooks" / name).is_file() for name in NOTEBOOKS):
        scratch = project.out / "lab"
        scratch.mkdir(parents=True, exist_ok=True)
        for name in NOTEBOOKS:
            with notebook_path(name) as source:
                shutil.copyfile(source, scratch / name)
    extra = [a for a in args.jupyter_args if a != "--"]
    # Jupyter refuses to start as root (containers) unless told; the user chose to run as root.
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in extra:
        extra.append("--allow-root")
    command = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={project.root}", *extra]
    os.chdir(project.root)
    if os.name == "posix":  # become JupyterLab: a signal to this process (Ctrl-C, a supervisor's TERM) reaches it
        os.execv(sys.executable, command)  # noqa: S606 - our own interpreter
    return subprocess.run(command, check=False).returncode  # noqa: S603 - our own interpreter


#: The commands of this module, for the CLI's table.
COMMANDS = (
    Command("init", "make a folder an integration-kit project, with an example spec", _init_arguments, _init_command),
    Command("new", "write a commented spec of a kind into the project", _new_arguments, _new_command),
    Command(
        "notebooks",
        "where the stage notebooks are; --copy puts editable copies in the project",
        _notebooks_arguments,
        _notebooks_command,
    ),
    Command("lab", "open JupyterLab on the project, with the stage notebooks", _lab_arguments, _lab_command),
)
