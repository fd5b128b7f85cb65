"""A live run on a scaled clock holds every attempt to what is left of the deadline, in real seconds: a retry that
starts with 0.8 scenario seconds left cannot take the read timeout's 2 s (a deadline overrun the bench caused)."""

from __future__ import annotations

import dataclasses
import random

import pytest

from integration_kit.clock import ManualClock, real_seconds
from integration_kit.errors import IntegrationError
from integration_kit.events import Recorder
from integration_kit.http.client import ResilientClient
from integration_kit.http.config import ClientConfig
from integration_kit.playbook.kinds.http.live import scaled_timeouts
from integration_kit.sim.scenarios import Scenario
from integration_kit.sim.upstream import ScaledClock, serve_scenario

SCALE = 10.0
DEADLINE = 3.0  # scenario seconds, as in the shipping spec
HANGS = Scenario.from_mapping(
    {"name": "hangs", "phases": [{"name": "hang", "duration": 600, "latency": {"kind": "constant", "value": 60.0}}]}
)


def test_real_seconds_divides_by_a_clock_s_time_scale_only() -> None:
    assert real_seconds(ScaledClock(10.0), 3.0) == pytest.approx(0.3)
    assert real_seconds(ManualClock(), 3.0) == 3.0


@pytest.mark.timeout(60)
def test_every_call_ends_within_its_deadline_on_a_scaled_clock() -> None:
    config = ClientConfig.from_mapping(
        {
            "name": "scaled",
            "base_url": "http://127.0.0.1",
            "deadline": DEADLINE,
            "timeouts": {"connect": 1.0, "read": 2.0, "write": 1.0, "pool": 1.0},
            "retry": {"max_attempts": 2, "base_delay": 0.1, "max_delay": 0.2},
        }
    )
    recorder = Recorder()
    clock = ScaledClock(SCALE)
    with serve_scenario(HANGS, time_scale=SCALE) as url:
        live = dataclasses.replace(config, base_url=url, timeouts=scaled_timeouts(config.timeouts, SCALE))
        with ResilientClient(live, clock=clock, hooks=[recorder], rng=random.Random(0)) as client:
            for _ in range(3):  # bounded: three calls, each at most the deadline (0.3 s real)
                with pytest.raises(IntegrationError):
                    client.get("/")
    frame = recorder.to_frame()
    calls = frame[frame["event"] == "call_finished"]
    assert len(calls) == 3
    attempts = frame[frame["event"] == "attempt_finished"]
    assert (attempts["attempt"] == 2).any()  # a retry ran with less than the read timeout left
    assert calls["duration"].max() <= DEADLINE + 0.5  # before the fix: 4.2 s (the retry took its full 2 s read)
