"""A misbehaving HTTP/1.1 server on raw sockets, one fault per path: ``GET /<fault>``.

Run as a process (``python fault_server.py [--cert CERT --key KEY]``); it prints its port on the first line of
stdout and serves until killed. Each connection serves one request, then closes. Every fault is bounded in time
(:data:`MAX_SECONDS`) and size, so a broken client test can never wedge it.

Faults: ``ok``, ``json``, ``closed_before_response``, ``closed_mid_headers``, ``closed_mid_body``, ``garbage``,
``trickled_headers``, ``trickled_body``, ``late_trickled_body``, ``slow_headers`` (``?after=`` seconds, then a
normal answer), ``huge_headers``,
``huge_body``, ``endless_chunked``, ``never_answers``, ``never_reads_upload``, ``wrong_content_type``,
``bad_json``, ``bad_utf8``, ``deep_json``, ``redirect_loop``, ``cross_origin_redirect`` (``?to=`` a URL),
``to_plain_http``, ``echo_auth`` (the Authorization header it got, as JSON).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import socketserver
import ssl
import sys
import time
from urllib.parse import parse_qs, urlsplit

MAX_SECONDS = 10.0
TRICKLE = 0.1


def _head(status: str, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items()), "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1")


def _answer(body: bytes, content_type: str = "application/json", status: str = "200 OK") -> bytes:
    return _head(status, {"Content-Type": content_type, "Content-Length": str(len(body))}) + body


class Handler(socketserver.BaseRequestHandler):
    """Read one request head, then play the fault its path names."""

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(MAX_SECONDS)
        data = b""
        try:
            while b"\r\n\r\n" not in data and len(data) < 65536:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                data += chunk
        except OSError:
            return
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        _method, target, _version = ([*lines[0].split(" "), "", ""])[:3]
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        url = urlsplit(target)
        fault = url.path.strip("/") or "ok"
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if fault != "never_reads_upload":
            length = int(headers.get("content-length", "0") or 0)
            try:
                while len(rest) < length:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    rest += chunk
            except OSError:
                return
        with contextlib.suppress(OSError):
            self.play(sock, fault, query, headers)

    def play(self, sock: socket.socket, fault: str, query: dict[str, str], headers: dict[str, str]) -> None:
        end = time.monotonic() + MAX_SECONDS
        if fault in {"ok", "json"}:
            sock.sendall(_answer(b'{"ok": true}'))
        elif fault == "echo_auth":
            sock.sendall(_answer(json.dumps({"authorization": headers.get("authorization")}).encode()))
        elif fault == "closed_before_response":
            pass
        elif fault == "closed_mid_headers":
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: appl")
        elif fault == "closed_mid_body":
            sock.sendall(_head("200 OK", {"Content-Type": "application/json", "Content-Length": "100"}) + b'{"a": ')
        elif fault == "garbage":
            sock.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\x00\xff\xfe garbage \r\n\r\n")
        elif fault == "trickled_headers":
            sock.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            while time.monotonic() < end:
                sock.sendall(b"a")
                time.sleep(TRICKLE)
        elif fault in {"trickled_body", "late_trickled_body"}:
            if fault == "late_trickled_body":  # the headers late, then the body a byte at a time
                time.sleep(min(float(query.get("after", "0.6")), MAX_SECONDS))
            sock.sendall(_head("200 OK", {"Content-Type": "application/json", "Content-Length": "1000"}))
            while time.monotonic() < end:
                sock.sendall(b" ")
                time.sleep(TRICKLE)
        elif fault == "slow_headers":
            time.sleep(min(float(query.get("after", "1")), MAX_SECONDS))
            sock.sendall(_answer(b'{"ok": true}'))
        elif fault == "huge_headers":
            sock.sendall(_head("200 OK", {"X-Huge": "h" * 512 * 1024, "Content-Length": "0"}))
        elif fault == "huge_body":
            sock.sendall(_head("200 OK", {"Content-Type": "application/json", "Content-Length": str(1 << 30)}))
            block = b"x" * 65536
            while time.monotonic() < end:
                sock.sendall(block)
        elif fault == "endless_chunked":
            sock.sendall(_head("200 OK", {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}))
            block = b"%x\r\n%s\r\n" % (65536, b"y" * 65536)
            while time.monotonic() < end:
                sock.sendall(block)
        elif fault in {"never_answers", "never_reads_upload"}:
            while time.monotonic() < end and not _closed(sock):
                time.sleep(0.05)
        elif fault == "wrong_content_type":
            sock.sendall(_answer(b"<html>maintenance</html>", "text/html"))
        elif fault == "bad_json":
            sock.sendall(_answer(b'{"a": [1, 2,'))
        elif fault == "bad_utf8":
            sock.sendall(_answer(b'{"a": "\xff\xfe"}'))
        elif fault == "deep_json":
            sock.sendall(_answer(b"[" * 200_000 + b"]" * 200_000))
        elif fault == "redirect_loop":
            sock.sendall(_head("302 Found", {"Location": "/redirect_loop", "Content-Length": "0"}))
        elif fault == "cross_origin_redirect":
            sock.sendall(_head("302 Found", {"Location": query.get("to", "/"), "Content-Length": "0"}))
        elif fault == "to_plain_http":
            sock.sendall(_head("302 Found", {"Location": "http://partner.example/next", "Content-Length": "0"}))
        else:
            sock.sendall(_answer(b"unknown fault", "text/plain", "404 Not Found"))


def _closed(sock: socket.socket) -> bool:
    """Whether the peer closed (without reading what it sent)."""
    try:
        sock.setblocking(False)
        try:
            return sock.recv(1, socket.MSG_PEEK) == b""
        finally:
            sock.setblocking(True)
            sock.settimeout(MAX_SECONDS)
    except (BlockingIOError, ssl.SSLWantReadError):
        return False
    except OSError:
        return True


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512

    def __init__(self, context: ssl.SSLContext | None) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.context = context

    def get_request(self) -> tuple[socket.socket, object]:
        sock, address = super().get_request()
        if self.context is not None:
            sock.settimeout(MAX_SECONDS)
            sock = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def process_request_thread(self, request: object, client_address: object) -> None:
        if isinstance(request, ssl.SSLSocket):
            try:
                request.do_handshake()
            except (OSError, ssl.SSLError):
                self.shutdown_request(request)
                return
        super().process_request_thread(request, client_address)  # type: ignore[misc]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert")
    parser.add_argument("--key")
    args = parser.parse_args()
    context = None
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
    server = Server(context)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
