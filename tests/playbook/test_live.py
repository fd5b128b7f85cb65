"""Live exercise runs: the real client over real sockets on 127.0.0.1, time-scaled so each takes seconds."""

from __future__ import annotations

import pytest

from integration_kit.errors import ConfigurationError
from integration_kit.playbook.kinds.http.exercise import exercise
from integration_kit.playbook.kinds.http.live import live_exercise, scaled_timeouts
from integration_kit.playbook.kinds.http.spec import load_integration
from integration_kit.policies.config import Timeouts
from integration_kit.sim.scenarios import load_scenario
from integration_kit.sim.upstream import serve_scenario


def test_live_run_against_the_local_upstream_records_what_both_sides_saw() -> None:
    progress: list[tuple[str, float]] = []
    result = exercise(
        "shipping",
        mode="live",
        scenario="outage-and-recovery",
        seed=2,
        duration=90,
        time_scale=30,
        progress=lambda name, fraction: progress.append((name, fraction)),
    )
    run = result.runs[0]
    s = run.summary
    assert s.calls > 50
    # the partner's own count (from /stats) matches the attempts the client sent, less refused connections
    assert 0 < run.upstream_received <= s.attempts
    assert run.server["received"].sum() == run.upstream_received
    # the outage starts at t=60 s: the breaker opens during it
    assert any("closed -> open" in line for line in run.transitions)
    assert progress[-1] == ("outage-and-recovery", 1.0)
    assert all(0.0 <= f <= 1.0 for _, f in progress)
    assert set(run.frame["integration"]) == {"shipping"}
    assert run.frame["time"].min() >= -1e-6  # times are relative to the run's start


def test_live_run_against_a_service_at_base_url_sends_the_secret_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = load_integration("payments")
    monkeypatch.setenv("PAYMENTS_API_TOKEN", "canary-secret-7f3a")
    with serve_scenario(load_scenario("steady"), seed=1, time_scale=1.0) as url:
        result = live_exercise(spec, spec.scenario("steady"), seed=1, duration=1.5, time_scale=1.0, base_url=url)
    assert result.summary.calls > 5
    assert result.summary.success_rate > 0.9
    # a real service's view cannot be read: the client's own attempts per second stand in for it
    assert result.upstream_received == result.summary.attempts
    assert "canary-secret-7f3a" not in result.frame.to_csv()


def test_live_run_against_a_real_service_without_its_secret_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PAYMENTS_API_TOKEN", raising=False)
    spec = load_integration("payments")
    with pytest.raises(ConfigurationError, match="PAYMENTS_API_TOKEN"):
        live_exercise(spec, spec.scenario("steady"), duration=1, base_url="https://127.0.0.1:9")


def test_scaled_timeouts_divide_every_phase() -> None:
    assert scaled_timeouts(Timeouts(2.0, 4.0, None, 1.0), 10) == Timeouts(0.2, 0.4, None, 0.1)
