"""The async deadline backend (:class:`~integration_kit.http.backend.AsyncDeadlineBackend`) over real loopback
sockets, on asyncio and trio: as the sync one, each connect, TLS handshake, read and write gets the clipped timeout
as a plain float, raises its phase's timeout before touching the socket once no time is left, passes every other
argument through, and writes a large buffer in pieces of ``WRITE_PIECE`` bytes."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpcore
import pytest
from backend_support import AsyncSpyBackend, echo_server, tls_contexts

from integration_kit.http.backend import WRITE_PIECE, AsyncDeadlineBackend, HeldTimeout

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _far(timeout: float = 5.0) -> HeldTimeout:
    return HeldTimeout(timeout, time.monotonic() + 1000.0)


def _gone(timeout: float = 5.0) -> HeldTimeout:
    return HeldTimeout(timeout, time.monotonic() - 1.0)


async def _read_all(stream: httpcore.AsyncNetworkStream, size: int) -> bytes:
    data = b""
    for _ in range(1000):  # bounded
        if len(data) >= size:
            break
        data += await stream.read(65536, 5.0)
    return data


async def test_connect_passes_every_argument_and_the_clipped_timeout() -> None:
    spy = AsyncSpyBackend()
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    with echo_server() as (host, port):
        stream = await AsyncDeadlineBackend(spy).connect_tcp(host, port, _far(), "127.0.0.1", options)
        try:
            assert spy.calls[0] == ("connect_tcp", host, port, 5.0, "127.0.0.1", options)
            assert type(spy.calls[0][3]) is float
            assert stream.get_extra_info("server_addr") == (host, port)
            assert spy.calls[-1] == ("get_extra_info", "server_addr")
        finally:
            await stream.aclose()
    assert spy.calls[-1] == ("close",)


async def test_a_plain_timeout_reaches_the_socket_unchanged() -> None:
    spy = AsyncSpyBackend()
    with echo_server() as (host, port):
        stream = await AsyncDeadlineBackend(spy).connect_tcp(host, port, 2.5)
        try:
            await stream.write(b"ping", 1.5)
            assert await stream.read(4, 3.5) == b"ping"
        finally:
            await stream.aclose()
    assert spy.calls[:3] == [("connect_tcp", host, port, 2.5, None, None), ("write", b"ping", 1.5), ("read", 4, 3.5)]


async def test_a_large_write_goes_out_in_pieces_each_held() -> None:
    spy = AsyncSpyBackend()
    payload = bytes(range(256)) * (2 * WRITE_PIECE // 256) + b"!"
    with echo_server() as (host, port):
        stream = await AsyncDeadlineBackend(spy).connect_tcp(host, port, _far())
        try:
            await stream.write(payload, _far(4.0))
            assert await _read_all(stream, len(payload)) == payload
        finally:
            await stream.aclose()
    writes = [c for c in spy.calls if c[0] == "write"]
    assert [len(c[1]) for c in writes] == [WRITE_PIECE, WRITE_PIECE, 1]
    assert b"".join(c[1] for c in writes) == payload
    assert all(c[2] == 4.0 and type(c[2]) is float for c in writes)


@pytest.mark.parametrize("size", [1, WRITE_PIECE])
async def test_a_write_of_at_most_one_piece_is_one_call(size: int) -> None:
    spy = AsyncSpyBackend()
    payload = b"x" * size
    with echo_server() as (host, port):
        stream = await AsyncDeadlineBackend(spy).connect_tcp(host, port, _far())
        try:
            await stream.write(payload, _far(4.0))
            assert await _read_all(stream, size) == payload
        finally:
            await stream.aclose()
    writes = [c for c in spy.calls if c[0] == "write"]
    assert writes == [("write", payload, 4.0)]
    assert type(writes[0][2]) is float


async def test_a_read_gets_its_size_and_the_clipped_timeout() -> None:
    spy = AsyncSpyBackend()
    with echo_server() as (host, port):
        stream = await AsyncDeadlineBackend(spy).connect_tcp(host, port, _far())
        try:
            await stream.write(b"hello", 5.0)
            assert await stream.read(5, _far(3.0)) == b"hello"
        finally:
            await stream.aclose()
    assert ("read", 5, 3.0) in spy.calls
    assert all(type(c[2]) is float for c in spy.calls if c[0] == "read")


async def test_no_time_left_raises_each_phase_before_the_socket_is_touched() -> None:
    spy = AsyncSpyBackend()
    with echo_server() as (host, port):
        with pytest.raises(httpcore.ConnectTimeout):
            await AsyncDeadlineBackend(spy).connect_tcp(host, port, _gone())
        assert spy.calls == []
        stream = await AsyncDeadlineBackend(spy).connect_tcp(host, port, 5.0)
        try:
            with pytest.raises(httpcore.WriteTimeout):
                await stream.write(b"x", _gone())
            with pytest.raises(httpcore.WriteTimeout):
                await stream.write(b"x" * (WRITE_PIECE + 1), _gone())
            with pytest.raises(httpcore.ReadTimeout):
                await stream.read(1, _gone())
            with pytest.raises(httpcore.ConnectTimeout):
                await stream.start_tls(tls_contexts()[1], "localhost", _gone())
        finally:
            await stream.aclose()
    assert [c[0] for c in spy.calls] == ["connect_tcp", "close"]


async def test_a_unix_socket_is_connected_with_its_path_options_and_clipped_timeout(tmp_path: Path) -> None:
    spy = AsyncSpyBackend()
    path = tmp_path / "echo.sock"
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    with echo_server(socket.AF_UNIX, path):
        stream = await AsyncDeadlineBackend(spy).connect_unix_socket(str(path), _far(), options)
        try:
            await stream.write(b"unix", _far())
            assert await stream.read(4, _far()) == b"unix"
        finally:
            await stream.aclose()
    assert spy.calls[0] == ("connect_unix_socket", str(path), 5.0, options)
    assert type(spy.calls[0][2]) is float
    assert spy.calls[1] == ("write", b"unix", 5.0)
    with pytest.raises(httpcore.ConnectTimeout):
        await AsyncDeadlineBackend(spy).connect_unix_socket(str(path), _gone())


async def test_start_tls_passes_its_context_and_name_and_the_upgraded_stream_stays_held() -> None:
    spy = AsyncSpyBackend()
    server_context, client_context = tls_contexts()
    with echo_server(tls=server_context) as (host, port):
        stream = await AsyncDeadlineBackend(spy).connect_tcp(host, port, _far())
        secure = await stream.start_tls(client_context, "localhost", _far(4.0))
        try:
            await secure.write(b"secret", _far())
            assert await secure.read(6, _far()) == b"secret"
            with pytest.raises(httpcore.ReadTimeout):
                await secure.read(1, _gone())
            assert secure.get_extra_info("ssl_object") is not None
        finally:
            await secure.aclose()
    assert ("start_tls", client_context, "localhost", 4.0) in spy.calls
    assert ("write", b"secret", 5.0) in spy.calls


async def test_the_default_inner_backend_is_httpcore_s_anyio_backend() -> None:
    with echo_server() as (host, port):
        stream = await AsyncDeadlineBackend().connect_tcp(host, port, _far())
        try:
            await stream.write(b"own", _far())
            assert await stream.read(3, _far()) == b"own"
        finally:
            await stream.aclose()


async def test_sleep_is_passed_on() -> None:
    spy = AsyncSpyBackend()
    await AsyncDeadlineBackend(spy).sleep(0.0)
    assert spy.calls == [("sleep", 0.0)]
