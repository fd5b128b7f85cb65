"""The README's Python blocks run as written, and its command lines parse, so neither can rot.

Network-free: the client snippet reads ``PAYMENTS_BASE_URL`` (a documented ``ClientConfig.from_env`` override), which
points at a small partner served on 127.0.0.1; the shared-state snippet reads ``REDIS_URL``, which points at a
private ``redis-server``. Each block runs in a fresh namespace in a temporary folder.
"""

from __future__ import annotations

import re
import shlex
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgi_server import serve_in_thread
from redis_server import redis_url  # noqa: F401 - fixture
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from integration_kit.playbook.cli import app as cli

README = Path(__file__).resolve().parents[1] / "README.md"
TEXT = README.read_text(encoding="utf-8")
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", TEXT, flags=re.S)
BASH_BLOCKS = re.findall(r"```bash\n(.*?)```", TEXT, flags=re.S)


def _partner() -> Starlette:
    async def order(request: Request) -> JSONResponse:
        return JSONResponse({"id": int(request.path_params["id"]), "status": "paid"})

    async def payments(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "key": request.headers.get("idempotency-key")})

    async def slow(request: Request) -> JSONResponse:
        return JSONResponse({"slow": False})

    return Starlette(
        routes=[
            Route("/v1/orders/{id:int}", order),
            Route("/v1/payments", payments, methods=["POST"]),
            Route("/v1/slow", slow),
        ]
    )


@pytest.fixture(scope="module")
def partner_url() -> Iterator[str]:
    with serve_in_thread(_partner()) as url:
        yield url + "/v1"


def test_the_readme_has_the_blocks_this_test_expects() -> None:
    assert len(PYTHON_BLOCKS) >= 4, "a Python block went missing from the README"
    assert BASH_BLOCKS, "the README lost its commands"


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_each_python_block_runs_as_written(
    index: int,
    partner_url: str,
    redis_url: str,  # noqa: F811 - fixture
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PAYMENTS_TOKEN", "readme-canary-token")
    monkeypatch.setenv("PAYMENTS_BASE_URL", partner_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    _run_block(PYTHON_BLOCKS[index], f"readme_block_{index}", monkeypatch)
    printed = capsys.readouterr().out
    assert "readme-canary-token" not in printed  # a snippet never prints the secret


def test_the_engine_snippet_shows_a_retried_503(monkeypatch: pytest.MonkeyPatch) -> None:
    engine_block = next(b for b in PYTHON_BLOCKS if "send_attempt" in b)
    namespace = _run_block(engine_block, "readme_engine", monkeypatch)
    assert namespace["outcome"].status == 200
    assert namespace["recorder"].summary().attempts == 2


def _run_block(block: str, name: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Execute ``block`` as the body of a fresh module (dataclasses look their module up in sys.modules)."""
    module = types.ModuleType(name)
    monkeypatch.setitem(sys.modules, name, module)
    exec(compile(block, f"README.md ({name})", "exec"), module.__dict__)
    return module.__dict__


def _commands() -> list[list[str]]:
    lines = []
    for block in BASH_BLOCKS:
        for raw in block.splitlines():
            line = raw.split("  #", 1)[0].strip()
            if line:
                lines.append(shlex.split(line))
    return lines


def test_every_command_line_names_something_a_fresh_clone_has() -> None:
    root = README.parent
    for words in _commands():
        head = words[0]
        if head in ("python3", "source"):
            assert (root / words[1]).exists() or words[1] == "-m", words
        elif head.startswith(".venv/bin/"):
            assert head.removeprefix(".venv/bin/") in ("python", "integration-kit", "pip"), words
            if head.endswith("python"):
                assert (root / words[1]).exists(), words
        else:
            assert head == "integration-kit", f"{words}: a bare command that needs .venv/bin/ or activation"


def test_every_integration_kit_line_parses_and_dispatches(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each ``integration-kit ...`` line is a valid invocation; the long-running commands are stubbed here."""
    seen: list[str] = []
    monkeypatch.setitem(cli.HANDLERS, "run", lambda args: seen.append("run") or 0)
    monkeypatch.setitem(cli.HANDLERS, "serve", lambda args: seen.append("serve") or 0)
    monkeypatch.chdir(tmp_path)
    for words in _commands():
        if words[0].removeprefix(".venv/bin/") != "integration-kit":
            continue
        argv = words[1:]
        if "--events" in argv:  # write the events file into the temporary folder
            argv[argv.index("--events") + 1] = str(tmp_path / "ev.csv")
        assert cli.main(argv) in (0, 1), words  # 1: a checklist item failed, which is a valid outcome
    assert {"run", "serve"} <= set(seen)
