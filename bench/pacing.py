"""Paced against unpaced, side by side, near a provider's quota: simulated, then live over real sockets.

    PYTHONPATH=. python bench/pacing.py

Each row plays a bundled provider scenario at an open-loop rate just above or near its quota, once with the
client's pacing off and once with ``quota_reserve = 0`` (:class:`~integration_kit.policies.limits.QuotaPacer`).
"refused" is the share of attempts the partner refused for rate limit (the HTTP kind's ``rate_limited``
objective); "paced" counts the calls the pacer held back (waits and fail-fast refusals); "attempts" what the
partner received. The live rows play the first LIVE scenario seconds over the flaky upstream at time scale 1
(GitHub's epoch resets are exact only there), with WORKERS callers spacing their calls to the live rate.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from integration_kit import ClientConfig, Recorder, ResilientClient
from integration_kit.errors import IntegrationError
from integration_kit.policies.config import RetryPolicy
from integration_kit.sim.scenarios import Scenario, load_scenario
from integration_kit.sim.simulate import simulate
from integration_kit.sim.upstream import ScaledClock, serve_scenario

#: (scenario, simulated rate, live rate): Poisson arrivals near the quota (120 per 10 s) simulated; the live callers
#: are evenly spaced, so they pass the quota only above it.
CASES = (("ietf-quota", 11.5, 13.0),)
RETRY = RetryPolicy(max_retry_after=15.0)
DEADLINE = 15.0
LIVE = 20.0
WORKERS = 8


def _row(events: Any) -> tuple[int, int, float, float]:
    attempts = events[events["event"] == "attempt_finished"]
    refused = int(attempts["status"].isin([429, 403]).sum())
    calls = events[events["event"] == "call_finished"]
    paced = int((events["event"] == "pacing_wait").sum())
    success = float(calls["ok"].astype(bool).mean()) if len(calls) else float("nan")
    return len(attempts), paced, refused / max(1, len(attempts)), success


def simulated(scenario: Scenario, rate: float, reserve: int | None) -> tuple[int, int, float, float]:
    result = simulate(scenario, rate=rate, seed=1, quota_reserve=reserve, deadline=DEADLINE, retry=RETRY, breaker=None)
    return _row(result.recorder.to_frame())


def live(scenario: Scenario, rate: float, reserve: int | None) -> tuple[int, int, float, float]:
    """Closed-loop workers, each starting a call every ``WORKERS / rate`` seconds, for LIVE seconds."""
    recorder, clock = Recorder(), ScaledClock(1.0)
    with serve_scenario(scenario) as url:
        config = ClientConfig(
            name="pacing", base_url=url, retry=RETRY, deadline=DEADLINE, quota_reserve=reserve, breaker=None
        )
        with ResilientClient(config, clock=clock, hooks=[recorder]) as client:
            end = clock.now() + LIVE

            def worker(offset: float) -> None:
                due = clock.now() + offset
                while due < end:
                    clock.sleep(due - clock.now())
                    with contextlib.suppress(IntegrationError):
                        client.get("/resource")
                    due += WORKERS / rate

            threads = [threading.Thread(target=worker, args=(i / rate,)) for i in range(WORKERS)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    return _row(recorder.to_frame())


def main() -> None:
    header = ("scenario", "rate/s", "mode", "client", "attempts", "paced", "refused", "success")
    print("{:16} {:>6} {:9} {:8} {:>8} {:>6} {:>8} {:>8}".format(*header))
    for name, rate, live_rate in CASES:
        scenario = load_scenario(name)
        for mode, load in (("simulate", rate), ("live", live_rate)):
            for reserve in (None, 0):
                run = simulated if mode == "simulate" else live
                attempts, paced, refused, success = run(scenario, load, reserve)
                client = "unpaced" if reserve is None else "paced"
                row = f"{name:16} {load:6.1f} {mode:9} {client:8} {attempts:8d} {paced:6d} {refused:8.2%}"
                print(f"{row} {success:8.1%}")


if __name__ == "__main__":
    main()
