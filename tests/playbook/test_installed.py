"""The installed path, as a new user takes it: the wheel built from this repository, installed with the playbook
extra into a fresh virtual environment, used from an empty folder outside the repository.

It proves what a clone of the repository cannot: that the wheel holds the stage notebooks, the bundled scenarios
and the example specs, and that nothing computes a folder from the package's own location.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import venv
import zipfile
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of this repository, built as pip builds it."""
    folder = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(folder)],
        check=True,
        timeout=600,
    )
    (built,) = folder.glob("integration_kit-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel and its playbook extra; returns its bin folder."""
    env = tmp_path_factory.mktemp("env")
    venv.EnvBuilder(with_pip=True).create(env)
    bin_dir = env / ("Scripts" if os.name == "nt" else "bin")
    subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", f"{wheel}[playbook]"], check=True, timeout=900
    )
    return bin_dir


def cli(bin_dir: Path, folder: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``integration-kit ARGS`` from the environment, in ``folder``, with only the environment's own paths."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        [str(bin_dir / "integration-kit"), *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_the_wheel_ships_the_notebooks_scenarios_and_templates_and_no_research_tools(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for stage in ("01_design", "02_exercise", "03_charts", "04_tune"):
        assert f"integration_kit/playbook/notebooks/{stage}.ipynb" in names
    for scenario in ("steady", "outage-and-recovery", "brownout", "slow-partner"):
        assert f"integration_kit/sim/bundled/{scenario}.toml" in names
    for template in ("http/template.toml", "queue/template.toml", "webhook/template-in.toml"):
        assert f"integration_kit/playbook/kinds/{template}" in names
    assert not [n for n in names if n.startswith("integration_kit/research/")]


def test_a_new_project_from_the_installed_wheel_runs_the_gate(installed: Path, tmp_path: Path) -> None:
    project = tmp_path / "shop"
    project.mkdir()
    outside = cli(installed, project, "list")
    assert outside.returncode == 2
    assert "integration-kit init" in outside.stderr  # no project yet: it says how to make one
    simulated = cli(installed, project, "simulate", "--scenario", "outage-and-recovery", "--duration", "20")
    assert simulated.returncode == 0, simulated.stderr  # the bundled scenarios are found without a project
    assert cli(installed, project, "init").returncode == 0
    checked = cli(installed, project, "check", "example")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "11/11 checklist items pass" in checked.stdout
    for kind in ("webhook-in", "webhook-out", "queue"):
        assert cli(installed, project, "new", kind.replace("-", ""), "--kind", kind).returncode == 0
        assert cli(installed, project, "check", kind.replace("-", "")).returncode == 0, kind
    ran = cli(installed, project, "run", "--all", "--scenario", "steady", "--junit", "junit.xml")
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert "verdict: example [http] PASS" in ran.stdout
    (run_dir,) = (project / "out" / "example").iterdir()
    verdict = json.loads((run_dir / "verdict.json").read_text())
    assert verdict["passed"] is True
    assert {c["scenario"] for c in verdict["checks"]} == {"steady"}
    report = (run_dir / "report.html").read_text()
    assert report.index("PASS") < report.index("integration design")  # the verdict opens the report
    assert "data:image/png;base64" in report  # self-contained: the charts are embedded
    junit = (project / "junit.xml").read_text()
    assert '<testsuite name="example"' in junit
    assert "<failure" not in junit
    copied = cli(installed, project, "notebooks", "--copy")
    assert copied.returncode == 0, copied.stderr
    assert (project / "notebooks" / "02_exercise.ipynb").is_file()


@pytest.fixture
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_lab_opens_jupyterlab_on_the_project(installed: Path, tmp_path: Path, free_port: int) -> None:
    assert cli(installed, tmp_path, "init").returncode == 0
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    lab = subprocess.Popen(
        [
            str(installed / "integration-kit"),
            "lab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={free_port}",
            "--IdentityProvider.token=t0ken",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        answer = None
        while time.monotonic() < deadline and lab.poll() is None:
            try:
                answer = httpx.get(f"http://127.0.0.1:{free_port}/api/contents/out/lab?token=t0ken", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.5)  # a real server starting in another process: no clock to inject
        assert answer is not None, f"JupyterLab did not answer (exit status {lab.poll()})"
        assert answer.status_code == 200
        listed = {item["name"] for item in answer.json()["content"]}
        assert {"01_design.ipynb", "02_exercise.ipynb", "03_charts.ipynb"} <= listed
    finally:
        lab.terminate()
        lab.wait(timeout=30)
