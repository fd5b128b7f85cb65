"""The reconnect herd in virtual time: many WebSocket clients of one feed, and what a server restart does to them.

Every client holds a connection to a feed that publishes ``rate`` messages per second. At ``restart_at`` the
server restarts: every connection is closed with 1012 (service restart) at once, the server accepts no handshake
for ``downtime`` seconds (a handshake then fails as a refused TCP connection), and afterwards it completes at
most ``accept_rate`` handshakes per second, answering the rest ``503`` (with ``Retry-After: retry_after`` when
set). The simulator counts the handshakes the server sees per second (the herd), how long each client was
disconnected, and the messages each lost (those published while it was away, unless it resumes: with
``resume=True`` the kit's client does; the ``websockets`` iterator and the naive loop have no resume).

How a client reconnects is a :data:`Strategy`:

- ``kit``: the kit's client, run on the same code: :func:`~integration_kit.websocket.reconnect.decide_reconnect`
  draws the wait after the close, then each handshake is a call of the
  :class:`~integration_kit.engine.call.CallEngine` with :meth:`ReconnectPolicy.retry_policy` (backoff, jitter,
  Retry-After), exactly as :class:`~integration_kit.websocket.ResilientWebSocket` does over real sockets;
- ``websockets``: the ``websockets`` library's reconnect iterator (``async for ws in connect(...)``): it
  reconnects at once after a close, and after a failed handshake waits ``uniform(0, 5)`` s, then 3.1 s growing by
  1.618 up to 90 s (``websockets.client.backoff`` and its ``BACKOFF_*`` defaults, drawn here from a seeded rng);
- ``naive``: the hand-written ``while True:`` loop: reconnect at once, and one second after any failure.

Everything runs on virtual time, each client with its own seeded ``random.Random`` (:func:`client_rng`): a run is
deterministic and 1,000 clients take well under a second.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import Counter
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Literal

from integration_kit.clock import ManualClock
from integration_kit.engine.actions import Send, Wait
from integration_kit.engine.call import CallEngine
from integration_kit.errors import ConfigurationError, IntegrationError
from integration_kit.policies.outcome import Outcome, OutcomeKind
from integration_kit.websocket.reconnect import ReconnectPolicy, decide_reconnect

__all__ = ["HerdResult", "HerdScenario", "Strategy", "client_rng", "simulate_herd", "websockets_delays"]

Strategy = Literal["kit", "websockets", "naive"]

#: The ``websockets`` library's reconnect backoff defaults (``websockets.client.BACKOFF_*``, version 13 to 15).
WEBSOCKETS_INITIAL, WEBSOCKETS_MIN, WEBSOCKETS_MAX, WEBSOCKETS_FACTOR = 5.0, 3.1, 90.0, 1.618

_ConnectionAction = Send | Wait
_Client = Generator[_ConnectionAction, Outcome | None, Outcome]


@dataclass(frozen=True, slots=True)
class HerdScenario:
    """A restart seen by ``clients`` clients at once; times in seconds (see the module docstring).

    Defaults: 1,000 clients of a 10 messages/s feed; the restart at 10 s; 2 s down; 200 handshakes/s accepted
    after it (a modest server's TLS handshake budget); no Retry-After; the run ends at ``horizon=300``.
    """

    clients: int = 1000
    rate: float = 10.0
    restart_at: float = 10.0
    downtime: float = 2.0
    accept_rate: float | None = 200.0
    retry_after: float | None = None
    horizon: float = 300.0
    resume: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.clients, bool) or not isinstance(self.clients, int) or self.clients < 1:
            raise ConfigurationError(
                f"HerdScenario.clients must be an integer >= 1, got {self.clients!r}", field="clients"
            )
        for name in ("rate", "horizon"):
            _number(name, getattr(self, name), low=0.0, strict=True)
        for name in ("restart_at", "downtime"):
            _number(name, getattr(self, name), low=0.0, strict=False)
        for name in ("accept_rate", "retry_after"):
            if getattr(self, name) is not None:
                _number(name, getattr(self, name), low=0.0, strict=name == "accept_rate")
        if not isinstance(self.resume, bool):
            raise ConfigurationError(f"HerdScenario.resume must be true or false, got {self.resume!r}", field="resume")


def _number(name: str, value: object, *, low: float, strict: bool) -> None:
    """A finite number above ``low`` (``strict``) or at least ``low``, else the error naming ``name``."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value <= low if strict else value < low):  # type: ignore[operator]
        bound = f"> {low:g}" if strict else f">= {low:g}"
        raise ConfigurationError(f"HerdScenario.{name} must be a finite number {bound}, got {value!r}", field=name)


@dataclass(frozen=True, slots=True)
class HerdResult:
    """What one run showed: handshakes the server saw per whole second after the restart (``per_second[0]`` is the
    second of the restart), refusals by kind, and per client the time disconnected and the messages lost
    (``inf`` and all messages since the restart for a client that gave up or never came back by the horizon)."""

    strategy: str
    per_second: tuple[int, ...]
    refused: dict[str, int]
    down: tuple[float, ...]
    lost: tuple[int, ...]
    gave_up: int = 0
    handshakes: int = field(default=0)

    @property
    def peak(self) -> int:
        """The most handshakes the server saw in one second."""
        return max(self.per_second, default=0)

    def down_quantile(self, q: float) -> float:
        """The ``q`` quantile (0-1) of the time disconnected, nearest rank."""
        ordered = sorted(self.down)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def websockets_delays(rng: random.Random) -> Iterator[float]:
    """The ``websockets`` reconnect iterator's waits after failed handshakes (``websockets.client.backoff``)."""
    yield rng.random() * WEBSOCKETS_INITIAL
    delay = WEBSOCKETS_MIN
    while delay < WEBSOCKETS_MAX:
        yield delay
        delay *= WEBSOCKETS_FACTOR
    while True:
        yield WEBSOCKETS_MAX


def client_rng(seed: int, index: int) -> random.Random:
    """The random stream of client ``index`` in a run seeded ``seed``: one stream per client, so a live client given
    the same stream draws the same waits (the fidelity test compares them client by client)."""
    return random.Random(seed * 1_000_003 + index)


def simulate_herd(
    scenario: HerdScenario,
    strategy: Strategy = "kit",
    policy: ReconnectPolicy | None = None,
    *,
    seed: int = 0,
) -> HerdResult:
    """Play ``scenario`` with every client reconnecting by ``strategy`` (``policy`` for ``kit``; default
    :class:`ReconnectPolicy`). Raises :class:`~integration_kit.errors.ConfigurationError` for an unknown strategy."""
    if strategy not in ("kit", "websockets", "naive"):
        raise ConfigurationError(f"strategy must be 'kit', 'websockets' or 'naive', got {strategy!r}", field="strategy")
    clock = ManualClock(scenario.restart_at)
    server = _Server(scenario)
    policy = policy or ReconnectPolicy()
    queue: list[tuple[float, int, int]] = []  # (time, order, client)
    clients: list[_Client] = []
    for index in range(scenario.clients):
        client = _client(strategy, policy, clock, client_rng(seed, index))
        clients.append(client)
        heapq.heappush(queue, (scenario.restart_at, index, index))
    pending: dict[int, Outcome | None] = {}
    started: dict[int, bool] = {}
    back_at: dict[int, float] = {}
    gave_up = 0
    order = scenario.clients
    while queue:
        now, _, index = heapq.heappop(queue)
        if now > scenario.horizon:
            break
        clock.set(max(clock.now(), now))
        client = clients[index]
        try:
            action = next(client) if index not in started else client.send(pending.pop(index, None))
            started[index] = True
        except StopIteration:
            back_at[index] = now
            continue
        except IntegrationError:
            gave_up += 1
            continue
        if type(action) is Send:
            pending[index] = server.handshake(now)
            at = now
        else:
            assert isinstance(action, Wait)
            at = now + action.seconds
        order += 1
        heapq.heappush(queue, (at, order, index))
    down = tuple(back_at.get(i, math.inf) - scenario.restart_at for i in range(scenario.clients))
    horizon_msgs = int((scenario.horizon - scenario.restart_at) * scenario.rate)
    resumes = scenario.resume and strategy == "kit"  # neither websockets' iterator nor the naive loop resumes
    lost = tuple(0 if resumes and math.isfinite(d) else min(horizon_msgs, int(d * scenario.rate)) for d in down)
    seconds = int(scenario.horizon - scenario.restart_at) + 1
    per_second = [0] * seconds
    for when in server.times:
        per_second[min(seconds - 1, int(when - scenario.restart_at))] += 1
    return HerdResult(strategy, tuple(per_second), dict(server.refused), down, lost, gave_up, len(server.times))


class _Server:
    """The restarted server: down for ``downtime``, then at most ``accept_rate`` handshakes per second."""

    def __init__(self, scenario: HerdScenario) -> None:
        self.scenario = scenario
        self.up_at = scenario.restart_at + scenario.downtime
        self.times: list[float] = []
        self.refused: Counter[str] = Counter()
        self._accepted: Counter[int] = Counter()

    def handshake(self, now: float) -> Outcome:
        if now < self.up_at:
            self.refused["connect_error"] += 1
            return Outcome(OutcomeKind.CONNECT_ERROR)  # nothing listens: the server never sees it
        self.times.append(now)
        rate = self.scenario.accept_rate
        second = int(now - self.up_at)
        if rate is not None and self._accepted[second] >= rate:
            self.refused["503"] += 1
            return Outcome(OutcomeKind.STATUS, status=503, retry_after=self.scenario.retry_after)
        self._accepted[second] += 1
        return Outcome(OutcomeKind.SUCCESS)


def _client(strategy: Strategy, policy: ReconnectPolicy, clock: ManualClock, rng: random.Random) -> _Client:
    if strategy == "kit":
        return _kit(policy, clock, rng)
    if strategy == "websockets":
        return _delays_then_retry(0.0, websockets_delays(rng))
    return _delays_then_retry(0.0, _forever(1.0))


def _kit(policy: ReconnectPolicy, clock: ManualClock, rng: random.Random) -> _Client:
    """The kit client's reconnect: the close's jittered wait, then the handshake as one engine call."""
    decision = decide_reconnect(policy, 1012, rng)
    if decision.delay > 0:
        yield Wait(decision.delay)
    engine = CallEngine(name="herd", retry=policy.retry_policy(), clock=clock, rng=rng)
    return (yield from engine.call("CONNECT", "ws://herd", idempotent=True))


def _delays_then_retry(first: float, delays: Iterator[float]) -> _Client:
    """A client that waits ``first`` after the close, then retries failed handshakes after each of ``delays``."""
    if first > 0:
        yield Wait(first)
    while True:
        outcome = yield Send(1, None, None)
        if outcome is not None and outcome.kind is OutcomeKind.SUCCESS:
            return outcome
        yield Wait(next(delays))


def _forever(value: float) -> Iterator[float]:
    while True:
        yield value
