"""The bench judges itself: a live run whose load generator falls behind is an invalid run (exit 3), never a
failure of the integration; a healthy small live run stays valid; a target that answers nothing stops early."""

from __future__ import annotations

import math
import socket
import time
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from integration_kit.playbook.cli.app import main
from integration_kit.playbook.kinds.http.bench import (
    LATENESS_LIMIT,
    TIMER_LAG_LIMIT,
    BenchHealth,
    UnreachableTarget,
    fitted_time_scale,
    probe_target,
)
from integration_kit.playbook.kinds.http.exercise import exercise
from integration_kit.playbook.kinds.http.figures import DEADLINE_TOLERANCE
from integration_kit.playbook.kinds.http.judge import judge_run
from integration_kit.playbook.kinds.http.live import live_exercise
from integration_kit.playbook.kinds.http.spec import IntegrationSpec
from integration_kit.playbook.verdict.bench import lateness_limit

pytestmark = pytest.mark.timeout(300)


def _spec_text(rate: float) -> str:
    return f"""
name = "bench-probe"
description = "a small integration for the bench's own health"
base_url = "https://partner.example"
deadline = 2.0
scenarios = ["steady"]

[timeouts]
connect = 1.0
read = 1.0
write = 1.0
pool = 1.0

[exercise]
rate = {rate}
"""


def _spec(tmp_path: Path, rate: float) -> Path:
    path = tmp_path / "bench-probe.toml"
    path.write_text(_spec_text(rate))
    return path


def _health(**changes: float) -> BenchHealth:
    values: dict[str, float] = {
        "scheduled": 100,
        "offered": 100,
        "on_time": 100,
        "lateness_p99": 0.01,
        "lateness_max": 0.02,
        "timer_lag_p99": 0.001,
        "cpu_busy": 0.3,
        "cores": 2,
        "time_scale": 10.0,
    }
    values.update(changes)
    return BenchHealth(**values)  # type: ignore[arg-type]


def test_health_within_the_limit_is_valid_and_over_it_says_by_how_much() -> None:
    assert _health().reason() is None
    assert _health(lateness_p99=math.nan, lateness_max=math.nan).reason() is None  # closed loop: nothing measured
    late = _health(lateness_p99=LATENESS_LIMIT + 3.21, lateness_max=9.0, on_time=40)
    reason = late.reason()
    assert reason is not None
    assert reason.startswith("invalid run: the load generator fell behind by 4.21 s")
    assert "40% on time" in reason
    assert "CPU 30% busy on 2 core(s)" in reason
    unoffered = _health(offered=80, lateness_max=31.0).reason()
    assert unoffered is not None
    assert "fell behind by 31.00 s" in unoffered
    assert "80 of 100 calls offered" in unoffered
    assert BenchHealth.from_dict(late.as_dict()) == late


def test_a_saturated_cpu_voids_a_failure_but_not_a_pass() -> None:
    saturated = _health(cpu_busy=0.99)
    assert saturated.reason() is None  # a pass on a saturated bench stands: saturation only makes runs look worse
    reason = saturated.reason(missed=True)
    assert reason is not None
    assert reason.startswith("invalid run: the bench was strained (the machine's CPU 99% busy)")
    assert _health(cpu_busy=0.5).reason(missed=True) is None  # a failure with headroom is the integration's


def test_late_timers_on_either_side_or_a_saturated_process_void_a_failure() -> None:
    # x2: the HTTP kind's 50 ms (scenario) resolution is 25 ms real.
    fine = {"time_scale": 2.0, "timer_lag_p99": 0.010, "partner_lag_p99": 0.020, "process_cpu": 0.6}
    assert _health(**fine).reason(missed=True) is None
    partner = _health(**{**fine, "partner_lag_p99": 0.251, "partner_lag_max": 0.485}).reason(missed=True)
    assert partner is not None
    assert "the partner's loop 502 ms (scenario; 251 ms real) late at p99" in partner
    assert "partner loop lag p99 251 ms, max 485 ms" in partner
    own = _health(**{**fine, "timer_lag_p99": 0.030}).reason(missed=True)
    assert own is not None
    assert "the bench's timers 60 ms (scenario; 30 ms real) late at p99" in own
    gil = _health(**{**fine, "process_cpu": 0.97}).reason(missed=True)
    assert gil is not None
    assert "this process at 0.97 cores" in gil
    assert _health(**{**fine, "partner_lag_p99": 0.251}).reason() is None  # a pass stands
    # a kind whose objectives resolve whole seconds (messages, webhooks) tolerates what HTTP does not
    assert _health(**{**fine, "timer_lag_p99": 0.030, "lag_limit": LATENESS_LIMIT}).reason(missed=True) is None


def test_the_lateness_limit_is_never_shorter_than_a_tenth_of_a_real_second() -> None:
    assert lateness_limit(2.0) == LATENESS_LIMIT  # HTTP at x2: 1 scenario second (0.5 s real)
    assert lateness_limit(900.0) == pytest.approx(90.0)  # a webhook sender playing hours: 0.1 s real
    hours = _health(time_scale=900.0, lateness_p99=37.0, lateness_max=54.0)  # order-events endpoint-down-hours
    assert not hours.fell_behind
    assert hours.reason() is None
    assert _health(time_scale=900.0, lateness_p99=95.0, lateness_max=99.0).fell_behind


def test_health_saved_before_the_partner_and_process_figures_still_reads() -> None:
    old = _health().as_dict()
    for key in ("process_cpu", "partner_lag_p99", "partner_lag_max", "lag_limit"):
        del old[key]
    health = BenchHealth.from_dict({**old, "a_figure_from_the_future": 1.0})
    assert math.isnan(health.partner_lag_p99)
    assert health.lag_limit == TIMER_LAG_LIMIT
    assert health.reason(missed=True) is None


def test_the_live_time_scale_fits_the_machine_and_says_so() -> None:
    assert fitted_time_scale(10, 10.0, cores=2) == (10.0, "")
    scale, note = fitted_time_scale(100, 10.0, cores=2)
    assert scale == 2.0
    assert "reduced from x10 to fit 2 core(s)" in note
    assert fitted_time_scale(1000, 10.0, cores=2)[0] == 1.0  # never slower than real time
    assert fitted_time_scale(120, 10.0, cores=2)[0] == 1.6


def test_a_healthy_small_live_run_stays_valid(tmp_path: Path) -> None:
    spec = IntegrationSpec.from_mapping(_mapping(rate=20.0), source="bench-probe.toml", path=_spec(tmp_path, 20.0))
    result = exercise(spec, mode="live", duration=10, time_scale=10, seed=1)
    (run,) = result.runs
    assert run.bench is not None
    assert run.bench.scheduled == run.bench.offered > 100
    assert run.bench.lateness_p99 < LATENESS_LIMIT
    assert run.bench.reason() is None
    assert 0 <= run.bench.partner_lag_p99 <= run.bench.partner_lag_max  # the upstream's own view, measured
    assert run.bench.process_cpu > 0
    result.save(tmp_path / "run")
    verdict = judge_run(spec, tmp_path / "run")
    assert verdict.valid
    assert verdict.target.startswith("live: http://127.0.0.1:")
    # real clocks: seconds are judged with the overrun tolerance, other figures exactly
    assert {c.tolerance for c in verdict.checks if c.unit == "s"} == {DEADLINE_TOLERANCE}
    assert {c.tolerance for c in verdict.checks if c.unit != "s"} == {0.0}


def test_a_generator_that_cannot_keep_up_makes_an_invalid_run_not_a_failure(tmp_path: Path) -> None:
    # 1,000 scenario calls/s at x10 asks 10,000 real calls/s: no machine running Python serves that, so the
    # generator falls behind at once. Bounded: one scenario second, at most 1,000 calls.
    spec = IntegrationSpec.from_mapping(_mapping(rate=1000.0), source="bench-probe.toml", path=_spec(tmp_path, 1000))
    began = time.monotonic()
    result = exercise(spec, mode="live", duration=1, time_scale=10, seed=1)
    assert time.monotonic() - began < 120
    (run,) = result.runs
    assert run.bench is not None
    assert run.bench.fell_behind
    result.save(tmp_path / "run")
    verdict = judge_run(spec, tmp_path / "run")
    assert not verdict.valid
    assert verdict.invalid["steady"].startswith("invalid run: the load generator fell behind by ")
    assert verdict.status() == "INVALID RUN"
    assert verdict.failures == []  # never a FAIL of the integration
    assert verdict.findings == ()  # never a finding that changes its settings


@pytest.mark.slow
def test_the_cli_exits_3_on_an_invalid_run_and_junit_calls_it_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(tmp_path, 1000)
    junit = tmp_path / "junit.xml"
    argv = ["run", str(spec), "--mode", "live", "--duration", "1", "--time-scale", "10", "--out", str(tmp_path)]
    assert main([*argv, "--junit", str(junit)]) == 3
    printed = capsys.readouterr()
    assert "INVALID: bench-probe steady: invalid run: the load generator fell behind by " in printed.out
    assert "FAILED" not in printed.out
    assert "invalid run: the test bench could not keep up in 1 scenario(s)" in printed.err
    root = ET.parse(junit).getroot()
    assert root.get("failures") == "0"
    errors = root.findall(".//error")
    assert [e.get("type") for e in errors] == ["invalid run"]
    (report,) = tmp_path.glob("bench-probe/*/report.html")
    assert "INVALID RUN" in report.read_text()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_target_that_answers_nothing_stops_within_seconds_naming_the_url(tmp_path: Path) -> None:
    spec = IntegrationSpec.from_mapping(_mapping(rate=20.0), source="bench-probe.toml", path=_spec(tmp_path, 20))
    url = f"http://127.0.0.1:{_closed_port()}"
    began = time.monotonic()
    with pytest.raises(UnreachableTarget, match=f"no call reached {url}: the first 10 attempts all failed"):
        live_exercise(spec, spec.scenario("steady"), duration=120, base_url=url)
    assert time.monotonic() - began < 15  # the scenario would have taken 120 s


def _mapping(rate: float) -> dict[str, object]:
    return tomllib.loads(_spec_text(rate))


def test_the_cli_refuses_a_live_run_against_nothing_in_one_line_naming_the_url_before_any_kernel(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    argv = ["run", str(_spec(tmp_path, 20)), "--mode", "live", "--base-url", url, "--duration", "120"]
    began = time.monotonic()
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    assert time.monotonic() - began < 10  # no kernel started: the preflight probed the target
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"integration-kit: no call reached {url}: the connection to port {url.rsplit(':', 1)[1]} was refused; "
        "checked before starting, the live run did not start"
    ]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://nothing-here.invalid/v1", "its host name does not resolve"),
        ("https://user:s3cret@nothing-here.invalid/v1?api_key=s3cret", "its host name does not resolve"),
    ],
)
def test_the_probe_names_the_target_redacted_and_why(url: str, why: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(UnreachableTarget, match=why) as caught:
        probe_target(url, timeout=2.0)
    assert "s3cret" not in str(caught.value)
    assert "nothing-here.invalid" in str(caught.value)


def test_the_probe_lets_a_listening_target_through_and_skips_behind_a_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        probe_target(f"http://127.0.0.1:{server.getsockname()[1]}/", timeout=2.0)  # no error
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    probe_target(f"http://127.0.0.1:{_closed_port()}/", timeout=2.0)  # the proxy is what the client talks to
