"""The fault matrix on real sockets: every fault, sync and async, gives its typed error in bounded time, no leak.

The bound asserted here is ``deadline + SLACK`` (0.5 s on a loaded 2-core CI machine); the precise figures are
in the table ``python tests/faults/matrix.py`` prints (see docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator

import pytest
from matrix import CASES, DEADLINE, Case, Servers, config_for, run_case, servers

from integration_kit import AsyncResilientClient, BearerAuth, Recorder, ResilientClient
from integration_kit.errors import DeadlineExceeded, GaveUp, IntegrationError
from integration_kit.events import AttemptFinished, CallFinished
from integration_kit.policies.config import Limits, RetryPolicy, Timeouts

#: What the test allows past the deadline on a loaded machine (seconds); the target, measured by the matrix
#: script, is 0.1 s.
SLACK = 0.5

#: The same with 200 calls in flight: httpcore's pool assigns queued requests in O(connections x requests) on
#: the event loop (about 3 s of CPU for 200 calls, profiled), which a shared 2-core machine feels.
CROWD_SLACK = 1.0


@pytest.fixture(scope="module")
def running() -> Iterator[Servers]:
    with servers() as started:
        yield started


def _id(case: Case) -> str:
    return case.fault + (f"-{case.tls}" if case.tls else "")


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("case", CASES, ids=_id)
def test_each_fault_ends_typed_in_time_without_a_leak(case: Case, mode: str, running: Servers) -> None:
    cell = run_case(case, mode, running)
    if case.error is None:
        assert cell.error is None, repr(cell.error)
    else:
        assert isinstance(cell.error, case.error), repr(cell.error)
        assert isinstance(cell.error, IntegrationError)
        if case.cause is not None:
            assert isinstance(cell.error, GaveUp)
            assert isinstance(cell.error.last_error, case.cause)
    low, high = (case.attempts, case.attempts) if isinstance(case.attempts, int) else case.attempts
    assert low <= cell.attempts <= high
    assert cell.finished == 1  # every call ends with its call-finished event
    assert cell.elapsed <= DEADLINE + SLACK
    assert cell.busy == 0
    assert cell.fd_delta <= 0


def test_a_cross_origin_redirect_is_followed_without_the_credential(
    running: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAULTS_TOKEN", "tok-cross-origin-secret")
    case = Case("cross_origin_redirect", None, 1)
    target = f"http://localhost:{running.plain}/echo_auth"
    cfg = config_for(case, running, follow_redirects=True, auth=BearerAuth(env="FAULTS_TOKEN"))
    with ResilientClient(cfg) as client:
        assert client.get("/echo_auth").json() == {"authorization": "Bearer tok-cross-origin-secret"}
        response = client.get("/cross_origin_redirect", params={"to": target})
    assert response.json() == {"authorization": None}


def _slow_config(running: Servers, concurrency: int) -> object:
    return config_for(
        Case("slow_headers", None, 1),
        running,
        deadline=2.0,
        retry=RetryPolicy(max_attempts=1),
        timeouts=Timeouts(connect=5.0, read=5.0, write=5.0, pool=5.0),
        limits=Limits(max_concurrent=None),
    )


@pytest.mark.slow
def test_200_threads_never_end_past_the_deadline(running: Servers) -> None:
    """200 sync calls to a server that answers after 1.9 s, deadline 2.0 s: none ends (or succeeds) after it."""
    recorder = Recorder()
    ends: list[tuple[float, bool]] = []
    lock = threading.Lock()
    with ResilientClient(_slow_config(running, 200), hooks=[recorder]) as client:  # type: ignore[arg-type]

        def one() -> None:
            began = time.monotonic()
            ok = True
            try:
                client.get("/slow_headers", params={"after": "1.9"})
            except DeadlineExceeded:
                ok = False
            except IntegrationError:
                ok = False
            with lock:
                ends.append((time.monotonic() - began, ok))

        threads = [threading.Thread(target=one) for _ in range(200)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert len(ends) == 200
    assert len(recorder.of(CallFinished)) == 200
    assert max(t for t, _ in ends) <= 2.0 + CROWD_SLACK, sorted(ends)[-3:]
    late = sorted(t for t, ok in ends if ok)[-3:]
    assert all(t <= 2.0 + CROWD_SLACK for t in late), late


@pytest.mark.slow
def test_200_tasks_never_end_past_the_deadline(running: Servers) -> None:
    recorder = Recorder()

    async def main() -> list[float]:
        async with AsyncResilientClient(_slow_config(running, 200), hooks=[recorder]) as client:  # type: ignore[arg-type]

            async def one() -> float:
                began = time.monotonic()
                with contextlib.suppress(IntegrationError):
                    await client.get("/slow_headers", params={"after": "1.9"})
                return time.monotonic() - began

            return list(await asyncio.gather(*(one() for _ in range(200))))

    times = asyncio.run(main())
    assert len(times) == 200
    assert len(recorder.of(CallFinished)) == 200
    assert max(times) <= 2.0 + CROWD_SLACK, sorted(times)[-3:]
    assert all(e.outcome != "status" or e.duration <= 2.0 for e in recorder.of(AttemptFinished))  # type: ignore[attr-defined]
