"""A private ``redis-server`` for tests: started on a free loopback port, stopped after, never any other server.

Import the ``redis_url`` fixture into a test module (``from redis_server import redis_url``). Without the binary
the tests skip with a visible reason, except under ``CI=true``, where a missing binary is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

__all__ = ["free_port", "redis_url", "running_redis", "stop"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def running_redis(timeout: float = 10.0) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``redis-server`` on a free port (no persistence) and wait until it answers; return it and its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server binary not found (install it, e.g. apt-get install redis-server)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; required under CI=true")
        pytest.skip(message)
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"redis-server did not start on port {port}")
        time.sleep(0.02)  # polling a starting process: there is no state to step a clock to
    return process, f"redis://127.0.0.1:{port}/0"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The URL of a private redis-server for this test session."""
    process, url = running_redis()
    try:
        yield url
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate ``process`` (one this test session started), and kill it if it does not exit in time."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
