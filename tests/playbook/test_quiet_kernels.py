"""A successful playbook run leaves no kernel noise on the console (the kernels' stderr is the console's)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from integration_kit.playbook.run.runner import _engine_options, run_playbook

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_a_successful_run_prints_nothing_from_its_kernels(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    run = run_playbook("shipping", scenario="slow-partner", duration=10, out=tmp_path)
    assert run.ok, run.error
    err = capfd.readouterr().err
    assert "KeyboardInterrupt" not in err
    assert "IPKernelApp" not in err


def test_the_kernel_manager_shuts_a_kernel_down_without_interrupting_it() -> None:
    # jupyter_client interrupts (SIGINT) before its shutdown request; an idle or busy ipykernel then logs
    # "KeyboardInterrupt caught in kernel." on our console. The playbook's manager sends no signal at shutdown.
    manager = _engine_options()["kernel_manager_class"]()
    sent: list[int] = []
    original = manager._async_signal_kernel

    async def record(signum: int) -> None:
        sent.append(signum)
        await original(signum)

    manager._async_signal_kernel = record

    async def cycle() -> None:
        await manager.start_kernel()
        await manager.shutdown_kernel()

    asyncio.run(cycle())
    assert signal.SIGINT not in sent
    assert not manager.has_kernel
