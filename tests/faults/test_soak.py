"""The soak's short form: 32 threads and 256 async tasks for 10 s against the flaky upstream in a brownout.

The full run is ``python3 dev.py bench bench/soak.py`` (60 s); see docs/reliability.md for its figures.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

#: The largest tracemalloc growth allowed between the end of warm-up and the end of the run (bytes).
MAX_GROWTH = 16 * 1024 * 1024


def _soak() -> object:
    path = Path(__file__).resolve().parents[2] / "bench" / "soak.py"
    spec = importlib.util.spec_from_file_location("soak_bench", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["soak_bench"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_soak_short_form_has_no_deadlock_no_lost_call_and_no_leak() -> None:
    report = _soak().run_soak(duration=10.0, threads=32, tasks=256)  # type: ignore[attr-defined]
    assert report.stuck_workers == 0
    assert report.foreign == []
    assert report.started > 0
    assert report.accounted, report
    assert report.memory_growth < MAX_GROWTH, report
    assert report.fd_growth <= 0, report
