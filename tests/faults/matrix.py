"""The fault matrix: each fault of :mod:`fault_server` against the sync and the async client.

Each case gives the fault, how it is called and what must come of it: the error class (``None``: success), the
number of attempts (from the events), and the time against the deadline. :func:`run_case` measures one cell:
the error, the attempts, the time, and the leaked file descriptors and busy pool connections.

Run as a script for the table (``python tests/faults/matrix.py``); ``tests/faults/test_matrix.py`` asserts it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme

from integration_kit import AsyncResilientClient, ClientConfig, Recorder, ResilientClient
from integration_kit.errors import (
    CertificateError,
    ConnectionLost,
    DeadlineExceeded,
    GaveUp,
    IntegrationError,
    InvalidResponse,
    ReadTimeout,
    ResponseTooLarge,
    RetriesExhausted,
    UnsafeRequest,
    WriteTimeout,
)
from integration_kit.events import AttemptStarted, CallFinished
from integration_kit.policies.config import Limits, RetryPolicy, Timeouts

HERE = Path(__file__).parent

#: The deadline of every call in the matrix (seconds).
DEADLINE = 1.0


@dataclass(frozen=True)
class Case:
    """One fault and what must come of it."""

    fault: str
    error: type[IntegrationError] | None
    attempts: int | tuple[int, int]
    method: str = "GET"
    json: bool = False
    tls: str | None = None  # "untrusted": a certificate the client does not trust; "trusted": one it does
    options: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    cause: type[IntegrationError] | None = None  # the last_error a GaveUp must carry
    query: str = ""


CASES: tuple[Case, ...] = (
    Case("ok", None, 1),
    Case("closed_before_response", RetriesExhausted, 3, cause=ConnectionLost),
    Case("closed_mid_headers", RetriesExhausted, 3, cause=ConnectionLost),
    Case("closed_mid_body", RetriesExhausted, 3, cause=ConnectionLost),
    Case("garbage", RetriesExhausted, 3, cause=ConnectionLost),
    Case("trickled_headers", DeadlineExceeded, 1, cause=ReadTimeout),
    Case("trickled_body", DeadlineExceeded, 1, cause=ReadTimeout),
    Case("late_trickled_body", DeadlineExceeded, 1, cause=ReadTimeout, config={"timeouts": Timeouts(read=5.0)}),
    Case("slow_headers", DeadlineExceeded, 1, query="after=3", config={"timeouts": Timeouts(read=5.0)}),
    Case("huge_headers", RetriesExhausted, 3, cause=ConnectionLost),
    Case("huge_body", ResponseTooLarge, 1),
    Case("endless_chunked", ResponseTooLarge, 1),
    Case("never_answers", GaveUp, (2, 3)),
    Case(
        "never_reads_upload",
        DeadlineExceeded,
        1,
        cause=WriteTimeout,
        method="PUT",
        options={"content": b"u" * (32 << 20)},
        config={"timeouts": Timeouts(connect=1.0, read=5.0, write=5.0, pool=1.0)},
    ),
    Case("wrong_content_type", InvalidResponse, 1, json=True),
    Case("bad_json", InvalidResponse, 1, json=True),
    Case("bad_utf8", InvalidResponse, 1, json=True),
    Case("deep_json", InvalidResponse, 1, json=True),
    Case("redirect_loop", InvalidResponse, 1, config={"follow_redirects": True}),
    Case("to_plain_http", UnsafeRequest, 1, tls="trusted", config={"follow_redirects": True}),
    Case("ok", CertificateError, 1, tls="untrusted"),
)


@dataclass
class Cell:
    """What one case did in one mode."""

    case: Case
    mode: str
    error: BaseException | None
    attempts: int
    elapsed: float
    fd_delta: int
    busy: int
    finished: int

    @property
    def error_name(self) -> str:
        return "ok" if self.error is None else type(self.error).__name__


class Servers:
    """The fault server as a process, plain and behind TLS (a trusted and an untrusted certificate)."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory()
        root = Path(self._dir.name)
        self.ca = trustme.CA()
        self.ca_file = root / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        trusted = self.ca.issue_cert("127.0.0.1")
        stranger = trustme.CA().issue_cert("127.0.0.1")  # signed by a CA the client was never told about
        self.procs: list[subprocess.Popen[str]] = []
        self.plain = self._start([])
        self.trusted = self._start(self._cert_args(root, "trusted", trusted))
        self.untrusted = self._start(self._cert_args(root, "untrusted", stranger))

    @staticmethod
    def _cert_args(root: Path, name: str, cert: trustme.LeafCert) -> list[str]:
        chain, key = root / f"{name}.pem", root / f"{name}.key"
        cert.private_key_and_cert_chain_pem.write_to_path(str(chain))
        cert.private_key_pem.write_to_path(str(key))
        return ["--cert", str(chain), "--key", str(key)]

    def _start(self, args: list[str]) -> int:
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "fault_server.py"), *args], stdout=subprocess.PIPE, text=True
        )
        self.procs.append(proc)
        assert proc.stdout is not None
        return int(proc.stdout.readline())

    def base_url(self, case: Case) -> str:
        if case.tls == "trusted":
            return f"https://127.0.0.1:{self.trusted}"
        if case.tls == "untrusted":
            return f"https://127.0.0.1:{self.untrusted}"
        return f"http://127.0.0.1:{self.plain}"

    def close(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        self._dir.cleanup()


@contextmanager
def servers() -> Iterator[Servers]:
    running = Servers()
    try:
        yield running
    finally:
        running.close()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def config_for(case: Case, servers: Servers, **overrides: Any) -> ClientConfig:
    values: dict[str, Any] = {
        "name": "faults",
        "base_url": servers.base_url(case),
        "deadline": DEADLINE,
        "retry": RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02),
        "timeouts": Timeouts(connect=1.0, read=0.4, write=1.0, pool=1.0),
        "max_response_bytes": 1 << 20,
        "breaker": None,
        "budget": None,
        "verify": str(servers.ca_file) if case.tls else True,
        **case.config,
        **overrides,
    }
    return ClientConfig(**values)


def _busy(client: ResilientClient | AsyncResilientClient) -> int:
    """Connections of the client's pool that are not idle or closed (a leak if a call has ended)."""
    pool = client._http._transport._pool  # type: ignore[union-attr]
    return sum(1 for c in pool.connections if not (c.is_idle() or c.is_closed()))


def _path(case: Case) -> str:
    return f"/{case.fault}" + (f"?{case.query}" if case.query else "")


def run_case(case: Case, mode: str, servers: Servers) -> Cell:
    """Run ``case`` once with the sync (``mode="sync"``) or the async client (``"async"``) and measure it."""
    recorder = Recorder()
    before = open_fds()
    error: BaseException | None = None
    if mode == "sync":
        client = ResilientClient(config_for(case, servers), hooks=[recorder])
        start = time.monotonic()
        try:
            if case.json:
                client.json(_path(case), method=case.method, **case.options)
            else:
                client.request(case.method, _path(case), **case.options)
        except Exception as exc:
            error = exc
        elapsed = time.monotonic() - start
        busy = _busy(client)
        client.close()
    else:

        async def main() -> tuple[BaseException | None, float, int]:
            async with AsyncResilientClient(config_for(case, servers), hooks=[recorder]) as aclient:
                began = time.monotonic()
                try:
                    if case.json:
                        await aclient.json(_path(case), method=case.method, **case.options)
                    else:
                        await aclient.request(case.method, _path(case), **case.options)
                except Exception as exc:
                    return exc, time.monotonic() - began, _busy(aclient)
                return None, time.monotonic() - began, _busy(aclient)

        error, elapsed, busy = asyncio.run(main())
    return Cell(
        case,
        mode,
        error,
        len(recorder.of(AttemptStarted)),
        elapsed,
        open_fds() - before,
        busy,
        len(recorder.of(CallFinished)),
    )


def table(cells: list[Cell]) -> str:
    """The matrix as a Markdown table: fault x mode, error, attempts, time vs deadline, fd delta."""
    rows = [
        "| fault | mode | error | attempts | time (s) | time - deadline (s) | fd delta |",
        "|---|---|---|---|---|---|---|",
    ]
    for cell in cells:
        name = cell.case.fault + (f" ({cell.case.tls} TLS)" if cell.case.tls else "")
        rows.append(
            f"| {name} | {cell.mode} | {cell.error_name} | {cell.attempts} | {cell.elapsed:.3f} | "
            f"{cell.elapsed - DEADLINE:+.3f} | {cell.fd_delta} |"
        )
    return "\n".join(rows)


class LagProbe:
    """How late a 10 ms ticker wakes up while a crowd runs: the scheduling delay the machine (and the crowd's own
    CPU work) imposes on any timer, deadlines included. A loaded 2-core machine shows seconds of it; a deadline
    the kit ignores shows none (the loop idles while it waits)."""

    TICK = 0.01

    def __init__(self) -> None:
        self.worst = 0.0
        self.stopped = False

    def _late(self, began: float) -> None:
        self.worst = max(self.worst, time.monotonic() - began - self.TICK)

    def tick_thread(self) -> None:
        """Tick in a thread until :attr:`stopped` (the sync crowd: threads contend for the GIL and the cores)."""
        while not self.stopped:
            began = time.monotonic()
            time.sleep(self.TICK)
            self._late(began)

    async def tick_task(self) -> None:
        """Tick in the crowd's event loop until :attr:`stopped`."""
        while not self.stopped:
            began = time.monotonic()
            await asyncio.sleep(self.TICK)
            self._late(began)


def crowd(
    servers: Servers, mode: str, calls: int = 200, deadline: float = 2.0, after: float = 1.9
) -> tuple[list[Ended], float]:
    """``calls`` concurrent calls (threads or tasks) to a server that answers after ``after`` seconds.

    Returns how each call ended and the worst timer lateness seen meanwhile (:class:`LagProbe`, seconds).
    """
    recorder = Recorder()
    probe = LagProbe()
    cfg = config_for(
        Case("slow_headers", None, 1),
        servers,
        deadline=deadline,
        retry=RetryPolicy(max_attempts=1),
        timeouts=Timeouts(connect=5.0, read=5.0, write=5.0, pool=5.0),
        limits=Limits(max_concurrent=None),
    )
    params = {"after": str(after)}
    ended: list[Ended] = []
    if mode == "sync":
        lock = threading.Lock()
        with ResilientClient(cfg, hooks=[recorder]) as client:

            def one() -> None:
                began = time.monotonic()
                error: IntegrationError | None = None
                try:
                    client.get("/slow_headers", params=params)
                except IntegrationError as exc:
                    error = exc
                with lock:
                    ended.append(Ended(time.monotonic() - began, error))

            ticker = threading.Thread(target=probe.tick_thread)
            ticker.start()
            threads = [threading.Thread(target=one) for _ in range(calls)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            probe.stopped = True
            ticker.join(5)
    else:

        async def main() -> None:
            async with AsyncResilientClient(cfg, hooks=[recorder]) as client:

                async def one() -> None:
                    began = time.monotonic()
                    error: IntegrationError | None = None
                    try:
                        await client.get("/slow_headers", params=params)
                    except IntegrationError as exc:
                        error = exc
                    ended.append(Ended(time.monotonic() - began, error))

                ticker = asyncio.create_task(probe.tick_task())
                await asyncio.gather(*(one() for _ in range(calls)))
                probe.stopped = True
                await ticker

        asyncio.run(main())
    assert len(recorder.of(CallFinished)) == len(ended)
    return ended, probe.worst


@dataclass(frozen=True)
class Ended:
    """How long one call of a crowd took, and how it ended (``None``: success)."""

    elapsed: float
    error: IntegrationError | None


if __name__ == "__main__":
    with servers() as running:
        measured = [run_case(case, mode, running) for case in CASES for mode in ("sync", "async")]
        print(table(measured))
        print()
        print(
            "| 200 calls, deadline 2 s, answer at 1.9 s | successes | latest success (s) | latest end (s) "
            "| worst timer lag (s) |"
        )
        print("|---|---|---|---|---|")
        for mode in ("sync", "async"):
            crowd_ends, lag = crowd(running, mode)
            wins = [e.elapsed for e in crowd_ends if e.error is None]
            latest_win = f"{max(wins):.3f}" if wins else "-"
            print(f"| {mode} | {len(wins)} | {latest_win} | {max(e.elapsed for e in crowd_ends):.3f} | {lag:.3f} |")
