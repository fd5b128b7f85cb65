"""The sync deadline backend (:mod:`integration_kit.http.backend`) over real loopback sockets: each connect, TLS
handshake, read and write gets ``min(its timeout, time left)`` as a plain float, raises the timeout of its phase
(before touching the socket) once no time is left, passes a plain timeout and every other argument through
unchanged, and writes a large buffer in pieces of ``WRITE_PIECE`` bytes. ``held`` itself is checked on a stub
monotonic clock at the edges (no time left, exactly the timeout left)."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from types import SimpleNamespace

import httpcore
import pytest
from backend_support import SpyBackend, echo_server, tls_contexts

from integration_kit.http import backend
from integration_kit.http.backend import WRITE_PIECE, DeadlineBackend, HeldTimeout, held

FAR = 1000.0  # seconds of deadline left: the phase timeout is the shorter


def _far(timeout: float = 5.0) -> HeldTimeout:
    return HeldTimeout(timeout, time.monotonic() + FAR)


def _gone(timeout: float = 5.0) -> HeldTimeout:
    return HeldTimeout(timeout, time.monotonic() - 1.0)


def _read_all(stream: httpcore.NetworkStream, size: int) -> bytes:
    data = b""
    for _ in range(1000):  # bounded
        if len(data) >= size:
            break
        data += stream.read(65536, 5.0)
    return data


# -- held, on a stub clock ----------------------------------------------------------------------------------------


@pytest.fixture
def at(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    clock = SimpleNamespace(now=100.0)
    monkeypatch.setattr(backend, "time", SimpleNamespace(monotonic=lambda: clock.now))
    return clock


def test_a_plain_timeout_or_none_passes_through_as_it_is() -> None:
    plain = 2.5
    assert held(httpcore.ReadTimeout, plain) is plain
    assert held(httpcore.ReadTimeout, None) is None


def test_held_gives_the_time_left_when_it_is_shorter(at: SimpleNamespace) -> None:
    cut = held(httpcore.ReadTimeout, HeldTimeout(5.0, 103.0))
    assert cut == 3.0
    assert type(cut) is float


def test_held_gives_the_timeout_as_a_plain_float_when_it_is_shorter(at: SimpleNamespace) -> None:
    for timeout in (2.0, 3.0):  # shorter than, and exactly, the 3 s left
        cut = held(httpcore.ReadTimeout, HeldTimeout(timeout, 103.0))
        assert cut == timeout
        assert type(cut) is float


@pytest.mark.parametrize("now", [103.0, 104.0])
@pytest.mark.parametrize("phase", [httpcore.ConnectTimeout, httpcore.ReadTimeout, httpcore.WriteTimeout])
def test_no_time_left_raises_the_phase_timeout(
    at: SimpleNamespace, now: float, phase: type[httpcore.TimeoutException]
) -> None:
    at.now = now
    with pytest.raises(httpcore.TimeoutException) as caught:
        held(phase, HeldTimeout(5.0, 103.0))
    assert type(caught.value) is phase
    assert str(caught.value) == "the attempt's deadline passed before the operation could finish"


def test_time_just_left_is_given_not_refused(at: SimpleNamespace) -> None:
    at.now = 102.75
    assert held(httpcore.ReadTimeout, HeldTimeout(5.0, 103.0)) == 0.25


def test_a_held_timeout_is_the_float_it_carries() -> None:
    timeout = HeldTimeout(2.5, 7.0)
    assert timeout == 2.5
    assert timeout.expires == 7.0
    assert not hasattr(timeout, "__dict__")


# -- the backend over loopback ------------------------------------------------------------------------------------


def test_connect_passes_every_argument_and_the_clipped_timeout() -> None:
    spy = SpyBackend()
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    with echo_server() as (host, port):
        stream = DeadlineBackend(spy).connect_tcp(host, port, _far(), "127.0.0.1", options)
        try:
            assert spy.calls[0] == ("connect_tcp", host, port, 5.0, "127.0.0.1", options)
            assert type(spy.calls[0][3]) is float
            assert stream.get_extra_info("server_addr") == (host, port)
            assert spy.calls[-1] == ("get_extra_info", "server_addr")
        finally:
            stream.close()
    assert spy.calls[-1] == ("close",)


def test_a_plain_timeout_reaches_the_socket_unchanged() -> None:
    spy = SpyBackend()
    with echo_server() as (host, port):
        stream = DeadlineBackend(spy).connect_tcp(host, port, 2.5)
        try:
            stream.write(b"ping", 1.5)
            assert stream.read(4, 3.5) == b"ping"
        finally:
            stream.close()
    assert spy.calls[:3] == [
        ("connect_tcp", host, port, 2.5, None, None),
        ("write", b"ping", 1.5),
        ("read", 4, 3.5),
    ]


def test_a_large_write_goes_out_in_pieces_each_held() -> None:
    spy = SpyBackend()
    payload = bytes(range(256)) * (2 * WRITE_PIECE // 256) + b"!"
    with echo_server() as (host, port):
        stream = DeadlineBackend(spy).connect_tcp(host, port, _far())
        try:
            stream.write(payload, _far(4.0))
            assert _read_all(stream, len(payload)) == payload
        finally:
            stream.close()
    writes = [c for c in spy.calls if c[0] == "write"]
    assert [len(c[1]) for c in writes] == [WRITE_PIECE, WRITE_PIECE, 1]
    assert b"".join(c[1] for c in writes) == payload
    assert all(type(c[1]) is bytes and c[2] == 4.0 and type(c[2]) is float for c in writes)


@pytest.mark.parametrize("size", [1, WRITE_PIECE])
def test_a_write_of_at_most_one_piece_is_one_call(size: int) -> None:
    spy = SpyBackend()
    payload = b"x" * size
    with echo_server() as (host, port):
        stream = DeadlineBackend(spy).connect_tcp(host, port, _far())
        try:
            stream.write(payload, _far(4.0))
            assert _read_all(stream, size) == payload
        finally:
            stream.close()
    writes = [c for c in spy.calls if c[0] == "write"]
    assert writes == [("write", payload, 4.0)]
    assert type(writes[0][2]) is float


def test_a_read_gets_its_size_and_the_clipped_timeout() -> None:
    spy = SpyBackend()
    with echo_server() as (host, port):
        stream = DeadlineBackend(spy).connect_tcp(host, port, _far())
        try:
            stream.write(b"hello", 5.0)
            assert stream.read(5, _far(3.0)) == b"hello"
        finally:
            stream.close()
    assert ("read", 5, 3.0) in spy.calls
    assert all(type(c[2]) is float for c in spy.calls if c[0] == "read")


def test_no_time_left_raises_each_phase_before_the_socket_is_touched() -> None:
    spy = SpyBackend()
    with echo_server() as (host, port):
        with pytest.raises(httpcore.ConnectTimeout):
            DeadlineBackend(spy).connect_tcp(host, port, _gone())
        assert spy.calls == []
        stream = DeadlineBackend(spy).connect_tcp(host, port, 5.0)
        try:
            with pytest.raises(httpcore.WriteTimeout):
                stream.write(b"x", _gone())
            with pytest.raises(httpcore.WriteTimeout):
                stream.write(b"x" * (WRITE_PIECE + 1), _gone())
            with pytest.raises(httpcore.ReadTimeout):
                stream.read(1, _gone())
            with pytest.raises(httpcore.ConnectTimeout):
                stream.start_tls(tls_contexts()[1], "localhost", _gone())
        finally:
            stream.close()
    assert [c[0] for c in spy.calls] == ["connect_tcp", "close"]


def test_a_unix_socket_is_connected_with_its_path_options_and_clipped_timeout(tmp_path: Path) -> None:
    spy = SpyBackend()
    path = tmp_path / "echo.sock"
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    with echo_server(socket.AF_UNIX, path):
        stream = DeadlineBackend(spy).connect_unix_socket(str(path), _far(), options)
        try:
            stream.write(b"unix", _far())
            assert stream.read(4, _far()) == b"unix"
        finally:
            stream.close()
    assert spy.calls[0] == ("connect_unix_socket", str(path), 5.0, options)
    assert type(spy.calls[0][2]) is float
    assert spy.calls[1] == ("write", b"unix", 5.0)
    with pytest.raises(httpcore.ConnectTimeout):
        DeadlineBackend(spy).connect_unix_socket(str(path), _gone())


def test_start_tls_passes_its_context_and_name_and_the_upgraded_stream_stays_held() -> None:
    spy = SpyBackend()
    server_context, client_context = tls_contexts()
    with echo_server(tls=server_context) as (host, port):
        stream = DeadlineBackend(spy).connect_tcp(host, port, _far())
        try:
            secure = stream.start_tls(client_context, "localhost", _far(4.0))
            secure.write(b"secret", _far())
            assert secure.read(6, _far()) == b"secret"
            with pytest.raises(httpcore.ReadTimeout):
                secure.read(1, _gone())
            assert secure.get_extra_info("ssl_object") is not None
            secure.close()
        finally:
            stream.close()
    assert ("start_tls", client_context, "localhost", 4.0) in spy.calls
    assert ("write", b"secret", 5.0) in spy.calls


def test_the_default_inner_backend_is_httpcore_s_sync_backend() -> None:
    with echo_server() as (host, port):
        stream = DeadlineBackend().connect_tcp(host, port, _far())
        try:
            stream.write(b"own", _far())
            assert stream.read(3, _far()) == b"own"
        finally:
            stream.close()


def test_sleep_is_passed_on() -> None:
    spy = SpyBackend()
    DeadlineBackend(spy).sleep(0.0)
    assert spy.calls == [("sleep", 0.0)]
