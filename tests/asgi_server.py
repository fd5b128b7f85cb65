"""Serve an ASGI app with uvicorn on a free loopback port, in a thread of the test process or in a subprocess."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import uvicorn
from redis_server import free_port, stop

__all__ = ["request_body", "serve_in_subprocess", "serve_in_thread"]

TESTS = Path(__file__).resolve().parent


async def request_body(receive: Any) -> bytes:
    """The whole body of an ASGI HTTP request, read from ``receive`` until no more is announced."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


@contextlib.contextmanager
def serve_in_thread(app: Any, timeout: float = 10.0) -> Iterator[str]:
    """Run ``app`` on 127.0.0.1 in a background thread; yield its base URL; stop it after."""

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        # uvicorn calls an app with no arguments to detect a factory: under mutmut an app's __call__ is a wrapper
        # that takes any arguments, so the app itself would be taken for one; a plain function of three is not
        await app(scope, receive, send)

    config = uvicorn.Config(asgi, host="127.0.0.1", port=free_port(), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)  # waiting for a real server to bind: no clock to step
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=timeout)


@contextlib.contextmanager
def serve_in_subprocess(factory: str, env: Mapping[str, str], workers: int = 1, timeout: float = 20.0) -> Iterator[str]:
    """Run ``uvicorn --factory <factory>`` (a ``module:function`` under tests/) with ``workers`` processes."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "--factory", factory, "--app-dir", str(TESTS)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "--log-level", "warning"]
    process = subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                err = process.stderr.read().decode() if process.stderr and process.poll() is not None else ""
                raise RuntimeError(f"uvicorn did not start: {err}")
            time.sleep(0.05)  # waiting for real processes to bind: no clock to step
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)
