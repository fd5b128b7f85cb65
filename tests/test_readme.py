"""The README's Python blocks run as written, and its command lines parse, so neither can rot.

A block that needs something set says so in an italic line right above it, naming the environment variables in
backticks: ``*Template: set `X` ...*`` when it cannot run as written (it names a placeholder service), ``*Reads `X`
...*`` when a variable only changes where it points. Each block runs with exactly the variables its line names (set
here to local stand-ins: ``PAYMENTS_BASE_URL`` to a small partner on 127.0.0.1, ``REDIS_URL`` to a private
``redis-server``) and no other, in a fresh namespace, with a temporary folder standing in for the repository root:
afterwards that folder may hold ``out/`` (which git ignores) and nothing else. A template block must fail, naming a
variable of its line, when run with none set. Name resolution is limited to loopback throughout, so a block can
never reach a real host.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
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
#: Each Python block with the italic line right above it (empty when there is none).
MARKED_BLOCKS = re.findall(r"(?:^(\*[^\n]*(?:\n[^\n]+)*?\*)\n\n)?```python\n(.*?)```", TEXT, flags=re.S | re.M)
ENV_NAME = re.compile(r"`([A-Z][A-Z0-9_]+)`")
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
    assert [block for _, block in MARKED_BLOCKS] == PYTHON_BLOCKS
    assert any(_is_template(mark) for mark, _ in MARKED_BLOCKS), "the Clients block lost its template line"
    assert BASH_BLOCKS, "the README lost its commands"


def _is_template(mark: str) -> bool:
    return mark.startswith("*Template:")


def _variables(mark: str) -> list[str]:
    """The environment variables a block's italic line names (none without a line)."""
    assert not mark or mark.startswith(("*Template:", "*Reads ")), f"an italic line of unknown form: {mark!r}"
    return ENV_NAME.findall(mark)


@pytest.fixture
def readme_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary folder as the working directory, no README variable set, names resolved on loopback only."""
    for name in set(ENV_NAME.findall(TEXT)) | {n for n in os.environ if n.startswith("PAYMENTS_")}:
        monkeypatch.delenv(name, raising=False)
    resolve = socket.getaddrinfo

    def loopback_only(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in ("127.0.0.1", "localhost", "::1", b"127.0.0.1", b"localhost"):
            raise socket.gaierror(socket.EAI_NONAME, f"the README test resolves loopback only, not {host!r}")
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", loopback_only)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_each_python_block_runs_as_written(
    index: int,
    partner_url: str,
    redis_url: str,  # noqa: F811 - fixture
    readme_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stand_ins = {"PAYMENTS_TOKEN": "readme-canary-token", "PAYMENTS_BASE_URL": partner_url, "REDIS_URL": redis_url}
    mark, block = MARKED_BLOCKS[index]
    for name in _variables(mark):
        assert name in stand_ins, f"the README names {name} above block {index}: give it a local stand-in here"
        monkeypatch.setenv(name, stand_ins[name])
    _run_block(block, f"readme_block_{index}", monkeypatch)
    printed = capsys.readouterr().out
    assert "readme-canary-token" not in printed  # a snippet never prints the secret
    left = sorted(p.name for p in readme_root.iterdir() if p.name != "out")
    assert not left, f"block {index} wrote {left} into the repository root (outputs belong under out/)"


@pytest.mark.parametrize("index", [i for i, (mark, _) in enumerate(MARKED_BLOCKS) if _is_template(mark)])
def test_a_template_block_fails_without_what_its_line_says_to_set(
    index: int, readme_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A template line that no longer names what the block needs (or that it needs nothing) is caught here."""
    mark, block = MARKED_BLOCKS[index]
    with pytest.raises(Exception) as failure:  # whatever the block raises, it names the variable
        _run_block(block, f"readme_template_{index}", monkeypatch)
    assert any(name in str(failure.value) for name in _variables(mark)), failure.value


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
        if head == "mkdir":
            assert words[1:] == ["-p", "out"], f"{words}: only out/ (git ignores it) is made by hand"
        elif head in ("python3", "source"):
            assert (root / words[1]).exists() or words[1] == "-m", words
        elif head.startswith(".venv/bin/"):
            assert head.removeprefix(".venv/bin/") in ("python", "integration-kit", "pip"), words
            if head.endswith("python"):
                assert (root / words[1]).exists(), words
        else:
            assert head == "integration-kit", f"{words}: a bare command that needs .venv/bin/ or activation"


def test_every_integration_kit_line_parses_and_dispatches(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each ``integration-kit ...`` line is a valid invocation, in order, from a temporary folder standing in for
    the repository root (``mkdir -p out`` lines made there too); it writes under ``out/`` only. The long-running
    commands are stubbed here."""
    seen: list[str] = []
    monkeypatch.setitem(cli.HANDLERS, "run", lambda args: seen.append("run") or 0)
    monkeypatch.setitem(cli.HANDLERS, "serve", lambda args: seen.append("serve") or 0)
    monkeypatch.chdir(tmp_path)
    data = README.parent / "data"  # the stand-in is a project with this repository's specs and scenarios
    project = f'integrations = "{data / "integrations"}"\nscenarios = "{data / "scenarios"}"\nout = "out"\n'
    (tmp_path / "integration-kit.toml").write_text(project)
    for words in _commands():
        if words[0] == "mkdir":
            Path(words[-1]).mkdir(parents=True, exist_ok=True)
        if words[0].removeprefix(".venv/bin/") != "integration-kit":
            continue
        assert cli.main(words[1:]) in (0, 1), words  # 1: a checklist item failed, which is a valid outcome
    assert {"run", "serve"} <= set(seen)
    written = sorted(p.name for p in tmp_path.iterdir() if p.name != "integration-kit.toml")
    assert written in ([], ["out"]), "a command wrote outside out/"
