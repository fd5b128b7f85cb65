"""The fast __init__ keeps frozen, slotted dataclasses exactly as they were, only quicker to build."""

from __future__ import annotations

import dataclasses

import pytest

from integration_kit._slots import fast_frozen_init
from integration_kit.events import AttemptFinished
from integration_kit.policies.outcome import Outcome, OutcomeKind


def test_outcome_keeps_defaults_equality_hash_and_immutability() -> None:
    a = Outcome(OutcomeKind.STATUS, 503)
    assert a == Outcome(OutcomeKind.STATUS, status=503, retry_after=None, error=None, value=None)
    assert hash(a) == hash(Outcome(OutcomeKind.STATUS, 503))
    assert a.retry_after is None
    assert repr(a).startswith("Outcome(kind=<OutcomeKind.STATUS")
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.status = 200  # type: ignore[misc]
    with pytest.raises(TypeError):
        Outcome()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Outcome(OutcomeKind.STATUS, nope=1)  # type: ignore[call-arg]


def test_event_init_matches_the_dataclass_fields() -> None:
    e = AttemptFinished(1.0, "p", 7, 2, "GET", "/x", "status", 200, 0.5, "success")
    assert dataclasses.astuple(e) == (1.0, "p", 7, 2, "GET", "/x", "status", 200, 0.5, "success")
    assert e == AttemptFinished(
        time=1.0,
        integration="p",
        call_id=7,
        attempt=2,
        method="GET",
        target="/x",
        outcome="status",
        status=200,
        duration=0.5,
        verdict="success",
    )


def test_post_init_still_runs_and_unsupported_classes_are_refused() -> None:
    seen: list[int] = []

    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        value: int

        def __post_init__(self) -> None:
            seen.append(self.value)

    fast_frozen_init(Checked)
    Checked(3)
    assert seen == [3]

    @dataclasses.dataclass(frozen=True, slots=True)
    class WithFactory:
        items: list[int] = dataclasses.field(default_factory=list)

    with pytest.raises(TypeError, match="needs the dataclass's own __init__"):
        fast_frozen_init(WithFactory)

    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        value: int

    with pytest.raises(TypeError, match="use slots=True"):
        fast_frozen_init(NoSlots)
