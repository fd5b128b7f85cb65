"""The bundled catalog paces on its supplier's quota: side by side with the same spec unpaced, on the scenario whose
partner reports its quota in RateLimit headers at the catalog's own read rate, the objective ``rate_limited``
(<= 1% of attempts refused for rate) passes paced and fails unpaced, and the paced success rate holds."""

from __future__ import annotations

import dataclasses

import pytest

from integration_kit.errors import ConfigurationError
from integration_kit.playbook.kinds.http import charts
from integration_kit.playbook.kinds.http.exercise import simulate_integration
from integration_kit.playbook.kinds.http.figures import measure
from integration_kit.playbook.kinds.http.judge import judge
from integration_kit.playbook.kinds.http.spec import IntegrationSpec, load_integration


def _rate_limited_check(spec: IntegrationSpec) -> tuple[bool, float, float]:
    scenario = spec.scenario("supplier-quota")
    result = simulate_integration(spec, scenario, seed=1, duration=60)
    figures = measure(result.to_frame(), None, scenario, deadline=spec.client.deadline)
    (check,) = [c for c in judge(figures, spec.objectives_for(scenario.name)) if c.objective == "rate_limited"]
    return check.passed, check.measured, figures.success_rate


def test_paced_catalog_meets_rate_limited_where_the_unpaced_one_does_not() -> None:
    paced = load_integration("catalog")
    assert paced.client.quota_reserve == 5
    unpaced = dataclasses.replace(paced, client=dataclasses.replace(paced.client, quota_reserve=None))
    paced_passed, paced_share, paced_success = _rate_limited_check(paced)
    unpaced_passed, unpaced_share, _ = _rate_limited_check(unpaced)
    assert paced_passed
    assert paced_share == 0.0
    assert paced_success >= 0.99
    assert not unpaced_passed
    assert unpaced_share > 0.01


def test_spec_profile_and_pacing_fields() -> None:
    base = {"name": "repos", "description": "d", "base_url": "https://api.github.com", "scenarios": ["github-limits"]}
    spec = IntegrationSpec.from_mapping({**base, "profile": "github", "quota_reserve": 10}, source="repos.toml")
    assert spec.client.provider is not None
    assert spec.client.provider.name == "github"
    with pytest.raises(ConfigurationError) as bad:
        IntegrationSpec.from_mapping({**base, "profile": "gitlab"}, source="repos.toml")
    assert bad.value.field == "profile"
    assert "github, openai, shopify, slack, stripe" in str(bad.value)
    with pytest.raises(ConfigurationError) as objective:
        IntegrationSpec.from_mapping({**base, "objectives": {"rate_limited": 1.5}}, source="repos.toml")
    assert objective.value.field == "objectives.rate_limited"


def test_the_load_chart_shows_the_quota_a_paced_client_saw() -> None:
    spec = load_integration("catalog")
    result = simulate_integration(spec, spec.scenario("supplier-quota"), seed=1, duration=20)
    frame = result.to_frame()
    assert (frame["event"] == "quota_seen").any()
    fig = charts.upstream_load(frame)
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert "quota remaining (partner's headers)" in labels
    unpaced = charts.upstream_load(frame[frame["event"] != "quota_seen"])
    assert len(unpaced.axes) == 1
