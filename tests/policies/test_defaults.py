"""Issue 12's targets for the defaults, in the simulator with no tuning (the table is in docs/defaults.md)."""

from __future__ import annotations

from integration_kit.research.targets import default_targets, targets_of


def test_the_defaults_win_both_ways() -> None:
    new = targets_of({}, seeds=(2,))
    assert new.brownout_success >= 0.97  # a random 30 % brownout keeps its retries
    assert new.brownout_attempts <= 1.5
    assert new.outage_load <= 0.1  # an outage is not amplified
    assert new.outage_recovered_success >= 0.98
    assert new.storm_recovered  # a retry storm dies out after its trigger


def test_the_naive_policy_stays_overloaded_and_the_old_budget_loses_the_brownout() -> None:
    rows = default_targets(seeds=(1,))
    assert not rows["naive"].storm_recovered
    assert rows["naive"].outage_load > 2
    assert rows["old"].brownout_success < 0.8
