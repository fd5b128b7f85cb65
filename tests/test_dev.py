"""``dev.py`` runs its jobs as its docstring and the README say: here, ``bench SCRIPT ARGS...`` passes ARGS on.

``dev.py`` runs for real, in a subprocess, against a stand-in environment: a folder named by
``INTEGRATION_KIT_VENV`` whose ``bin/python`` is this interpreter and whose install stamp is already there, so no
virtualenv is created and nothing is installed. The benchmark is a tiny script that records its arguments.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def stand_in_venv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder ``dev.py`` takes for a ready environment with the ``bench`` job's extras installed."""
    venv = tmp_path / "venv"
    monkeypatch.setenv("INTEGRATION_KIT_VENV", str(venv))  # dev.py reads it at import time
    spec = importlib.util.spec_from_file_location("dev_under_test", ROOT / "dev.py")
    assert spec is not None
    assert spec.loader is not None
    dev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dev)
    dev.BIN.mkdir(parents=True)
    dev.PYTHON.symlink_to(sys.executable)
    dev.install_stamp(dev.EXTRAS["bench"]).touch()
    return venv


def _dev(venv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "INTEGRATION_KIT_VENV": str(venv)}
    return subprocess.run(
        [sys.executable, str(ROOT / "dev.py"), *args], env=env, check=False, capture_output=True, text=True, timeout=60
    )


def test_bench_passes_the_arguments_after_the_script_to_it(stand_in_venv: Path, tmp_path: Path) -> None:
    script = tmp_path / "tiny_bench.py"
    record = tmp_path / "argv.json"
    script.write_text(f"import json, sys\nopen({str(record)!r}, 'w').write(json.dumps(sys.argv[1:]))\n")
    done = _dev(stand_in_venv, "bench", str(script), "--quick", "--repeat", "2")
    assert done.returncode == 0, done.stderr
    assert "installing" not in done.stdout  # the stand-in environment was taken as ready
    assert json.loads(record.read_text()) == ["--quick", "--repeat", "2"]


def test_bench_returns_the_scripts_exit_code(stand_in_venv: Path, tmp_path: Path) -> None:
    script = tmp_path / "failing_bench.py"
    script.write_text("import sys\nsys.exit(3 if sys.argv[1:] == ['--quick'] else 0)\n")
    assert _dev(stand_in_venv, "bench", str(script), "--quick").returncode == 3
