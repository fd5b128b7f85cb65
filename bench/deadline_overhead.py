"""What holding the deadline at every socket operation costs: sequential GETs, held versus not, side by side.

    .venv/bin/python bench/deadline_overhead.py

A bare ASGI app under uvicorn in a subprocess on 127.0.0.1; two ``ResilientClient``s with the same config, one on
the deadline transport (the default) and one on a plain ``httpx.HTTPTransport`` (composed: held only at its
boundary); interleaved rounds, medians compared.
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import time

import httpx

from integration_kit import ClientConfig, ResilientClient

ROUNDS = 12
CALLS = 150

_APP = """
import sys
import uvicorn

HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"2")]


async def app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": b"{}"})


uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False, lifespan="off")
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-c", _APP, str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(400):
            try:
                httpx.get(url)
                break
            except httpx.TransportError:
                time.sleep(0.05)  # the server process is starting
        config = ClientConfig(name="bench", base_url=url)
        held = ResilientClient(config)
        bare = ResilientClient(config, transport=httpx.HTTPTransport())
        results: dict[str, list[float]] = {"held": [], "bare": []}
        for client in (held, bare):
            for _ in range(50):
                client.get("/")
        for _ in range(ROUNDS):
            for name, client in (("held", held), ("bare", bare)):
                began = time.perf_counter()
                for _ in range(CALLS):
                    client.get("/")
                results[name].append((time.perf_counter() - began) / CALLS * 1e6)
        for name, values in results.items():
            print(f"{name}: median {statistics.median(values):.1f} us per call")
        ratio = statistics.median(results["held"]) / statistics.median(results["bare"])
        print(f"held / bare: {ratio:.3f}")
    finally:
        process.kill()
        process.wait()


if __name__ == "__main__":
    main()
