"""A SOCKS5 proxy on 127.0.0.1 for the tests (RFC 1928, with RFC 1929's username and password): it records what
each client asked for, connects only to loopback targets, and relays the bytes both ways."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["SocksRequest", "socks_server"]

#: The most connections one server accepts, and the longest a relay waits for a byte (seconds): bounded.
MAX_CONNECTIONS = 50
IDLE_SECONDS = 10.0
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass
class SocksRequest:
    """One client's greeting, credentials and CONNECT target, as the proxy read them."""

    methods: bytes = b""
    credentials: tuple[str, str] | None = None
    target: tuple[str, int] | None = None


@dataclass
class _Proxy:
    credentials: tuple[str, str] | None
    seen: list[SocksRequest] = field(default_factory=list)


def _exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the client closed mid-handshake")
        data += chunk
    return data


def _handshake(conn: socket.socket, proxy: _Proxy, request: SocksRequest) -> socket.socket | None:
    version, count = _exactly(conn, 2)
    request.methods = _exactly(conn, count)
    wanted = 0x02 if proxy.credentials is not None else 0x00
    if version != 5 or wanted not in request.methods:
        conn.sendall(b"\x05\xff")
        return None
    conn.sendall(bytes([5, wanted]))
    if wanted == 0x02:
        _, size = _exactly(conn, 2)
        user = _exactly(conn, size).decode()
        (size,) = _exactly(conn, 1)
        request.credentials = (user, _exactly(conn, size).decode())
        accepted = request.credentials == proxy.credentials
        conn.sendall(b"\x01\x00" if accepted else b"\x01\x01")
        if not accepted:
            return None
    _, command, _, address_type = _exactly(conn, 4)  # 1 IPv4, 3 a domain name, 4 IPv6
    if address_type == 1:
        host = socket.inet_ntop(socket.AF_INET, _exactly(conn, 4))
    elif address_type == 4:
        host = socket.inet_ntop(socket.AF_INET6, _exactly(conn, 16))
    else:
        host = _exactly(conn, _exactly(conn, 1)[0]).decode()
    (port,) = struct.unpack("!H", _exactly(conn, 2))
    request.target = (host, port)
    if command != 1 or host not in _LOOPBACK:  # CONNECT to loopback only: the tests never leave the machine
        conn.sendall(b"\x05\x02\x00\x01" + bytes(6))
        return None
    try:
        upstream = socket.create_connection(("127.0.0.1" if host == "localhost" else host, port), timeout=5)
    except OSError:
        conn.sendall(b"\x05\x05\x00\x01" + bytes(6))
        return None
    conn.sendall(b"\x05\x00\x00\x01" + bytes(6))
    return upstream


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


def _serve_one(conn: socket.socket, proxy: _Proxy) -> None:
    request = SocksRequest()
    proxy.seen.append(request)
    with conn:
        conn.settimeout(IDLE_SECONDS)
        try:
            upstream = _handshake(conn, proxy, request)
        except OSError:  # ConnectionError included
            return
        if upstream is None:
            return
        with upstream:
            upstream.settimeout(IDLE_SECONDS)
            back = threading.Thread(target=_pipe, args=(upstream, conn), daemon=True)
            back.start()
            _pipe(conn, upstream)
            back.join(timeout=IDLE_SECONDS)


@contextlib.contextmanager
def socks_server(credentials: tuple[str, str] | None = None) -> Iterator[tuple[str, list[SocksRequest]]]:
    """Serve SOCKS5 on a free loopback port; yields (``host:port``, the requests seen so far). With
    ``credentials``, a client must log in with them (RFC 1929); without, it must offer "no authentication"."""
    proxy = _Proxy(credentials)
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def accept() -> None:
        for _ in range(MAX_CONNECTIONS):
            while not stop.is_set():
                try:
                    conn, _ = server.accept()
                    break
                except TimeoutError:
                    continue
                except OSError:
                    return
            else:
                return
            threading.Thread(target=_serve_one, args=(conn, proxy), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        host, port = server.getsockname()[:2]
        yield f"{host}:{port}", proxy.seen
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()
