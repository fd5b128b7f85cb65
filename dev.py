#!/usr/bin/env python3
"""Set up an isolated environment and run the project's jobs. Needs only python3 (3.11+).

    python3 dev.py main     # set up, then run the main job (the playbook gate; keeps the newest 5 runs)
    python3 dev.py test     # set up, then run the test suite
    python3 dev.py lint     # ruff, ruff format --check, mypy --strict, import-linter's layer contracts
    python3 dev.py bench    # the benchmarks under bench/, one after another
    python3 dev.py bench SCRIPT [ARGS...]   # one benchmark; ARGS go to it (bench/scoreboard.py --quick)
    python3 dev.py mutate   # mutation testing with mutmut, one module at a time (tests/mutation.py);
                            #   [MODULE|LAYER ...] [--minutes N per module] [--only GLOB] [--report]
    python3 dev.py lab      # JupyterLab on notebooks/
    python3 dev.py docs     # the documentation site (mkdocs) into site/; CI adds --strict

The environment lives in .venv (override with INTEGRATION_KIT_VENV). It is created when missing and reinstalled
when pyproject.toml changes, so the first run takes a few minutes and later runs start at once.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("INTEGRATION_KIT_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"

#: What ruff checks: the Python code (Markdown code blocks are examples, not sources).
PYTHON_PATHS = ("integration_kit", "tests", "bench", "dev.py")

EXTRAS = {
    "main": "playbook",
    "test": "dev,notebooks,docs",  # docs: tests/test_docs_site.py builds the site
    "lint": "dev,notebooks",
    "bench": "dev,bench",
    "mutate": "dev,notebooks,mutate",
    "lab": "playbook",
    "docs": "docs",
}


def ensure_env(extras: str) -> None:
    """Create the virtualenv if needed and install the package with ``extras`` unless already done."""
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may be run by an older python3
        sys.exit(f"integration_kit needs Python 3.11+, this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        print(f"creating {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
        subprocess.run([PYTHON, "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    stamp = install_stamp(extras)
    if stamp.exists():
        return
    print(f"installing integration_kit[{extras}] into {VENV} ...", flush=True)
    subprocess.run([PYTHON, "-m", "pip", "install", "-q", "-e", f".[{extras}]"], cwd=ROOT, check=True)
    stamp.touch()


def install_stamp(extras: str) -> Path:
    """The file that says the package is installed with ``extras`` as ``pyproject.toml`` now stands."""
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()[:16]
    return VENV / f".installed-{digest}"


def run(*args: str | Path) -> int:
    """Run a command from the repository root and return its exit code."""
    return subprocess.run([str(a) for a in args], cwd=ROOT, check=False).returncode


def main(argv: list[str]) -> int:
    """Dispatch one job; extra arguments go to the tool it runs."""
    job, rest = (argv[0], argv[1:]) if argv else ("main", [])
    if job not in EXTRAS:
        print(__doc__)
        return 2
    ensure_env(EXTRAS[job])
    if job == "main":
        return run(BIN / "integration-kit", "run", "--all", "--keep", "5", *rest)  # out/ keeps 5 runs each
    if job == "test":
        return run(PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", *rest)
    if job == "lint":
        return (
            run(BIN / "ruff", "check", *PYTHON_PATHS)
            or run(BIN / "ruff", "format", "--check", *PYTHON_PATHS)
            or run(BIN / "mypy", "--strict", "integration_kit")
            or run(BIN / "lint-imports")
        )
    if job == "mutate":
        return run(PYTHON, "tests/mutation.py", *rest)
    if job == "bench":
        if rest:  # one script, and what follows is its own arguments (--quick reaches scoreboard.py)
            return run(PYTHON, *rest)
        scripts = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "bench").glob("*.py"))
        return max((run(PYTHON, s) for s in scripts), default=0)
    if job == "docs":
        os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
        return run(BIN / "mkdocs", "build", *rest)
    # Jupyter refuses to start as root (containers) unless told; the user chose to run as root.
    as_root = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in rest else []
    return run(BIN / "jupyter", "lab", "notebooks", *as_root, *rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
