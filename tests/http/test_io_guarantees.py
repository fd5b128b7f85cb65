"""Two behaviours of the HTTP clients that hand mutations showed untested (issue 29), each against a real part.

- A write the partner may have acted on is never sent again without a key: a loopback server reads the whole
  POST and then resets (or closes) the connection without answering, or resets it while the body is still being
  written. The server must see it once; the same POST with an idempotency key, or a PUT, is retried.
- A credential echoed across the point where the error's body snippet is cut: the partner echoes the bearer
  token at every offset around the cut, and the snippet is exactly the masked body cut there, so no prefix of the
  token survives.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from asgi_server import serve_in_thread
from scripted_upstream import Connect
from test_client_guarantees import config

from integration_kit import ManualClock
from integration_kit.errors import ClientError, ConnectionLost, RetriesExhausted
from integration_kit.http.auth import BearerAuth
from integration_kit.http.exchange import SNIPPET_CHARS
from integration_kit.http.redact import MASK
from integration_kit.policies.config import RetryPolicy

#: The longest the resetting server lives, and the most connections it serves: a broken test cannot wedge it.
SERVER_SECONDS = 30.0
SERVER_CONNECTIONS = 50


# -- a partner that acts on the request, then drops the connection -------------------------------------------------


class DroppingServer:
    """A raw HTTP/1.1 server on 127.0.0.1 that never answers: per connection it reads the request, records it,
    then resets the connection (``reset``: RST, as a crashed proxy does), closes it (``close``: FIN), or resets it
    after the head only, while the client is still writing the body (``reset_mid_body``). ``answer_early`` is the
    exception that does answer: ``413`` after the head, then a lingering close (as nginx closes: it stops
    writing, reads and drops what the client still sends, then closes)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.seen: list[str] = []  # "METHOD path" per request that reached the server
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"dropping-{mode}", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def __enter__(self) -> DroppingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()

    def _serve(self) -> None:
        end = time.monotonic() + SERVER_SECONDS
        served = 0
        while not self._stop.is_set() and time.monotonic() < end and served < SERVER_CONNECTIONS:
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            served += 1
            with conn, contextlib.suppress(OSError):
                conn.settimeout(5.0)
                self._drop(conn)

    def _drop(self, conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data and len(data) < 65536:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path = lines[0].split(" ")[:2]
        self.seen.append(f"{method} {path}")
        if self.mode == "answer_early":
            conn.sendall(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big!")
            conn.shutdown(socket.SHUT_WR)
            end = time.monotonic() + 2.0
            while time.monotonic() < end and conn.recv(65536):
                pass
            return
        if self.mode != "reset_mid_body":
            length = next(
                (int(v) for k, _, v in (x.partition(":") for x in lines[1:]) if k.lower() == "content-length"), 0
            )
            while len(body) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                body += chunk
        if self.mode != "close":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close sends RST


MODES = ["reset", "close", "reset_mid_body"]


def _body(mode: str) -> bytes:
    # Mid-body: far more than the socket buffers hold, so the client is still writing when the reset arrives.
    return b"x" * (32 * 1024 * 1024 if mode == "reset_mid_body" else 64)


@pytest.mark.parametrize("mode", MODES)
def test_a_post_without_a_key_the_partner_may_have_acted_on_is_sent_once(connect: Connect, mode: str) -> None:
    with DroppingServer(mode) as server:
        client = connect(config(server.base_url), clock=ManualClock())
        with pytest.raises(ConnectionLost):
            client.post("/payments", content=_body(mode))
        assert server.seen == ["POST /payments"]


def test_an_answer_sent_before_the_body_is_read_is_the_outcome(connect: Connect) -> None:
    """The partner's early answer is what the call ends with, not a lost connection: the body is still being
    written when it comes (32 MiB), and the client reads it after its write fails."""
    with DroppingServer("answer_early") as server:
        client = connect(config(server.base_url), clock=ManualClock())
        with pytest.raises(ClientError) as caught:
            client.post("/uploads", content=_body("reset_mid_body"))
        assert (caught.value.status, caught.value.body_snippet) == (413, "too big!")
        assert server.seen == ["POST /uploads"]


@pytest.mark.parametrize("mode", MODES)
def test_the_same_write_with_a_key_or_an_idempotent_method_is_retried(connect: Connect, mode: str) -> None:
    """The control: the server above does see a retry when one is safe, so the test above can tell."""
    with DroppingServer(mode) as server:
        client = connect(config(server.base_url), clock=ManualClock())
        with pytest.raises(RetriesExhausted) as caught:
            client.post("/payments", content=_body(mode), idempotency_key="pay-1")
        assert isinstance(caught.value.__cause__, ConnectionLost)
        with pytest.raises(RetriesExhausted):
            client.put("/payments/1", content=_body(mode))
        assert server.seen == ["POST /payments"] * 3 + ["PUT /payments/1"] * 3


# -- a partner that echoes the credential across the snippet's cut -------------------------------------------------

TOKEN = "tok_9f8e7d6c5b4a39281706"


class EchoAtOffset:
    """An ASGI app answering 400 with ``offset`` dots, then the bearer token it was sent, then ``!`` padding."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = dict(scope["headers"])
        token = headers.get(b"authorization", b"").decode().removeprefix("Bearer ")
        offset = int(scope["query_string"].decode().removeprefix("offset="))
        body = ("." * offset + token + "!" * 40).encode()
        await send({"type": "http.response.start", "status": 400, "headers": [(b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    with serve_in_thread(EchoAtOffset()) as url:
        yield url


def test_a_token_echoed_across_the_snippet_cut_leaves_no_prefix(
    connect: Connect, echo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARTNER_TOKEN", TOKEN)
    client = connect(config(echo_url, retry=RetryPolicy.disabled(), auth=BearerAuth(env="PARTNER_TOKEN")))
    for offset in range(SNIPPET_CHARS - len(TOKEN) - 2, SNIPPET_CHARS + 2):  # every cut through the token, and past
        with pytest.raises(ClientError) as caught:
            client.get("/echo", params={"offset": offset})
        snippet = caught.value.body_snippet
        assert snippet == ("." * offset + MASK + "!" * 40)[:SNIPPET_CHARS], offset
        assert TOKEN[:4] not in str(caught.value)
        assert TOKEN[:4] not in repr(caught.value)
