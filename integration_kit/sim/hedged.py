"""The simulator's gRPC attempts: hedged copies (gRFC A6) and transparent resends of refused streams, in virtual time.

:func:`~integration_kit.sim.simulate.simulate` hands an engine attempt here when it is given ``grpc=``
:class:`GrpcAttempts` (a hedging policy and/or ``transparent_retries``). :meth:`GrpcSends.play` answers the
attempt's outcome and how long it took:

- **hedging**: the copies race by the rules of :class:`~integration_kit.policies.hedging.HedgeRace`, the same
  object the live channel (:func:`integration_kit.grpc.hedging.hedge`) runs, so both hedge alike: the first
  success or fatal failure wins and the other copies are cancelled, hedges need the retry budget, a failure the
  partner says not to retry stops them. The race is played out when the attempt starts, so the budget is
  consulted as it stands then (other calls' outcomes during the race are not seen by it);
- **transparent retries**: a stream the partner refused before reading it (the mix's ``REFUSED_STREAM``) is sent
  again at once, at most ``transparent_retries`` times, without using an attempt (as the live channel does).

Every request a call sends (an engine attempt, a hedge, a resend) draws its fate from the keyed stream of
``(seed, call, n)`` where ``n`` counts the call's requests so far: the live upstream keys a request naming its call
the same way, so a hedge or a resend meets the same fate in both. Every copy is counted as received by the partner
(a refused stream is not). Hedged copies and resends do not go through a partner's
:class:`~integration_kit.sim.capacity.Capacity` queue (their latency is the drawn service time), and a scenario's
HTTP ``provider`` headers are not played on them (a gRPC partner sends none).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from integration_kit.policies.budget import RetryBudget
from integration_kit.policies.hedging import HedgePolicy, HedgeRace
from integration_kit.policies.outcome import Outcome, OutcomeKind
from integration_kit.sim.keyed import KeyedRandom
from integration_kit.sim.scenarios import FAULT_ORDER, Scenario

__all__ = ["GrpcAttempts", "GrpcSends"]

_REFUSED = FAULT_ORDER.index("refused")
_REFUSED_STREAM = FAULT_ORDER.index("REFUSED_STREAM")
_HANG = FAULT_ORDER.index("hang")
_READ_TIMEOUT = Outcome(OutcomeKind.READ_TIMEOUT)


@dataclass(frozen=True, slots=True)
class GrpcAttempts:
    """How a gRPC client's attempts are simulated: ``hedging`` (``None``: none; give it only for an idempotent
    method) and ``transparent_retries``, how many times a refused stream is resent at once without using an
    attempt (>= 0; the channel's is :data:`~integration_kit.grpc.rpc.MAX_TRANSPARENT`). A bad value raises
    ``ValueError`` naming the field."""

    hedging: HedgePolicy | None = None
    transparent_retries: int = 0

    def __post_init__(self) -> None:
        n = self.transparent_retries
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"transparent_retries: must be an integer >= 0, got {n!r}")


class _Run(Protocol):
    """What :class:`GrpcSends` reads of the simulator's loop (its counters are updated in place)."""

    @property
    def scenario(self) -> Scenario: ...
    @property
    def fault_rng(self) -> KeyedRandom: ...
    @property
    def outcomes(self) -> Sequence[Sequence[Outcome]]: ...
    @property
    def read_timeout(self) -> float | None: ...
    @property
    def per_second(self) -> list[int]: ...
    @property
    def keys_seen(self) -> set[str]: ...


class GrpcSends:
    """Plays the requests of engine attempts for one run of the simulator's loop ``run`` (see the module
    docstring); ``budget`` is the run's retry budget (``None``: none)."""

    def __init__(self, run: _Run, attempts: GrpcAttempts, budget: RetryBudget | None) -> None:
        self._run = run
        self._scenario = run.scenario
        self._rng = run.fault_rng
        self._outcomes = run.outcomes
        self._hedging = attempts.hedging
        self._transparent = attempts.transparent_retries
        self._budget = budget
        self._sent: dict[int, int] = {}

    @classmethod
    def of(cls, run: _Run, attempts: GrpcAttempts | None, budget: RetryBudget | None) -> GrpcSends | None:
        """The player for ``run`` (``None`` when ``attempts`` is ``None``: plain attempts)."""
        return None if attempts is None else cls(run, attempts, budget)

    def entry(
        self, t: float, seq: int, gen: Any, call: int, limit: float | None, key: str | None
    ) -> tuple[float, int, Any, Outcome, int]:
        """The simulator's heap entry for the end of :meth:`play`: (when, ``seq``, ``gen``, outcome, ``call``)."""
        outcome, took = self.play(t, call, limit, key)
        return t + took, seq, gen, outcome, call

    def play(self, t: float, call: int, limit: float | None, key: str | None) -> tuple[Outcome, float]:
        """The outcome of call ``call``'s attempt starting at ``t`` with time limit ``limit`` (seconds,
        ``None``: none), and the seconds until it ends (``math.inf``: never)."""
        if self._hedging is None:
            return self._request(t, call, limit, key)
        race = HedgeRace(self._hedging, started=t, timeout=limit, budget=self._budget)
        ends: list[tuple[float, int, Outcome]] = []
        now = t
        while True:
            while (copy := race.launch(now)) is not None:
                outcome, took = self._request(now, call, copy.timeout, key)
                heapq.heappush(ends, (now + took, copy.number, outcome))
            if not ends:
                return race.last or _READ_TIMEOUT, now - t
            due = race.next_launch_at
            if due is not None and due < ends[0][0]:
                now = due
                continue
            now, _, outcome = heapq.heappop(ends)
            if now == math.inf:
                return outcome, math.inf
            ended = race.finish(outcome, now)
            if ended is not None:
                return ended, now - t

    def _request(self, t: float, call: int, limit: float | None, key: str | None) -> tuple[Outcome, float]:
        """One request (resent at once while its stream is refused): its outcome and seconds until it ends."""
        draw = self._scenario.draw
        for _ in range(self._transparent + 1):
            sent = self._sent[call] = self._sent.get(call, 0) + 1
            self._rng.rekey_request(call, sent)
            index, code, latency = draw(t, self._rng)
            if code != _REFUSED_STREAM:
                break
        outcome = self._outcomes[index][code + 1]
        if code in (_REFUSED, _REFUSED_STREAM):
            return outcome, 0.0  # never received
        if code == _HANG:
            latency = math.inf
        self._count(t, key)
        read = self._run.read_timeout
        if read is not None and (limit is None or read < limit):
            limit = read
        if limit is not None and latency > limit:
            return _READ_TIMEOUT, limit
        return outcome, latency

    def _count(self, t: float, key: str | None) -> None:
        second = int(t)
        per_second = self._run.per_second
        if second >= len(per_second):
            per_second.extend([0] * (second + 1 - len(per_second)))
        per_second[second] += 1
        if key is not None:
            self._run.keys_seen.add(key)
