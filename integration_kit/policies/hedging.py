"""gRFC A6 hedging as a sans-I/O race: when to send the next copy of an attempt, and when the attempt is over.

A :class:`HedgeRace` is one engine attempt of a hedged call; the live gRPC channel (real time) and the simulator
(virtual time) both run it, so they hedge by the same rules. The driver loops:

1. send every copy :meth:`HedgeRace.launch` hands out at the current time;
2. if no copy is in flight, the attempt is over with :attr:`HedgeRace.last`;
3. wait until the earlier of :attr:`HedgeRace.next_launch_at` and a copy's end;
4. tell :meth:`HedgeRace.finish` each copy that ended: a returned outcome ends the attempt (the driver cancels
   the copies still in flight), ``None`` goes on.

The rules (A6 ``hedgingPolicy``): the first copy goes at once, another ``delay`` seconds after the previous one
while fewer than ``max_attempts`` have gone; a copy that fails with a non-fatal status sends the next at once.
The first success, or the first fatal failure, wins. Every copy after the first needs the retry budget's
permission (``RetryBudget.can_retry``), and every non-fatal failure but the one handed to the engine (which records
it itself) is recorded on the budget, so hedges are throttled like retries. A failure the partner says not to
retry (a negative or malformed pushback, ``Outcome.should_retry is False``) stops sending copies, and no copy is
sent once the attempt's time limit has passed. Whether a method may be hedged at all (only idempotent ones) is the
driver's decision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from integration_kit.policies.budget import RetryBudget
from integration_kit.policies.outcome import Outcome, OutcomeKind

__all__ = ["HedgeCopy", "HedgePolicy", "HedgeRace"]


@dataclass(frozen=True, slots=True)
class HedgePolicy:
    """Up to ``max_attempts`` (>= 1) copies of one attempt, one more every ``delay`` seconds (>= 0); an outcome
    whose ``status`` is in ``non_fatal`` lets the race go on. Raises ``ValueError`` naming the field."""

    max_attempts: int
    delay: float = 0.0
    non_fatal: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ValueError(f"max_attempts: must be an integer >= 1, got {self.max_attempts!r}")
        if not (isinstance(self.delay, int | float) and math.isfinite(self.delay) and self.delay >= 0):
            raise ValueError(f"delay: must be a finite number of seconds >= 0, got {self.delay!r}")

    def is_non_fatal(self, outcome: Outcome) -> bool:
        """Whether ``outcome`` (a failed copy) lets the other copies go on."""
        return outcome.status in self.non_fatal


class HedgeCopy(NamedTuple):
    """A copy to send: its ``number`` (0 for the first: how many copies went before it) and its time limit in
    seconds (what is left of the attempt's; ``None``: none)."""

    number: int
    timeout: float | None


class HedgeRace:
    """The copies of one hedged attempt that started at ``started`` (seconds, on the driver's clock) with the time
    limit ``timeout`` (seconds, ``None``: none); ``budget`` is the retry budget hedges draw on (``None``: none)."""

    __slots__ = ("_budget", "_due", "_policy", "_started", "_stopped", "_timeout", "in_flight", "last", "launched")

    def __init__(
        self, policy: HedgePolicy, *, started: float, timeout: float | None, budget: RetryBudget | None
    ) -> None:
        self._policy = policy
        self._started = started
        self._timeout = timeout
        self._budget = budget
        self._due = started
        self._stopped = False
        #: Copies sent so far, and copies in flight.
        self.launched = 0
        self.in_flight = 0
        #: The last non-fatal failure (the attempt's outcome when every copy failed).
        self.last: Outcome | None = None

    @property
    def next_launch_at(self) -> float | None:
        """When the next copy is due (``None``: no more copies will be sent)."""
        if self._stopped or self.launched >= self._policy.max_attempts:
            return None
        return self._due

    def launch(self, now: float) -> HedgeCopy | None:
        """The copy to send at ``now``, if one is due and allowed; ``None`` otherwise."""
        due = self.next_launch_at
        if due is None or now < due:
            return None
        left = None if self._timeout is None else self._timeout - (now - self._started)
        if (left is not None and left <= 0) or (self.launched > 0 and not self._allowed()):
            self._stopped = True
            return None
        copy = HedgeCopy(self.launched, left)
        self.launched += 1
        self.in_flight += 1
        self._due = now + self._policy.delay
        return copy

    def finish(self, outcome: Outcome, now: float) -> Outcome | None:
        """A copy ended at ``now`` with ``outcome``: the attempt's outcome if the race is over, else ``None``
        (and then :attr:`last`, when nothing is in flight and :attr:`next_launch_at` is ``None``)."""
        self.in_flight -= 1
        if outcome.kind is OutcomeKind.SUCCESS or not self._policy.is_non_fatal(outcome):
            return outcome
        if self.last is not None and self._budget is not None:
            self._budget.record_failure()  # the engine records the copy it is given; the others are counted here
        self.last = outcome
        if outcome.should_retry is False:
            self._stopped = True
        self._due = min(self._due, now)  # a non-fatal failure sends the next copy at once
        return None

    def _allowed(self) -> bool:
        return self._budget is None or self._budget.can_retry()
