"""A queue integration in virtual time: arrivals, an outbox and relay, a broker, consumers, retries, dead letters.

:func:`simulate_queue` plays a :class:`QueueScenario` through a discrete-event model of the kit's own rules (the
same topology retry schedule, max attempts, inbox and pause-on-open-breaker as
:class:`~integration_kit.queues.consumer.Consumer`, and the same breaker,
:class:`~integration_kit.policies.breaker.CircuitBreaker`, on a :class:`~integration_kit.clock.ManualClock`).
It is deterministic for a seed, needs no broker, and runs thousands of messages in milliseconds.

What it models: Poisson arrivals; the outbox (messages wait in the database while the broker is down) or direct
publishing (the publisher's retries give up during a long outage: the message is lost); a relay killed between
publish and mark (the message is published twice); a broker outage (no publishing, no fetching); processing time,
and a slow consumer (a window in which each message takes longer, so a backlog builds and drains after it); a
backlog already waiting when the run starts; transient handler failures and poison messages; a downstream outage
(the breaker opens, and the consumer either pauses or drains the queue into the dead-letter queue); a consumer
crash (its in-flight deliveries come back after the ack wait, some after their effect happened).
"""

from __future__ import annotations

import heapq
import math
import random
from collections import Counter, deque
from dataclasses import dataclass, field
from operator import attrgetter

from integration_kit.clock import ManualClock
from integration_kit.errors import CircuitOpenError, ConfigurationError
from integration_kit.events import CircuitState
from integration_kit.policies.breaker import CircuitBreaker
from integration_kit.policies.config import BreakerPolicy

__all__ = ["MAX_MESSAGES", "QueueResult", "QueueScenario", "QueueSettings", "simulate_queue"]


@dataclass(frozen=True, slots=True)
class QueueSettings:
    """The integration's settings that the model uses (seconds for times).

    Defaults follow :class:`~integration_kit.queues.broker.Topology` and
    :class:`~integration_kit.queues.consumer.Consumer`.
    """

    concurrency: int = 8
    retry_delays: tuple[float, ...] = (1.0, 5.0, 30.0)
    max_attempts: int = 5
    outbox: bool = True
    inbox: bool = True
    pause_on_open_breaker: bool = True
    publish_attempts: int = 5
    publish_deadline: float = 30.0
    relay_interval: float = 0.2
    ack_wait: float = 30.0
    breaker_failures: int = 5
    breaker_wait: float = 5.0


@dataclass(frozen=True, slots=True)
class QueueScenario:
    """One scenario: load, handler behaviour and faults (``*_outage`` and ``slow_consumer`` are ``(start, end)``
    in seconds).

    ``rate`` is arrivals per second over ``duration`` seconds; ``backlog`` messages are already waiting when the run
    starts (a consumer that was down over a deploy). ``processing_time`` is the mean seconds a handler takes
    (exponentially distributed), and ``slow_processing_time`` its mean inside the ``slow_consumer`` window (a slow
    downstream, a cold cache): when ``concurrency / slow_processing_time`` is below ``rate`` the queue grows.
    Raises :class:`~integration_kit.errors.ConfigurationError` (a ``ValueError``) naming the field for a value out
    of range.
    """

    name: str
    duration: float = 120.0
    rate: float = 50.0
    processing_time: float = 0.05
    backlog: int = 0
    slow_consumer: tuple[float, float] | None = None
    slow_processing_time: float = 1.0
    failure_rate: float = 0.0
    poison_rate: float = 0.0
    duplicate_rate: float = 0.0
    broker_outage: tuple[float, float] | None = None
    downstream_outage: tuple[float, float] | None = None
    consumer_crash_at: float | None = None
    description: str = ""

    def __post_init__(self) -> None:
        for name in ("duration", "rate", "processing_time", "slow_processing_time"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigurationError(f"{name} must be a positive number, got {value!r}", field=name)
        for name in ("failure_rate", "poison_rate", "duplicate_rate"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 <= value <= 1):
                raise ConfigurationError(f"{name} must be a fraction between 0 and 1, got {value!r}", field=name)
        if not (isinstance(self.backlog, int) and not isinstance(self.backlog, bool) and 0 <= self.backlog <= 1e6):
            message = f"backlog must be a whole number of messages from 0 to 1000000, got {self.backlog!r}"
            raise ConfigurationError(message, field="backlog")
        expected = self.rate * self.duration + self.backlog
        if expected > MAX_MESSAGES:
            raise ConfigurationError(
                f"rate x duration + backlog must be at most {MAX_MESSAGES:,} messages, got {expected:,.0f}: "
                "shorten the scenario or lower its rate"
            )
        for name in ("broker_outage", "downstream_outage", "slow_consumer"):
            window = getattr(self, name)
            if window is not None and not (len(window) == 2 and 0 <= window[0] < window[1]):
                at = name if len(window) != 2 else f"{name}[0]" if window[0] < 0 else f"{name}[1]"
                message = f"{name} must be [start, end] seconds with start < end, got {window!r}"
                raise ConfigurationError(message, field=at)


@dataclass(slots=True)
class QueueResult:
    """What happened: counts, latencies and a once-a-second time series (``series`` rows are dicts).

    ``thinning`` is the share of the scenario's messages that were played (1.0 in the simulator; a live run of a big
    scenario plays fewer, so its counts and depths are that share of the scenario's)."""

    scenario: str
    messages: int = 0
    poison: int = 0
    applied: int = 0
    applied_twice: int = 0
    lost: int = 0
    dead_poison: int = 0
    dead_good: int = 0
    duplicates_suppressed: int = 0
    redeliveries: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    pauses: int = 0
    series: list[dict[str, float]] = field(default_factory=list)
    thinning: float = 1.0  # the share of the scenario's messages played (a live run may play fewer: queue_live.thin)

    def figures(self) -> dict[str, float | int]:
        """The headline numbers (what objectives are judged on)."""
        lat = sorted(self.latencies)

        def pct(q: float) -> float:
            return lat[min(len(lat) - 1, int(q * len(lat)))] if lat else 0.0

        return {
            "messages": self.messages,
            "applied": self.applied,
            "lost": self.lost,
            "applied_twice": self.applied_twice,
            "dead_letters": self.dead_poison + self.dead_good,
            "dead_poison": self.dead_poison,
            "dead_good": self.dead_good,
            "poison": self.poison,
            "duplicates_suppressed": self.duplicates_suppressed,
            "redeliveries": sum(self.redeliveries.values()),
            "pauses": self.pauses,
            "latency_p50": pct(0.5),
            "latency_p99": pct(0.99),
            "max_depth": max((row["depth"] for row in self.series), default=0),
            "max_lag": max((row["lag"] for row in self.series), default=0.0),
        }


@dataclass(slots=True)
class _Msg:
    id: int
    created: float
    poison: bool
    attempt: int = 1


_created = attrgetter("created")

#: The most messages one scenario may bring (``rate * duration + backlog``): a million simulate in 10 to 20 s.
MAX_MESSAGES = 1_000_000


def simulate_queue(
    scenario: QueueScenario, settings: QueueSettings | None = None, *, seed: int = 0, drain: float = 300.0
) -> QueueResult:
    """Play ``scenario`` and return the result; after ``duration`` arrivals stop and the queue drains (at most
    ``drain`` more seconds, after which unfinished good messages count as lost)."""
    return _Model(scenario, settings or QueueSettings(), random.Random(seed), drain).run()


class _Model:
    def __init__(self, scenario: QueueScenario, settings: QueueSettings, rng: random.Random, drain: float) -> None:
        self.s, self.cfg, self.rng, self.drain = scenario, settings, rng, drain
        self.clock = ManualClock()
        self.breaker = CircuitBreaker(
            BreakerPolicy(
                failure_threshold=settings.breaker_failures,
                failure_rate_threshold=None,
                wait_in_open=settings.breaker_wait,
                half_open_max_calls=1,
            ),
            name="downstream",
            clock=self.clock,
        )
        self.events: list[tuple[float, int, str, _Msg | None]] = []
        self.seq = 0
        self.ready: deque[_Msg] = deque()  # on the broker, in delivery order
        self.outbox: list[_Msg] = []
        self.in_flight: dict[int, _Msg] = {}
        self.scheduled = 0
        self.applied: Counter[int] = Counter()
        self.dead: set[int] = set()
        self.result = QueueResult(scenario.name)
        self.paused = False
        self.crashed_until = -1.0

    def at(self, when: float, kind: str, msg: _Msg | None = None) -> None:
        self.seq += 1
        heapq.heappush(self.events, (when, self.seq, kind, msg))

    @staticmethod
    def _in(window: tuple[float, float] | None, t: float) -> bool:
        return window is not None and window[0] <= t < window[1]

    def run(self) -> QueueResult:
        s = self.s
        self.ready.extend(self._new_message() for _ in range(s.backlog))  # on the broker when the run starts
        t = self.rng.expovariate(s.rate)
        while t < s.duration:
            self.at(t, "arrive")
            t += self.rng.expovariate(s.rate)
        if self.cfg.outbox:
            self.at(self.cfg.relay_interval, "relay")
        self.at(0.0, "sample")
        if s.consumer_crash_at is not None:
            self.at(s.consumer_crash_at, "crash")
        end = s.duration + self.drain
        while self.events:
            when, _, kind, msg = heapq.heappop(self.events)
            if when > end:
                break
            self.clock.set(when)
            getattr(self, f"_{kind}")(msg)
            self._dispatch()
            if when >= s.duration and self._idle():
                break
        self._finish()
        return self.result

    def _idle(self) -> bool:
        return not (self.ready or self.outbox or self.in_flight or self.scheduled)

    # -- producing ----------------------------------------------------------------------------------------------

    def _new_message(self) -> _Msg:
        r = self.result
        msg = _Msg(r.messages, self.clock.now(), self.rng.random() < self.s.poison_rate)
        r.messages += 1
        r.poison += msg.poison
        return msg

    def _arrive(self, _: _Msg | None) -> None:
        msg = self._new_message()
        if self.cfg.outbox:
            self.outbox.append(msg)
            return
        # Direct publishing: the engine retries while the broker is down, within its attempts and deadline.
        outage = self.s.broker_outage
        if self._in(outage, msg.created):
            assert outage is not None
            give_up = msg.created + min(self.cfg.publish_deadline, 0.2 * (2**self.cfg.publish_attempts - 1))
            if give_up < outage[1]:
                return  # the publisher gave up: the message is lost (the business change committed without it)
            self.at(outage[1], "publish", msg)
            self.scheduled += 1
            return
        self._enqueue(msg)

    def _publish(self, msg: _Msg | None) -> None:
        assert msg is not None
        self.scheduled -= 1
        self._enqueue(msg)

    def _enqueue(self, msg: _Msg) -> None:
        self.ready.append(msg)
        if self.rng.random() < self.s.duplicate_rate:  # published twice (a relay killed before marking it sent)
            self.ready.append(_Msg(msg.id, msg.created, msg.poison))

    def _relay(self, _: _Msg | None) -> None:
        now = self.clock.now()
        if not self._in(self.s.broker_outage, now):
            for msg in self.outbox:
                self._enqueue(msg)
            self.outbox.clear()
        if now < self.s.duration + self.drain:
            self.at(now + self.cfg.relay_interval, "relay")

    # -- consuming ----------------------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        now = self.clock.now()
        if self._in(self.s.broker_outage, now) or now < self.crashed_until:
            return
        while self.ready and len(self.in_flight) < self.cfg.concurrency:
            if self.cfg.pause_on_open_breaker:
                state = self.breaker.state
                if state is CircuitState.OPEN:
                    if not self.paused:
                        self.paused = True
                        self.result.pauses += 1
                    retry_at = self.breaker.retry_at
                    self.at(retry_at if retry_at is not None else now + 1.0, "wake")
                    return
                if state is CircuitState.HALF_OPEN and self.in_flight:
                    return
                self.paused = False
            msg = self.ready.popleft()
            self.in_flight[id(msg)] = msg
            mean = self.s.slow_processing_time if self._in(self.s.slow_consumer, now) else self.s.processing_time
            self.at(now + self.rng.expovariate(1 / mean), "done", msg)

    def _wake(self, _: _Msg | None) -> None:
        return None  # a chance to dispatch again (the breaker may be half-open now)

    def _done(self, msg: _Msg | None) -> None:
        assert msg is not None
        if self.in_flight.pop(id(msg), None) is None:
            return  # abandoned by a crash
        now = self.clock.now()
        if msg.poison:
            self._dead(msg)
            return
        if self.cfg.inbox and self.applied[msg.id]:
            self.result.duplicates_suppressed += 1
            return
        try:
            permit = self.breaker.acquire()
        except CircuitOpenError:
            self._retry(msg, now, open_breaker=True)
            return
        failed = self._in(self.s.downstream_outage, now) or self.rng.random() < self.s.failure_rate
        if failed:
            permit.record_failure(0.0)
            # A failure that leaves the breaker open (it tripped it, or was the failed probe) uses no attempt when
            # the consumer pauses: the Consumer requeues it as it does a message that met the open breaker.
            self._retry(msg, now, open_breaker=self.breaker.state is CircuitState.OPEN)
            return
        permit.record_success(0.0)
        self.applied[msg.id] += 1
        self.result.latencies.append(now - msg.created)

    def _retry(self, msg: _Msg, now: float, *, open_breaker: bool = False) -> None:
        if open_breaker and self.cfg.pause_on_open_breaker:
            self.ready.appendleft(msg)  # requeued: no attempt used
            return
        if msg.attempt >= self.cfg.max_attempts:
            self._dead(msg)
            return
        delays = self.cfg.retry_delays
        msg.attempt += 1
        self.result.redeliveries[msg.attempt] += 1
        self.scheduled += 1
        self.at(now + delays[min(msg.attempt - 1, len(delays)) - 1], "redeliver", msg)

    def _redeliver(self, msg: _Msg | None) -> None:
        assert msg is not None
        self.scheduled -= 1
        self.ready.append(msg)

    def _dead(self, msg: _Msg) -> None:
        if msg.id in self.dead:
            return
        self.dead.add(msg.id)
        if msg.poison:
            self.result.dead_poison += 1
        else:
            self.result.dead_good += 1

    def _crash(self, _: _Msg | None) -> None:
        now = self.clock.now()
        self.crashed_until = now + 5.0  # the consumer restarts after 5 s
        for msg in self.in_flight.values():
            if not msg.poison and self.rng.random() < 0.5 and not (self.cfg.inbox and self.applied[msg.id]):
                self.applied[msg.id] += 1  # its effect happened (and, with the inbox, was recorded with it)
            self.scheduled += 1
            self.at(now + self.cfg.ack_wait, "redeliver", msg)
        self.in_flight.clear()
        self.at(self.crashed_until, "wake")

    def _sample(self, _: _Msg | None) -> None:
        now = self.clock.now()
        oldest = min(map(_created, self.ready), default=now)
        self.result.series.append(
            {
                "t": now,
                "depth": len(self.ready) + self.scheduled,
                "outbox": len(self.outbox),
                "in_flight": len(self.in_flight),
                "lag": now - oldest,
                "paused": float(self.paused),
                "applied": float(sum(1 for c in self.applied.values() if c)),
            }
        )
        if now < self.s.duration + self.drain and not (now >= self.s.duration and self._idle()):
            self.at(now + 1.0, "sample")

    def _finish(self) -> None:
        r = self.result
        r.applied = sum(1 for c in self.applied.values() if c)
        r.applied_twice = sum(1 for c in self.applied.values() if c > 1)
        good = r.messages - r.poison
        r.lost = max(0, good - r.applied - r.dead_good)
