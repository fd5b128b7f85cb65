"""Queue integration specs (``kind = "queue"``): the spec, its checklist, design document, objectives and run.

A queue spec (``data/integrations/order-events-consumer.toml`` is the bundled one; ``data/README.md`` documents
every field) says which broker and queue, the role (publisher, consumer or both), prefetch and concurrency, the
retry schedule and max attempts, the dead-letter queue, whether the outbox and the inbox are on, whether the
consumer pauses on an open breaker, the objectives, and the scenarios. It goes through the same playbook as every
kind (:mod:`integration_kit.playbook.kinds.queue.kind`): messages lost = 0 and effects applied twice = 0 always apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

from integration_kit.errors import ConfigurationError
from integration_kit.playbook.kinds.files import is_name, read_spec
from integration_kit.playbook.kinds.protocol import CheckItem
from integration_kit.policies.tables import check_table
from integration_kit.queues.broker import Topology
from integration_kit.queues.sim import QueueResult, QueueScenario, QueueSettings

__all__ = [
    "FIGURES",
    "Objective",
    "QueueSpec",
    "judge",
    "load_queue_spec",
    "queue_checklist",
    "queue_design_document",
]

Role = Literal["publisher", "consumer", "both"]
BrokerKind = Literal["rabbitmq", "jetstream"]

_SETTINGS = {f.name for f in fields(QueueSettings)}
_BROKER = {"kind", "exchange", "routing_key"}
_QUEUE = {"name", "retry_delays", "max_attempts", "dead_letter"}
_CONSUMER = (_SETTINGS - _QUEUE) | {"prefetch"}  # the retry schedule and attempts are the queue's
#: The figures a queue run measures (:meth:`~integration_kit.queues.sim.QueueResult.figures`), each a possible
#: objective; ``messages``, ``applied`` and ``poison`` are counts of the load, not objectives.
FIGURES = tuple(k for k in QueueResult("").figures() if k not in ("messages", "applied", "poison"))
_SCENARIO = {f.name for f in fields(QueueScenario)}


@dataclass(frozen=True, slots=True)
class Objective:
    """A figure and its highest allowed value (``lost <= 0``), with whether a run met it."""

    figure: str
    limit: float
    value: float | None = None

    @property
    def met(self) -> bool:
        """Whether the value is within the limit (an objective without a value is not met)."""
        return self.value is not None and self.value <= self.limit


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """One queue integration, loaded and validated (see the module docstring)."""

    name: str
    description: str
    owner: str
    role: Role
    broker: BrokerKind
    topology: Topology
    exchange: str
    routing_key: str
    prefetch: int
    settings: QueueSettings
    objectives: Mapping[str, float]
    scenarios: tuple[QueueScenario, ...]
    path: Path | None = None
    kind: str = field(default="queue")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "<inline>", path: Path | None = None) -> QueueSpec:
        """Build and validate a queue spec; every error is a ConfigurationError naming the source and field."""
        return _build(data, source, path)


def _build(data: Mapping[str, Any], source: str, path: Path | None) -> QueueSpec:  # noqa: C901, PLR0912, PLR0915 - one check per field
    def fail(name: str, reason: str) -> ConfigurationError:
        return ConfigurationError(f"{source}: {name}: {reason}", field=name)

    known = {"kind", "name", "description", "owner", "role", "broker", "queue", "consumer", "objectives", "scenario"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise fail(unknown[0], f"unknown field (expected one of {', '.join(sorted(known))})")
    if data.get("kind") != "queue":
        raise fail("kind", f"must be 'queue' for a queue spec, got {data.get('kind', 'http')!r}")
    name = data.get("name")
    if not is_name(name):
        raise fail("name", f"must be lower-case letters, digits, '-' or '_', got {name!r}")
    role = data.get("role", "both")
    if role not in get_args(Role):
        raise fail("role", f"must be one of {', '.join(get_args(Role))}, got {role!r}")
    broker = data.get("broker", {})
    if not isinstance(broker, Mapping):
        raise fail("broker", "must be a table")
    kind = broker.get("kind", "rabbitmq")
    if kind not in get_args(BrokerKind):
        raise fail("broker.kind", f"must be one of {', '.join(get_args(BrokerKind))}, got {kind!r}")
    queue = data.get("queue", {})
    consumer = data.get("consumer", {})
    if not isinstance(queue, Mapping) or not isinstance(consumer, Mapping):
        raise fail("queue" if not isinstance(queue, Mapping) else "consumer", "must be a table")
    for table, given, allowed in (
        ("broker", broker, _BROKER),
        ("queue", queue, _QUEUE),
        ("consumer", consumer, _CONSUMER),
    ):
        extra = sorted(set(given) - allowed)
        if extra:
            raise fail(f"{table}.{extra[0]}", f"unknown field (expected one of {', '.join(sorted(allowed))})")
    for table, given, checked in (("consumer", consumer, QueueSettings), ("queue", queue, Topology)):
        try:
            check_table(checked, given, owner=table)
        except ConfigurationError as exc:
            raise fail(exc.under(table).field or table, exc.under(table).reason) from None
    try:
        topology = Topology(
            queue.get("name", ""),
            retry_delays=tuple(float(d) for d in queue.get("retry_delays", (1.0, 5.0, 30.0))),
            max_attempts=queue.get("max_attempts", 5),
            dead_letter=queue.get("dead_letter", ""),
        )
    except ConfigurationError as exc:
        raise fail(exc.under("queue").field or "queue", exc.reason) from None
    if kind == "jetstream" and "." in topology.name:
        raise fail("queue.name", "a JetStream stream name has no dots")
    prefetch = consumer.get("prefetch", 32)
    values = {k: v for k, v in consumer.items() if k != "prefetch"}
    values["retry_delays"] = topology.retry_delays
    values["max_attempts"] = topology.max_attempts
    try:
        settings = QueueSettings(**values)
    except TypeError as exc:
        raise fail("consumer", str(exc)) from None
    if not isinstance(prefetch, int) or prefetch < settings.concurrency:
        raise fail("consumer.prefetch", f"must be an integer >= concurrency ({settings.concurrency}), got {prefetch!r}")
    objectives = {"lost": 0.0, "applied_twice": 0.0}
    given = data.get("objectives", {})
    if not isinstance(given, Mapping):
        raise fail("objectives", "must be a table of figure = highest allowed value")
    for key, limit in given.items():
        if key not in FIGURES:
            raise fail(f"objectives.{key}", f"unknown figure (expected one of {', '.join(FIGURES)})")
        if not isinstance(limit, (int, float)) or isinstance(limit, bool) or limit < 0:
            raise fail(f"objectives.{key}", f"must be a number >= 0, got {limit!r}")
        if key in ("lost", "applied_twice") and limit != 0:
            raise fail(f"objectives.{key}", "must be 0: a queue integration never loses or doubles an effect")
        objectives[key] = float(limit)
    raw = data.get("scenario", [])
    if not isinstance(raw, list) or not raw:
        raise fail("scenario", "list at least one [[scenario]] to exercise the integration against")
    scenarios: list[QueueScenario] = []
    for i, entry in enumerate(raw):
        bad = sorted(set(entry) - _SCENARIO) if isinstance(entry, Mapping) else ["(not a table)"]
        if bad:
            raise fail(f"scenario[{i}].{bad[0]}", f"unknown field (expected one of {', '.join(sorted(_SCENARIO))})")
        label = f"scenario[{i}]"
        scenario_name = entry.get("name")
        if not is_name(scenario_name):  # it names the run's chart files
            raise fail(f"{label}.name", f"must be lower-case letters, digits, '-' or '_', got {scenario_name!r}")
        if any(s.name == scenario_name for s in scenarios):
            raise fail(f"{label}.name", f"another scenario has this name ({scenario_name})")
        try:
            check_table(QueueScenario, entry, owner=label)
            values = {k: tuple(v) if isinstance(v, list) else v for k, v in entry.items()}
            scenarios.append(QueueScenario(**values))
        except ConfigurationError as exc:
            located = exc.under(label)
            raise fail(located.field or label, f"{located.reason} (scenario {scenario_name!r})") from None
    return QueueSpec(
        name=name,
        description=str(data.get("description", "")).strip(),
        owner=str(data.get("owner", "")),
        role=role,
        broker=kind,
        topology=topology,
        exchange=str(broker.get("exchange", "")),
        routing_key=str(broker.get("routing_key", "")),
        prefetch=prefetch,
        settings=settings,
        objectives=objectives,
        scenarios=tuple(scenarios),
        path=path,
    )


def load_queue_spec(name: str | Path, *, directory: str | Path | None = None) -> QueueSpec:
    """Load and validate a queue spec by name (``data/integrations/<name>.toml``) or by path.

    Raises :class:`~integration_kit.errors.ConfigurationError` for a bad or unknown name (see
    :func:`~integration_kit.playbook.kinds.files.spec_path`), an invalid spec or one of another kind.
    """
    return read_spec(name, QueueSpec.from_mapping, directory=directory)


def queue_checklist(spec: QueueSpec) -> list[CheckItem]:
    """The queue checklist: one item per rule, each checked against the spec."""
    s, t = spec.settings, spec.topology
    produces = spec.role in ("publisher", "both")
    consumes = spec.role in ("consumer", "both")
    return [
        CheckItem("confirms", "Publishes wait for the broker's confirm", True, "every publish runs under the engine"),
        CheckItem(
            "outbox",
            "Messages are written in the business transaction (outbox)",
            s.outbox or not produces,
            "outbox on" if s.outbox else "outbox off: a message is lost if the broker is down past the retries",
        ),
        CheckItem("manual-ack", "Acknowledged only after the handler returns", True, "the kit's Consumer acks after"),
        CheckItem(
            "bounded-prefetch",
            "Prefetch and concurrency are bounded",
            spec.prefetch <= 1000 and s.concurrency <= spec.prefetch,
            f"prefetch {spec.prefetch}, concurrency {s.concurrency}",
        ),
        CheckItem(
            "delayed-retry",
            "Retries are delayed redeliveries with growing waits",
            list(t.retry_delays) == sorted(t.retry_delays) and t.retry_delays[0] >= 0.1,
            f"waits {', '.join(f'{d:g}s' for d in t.retry_delays)}",
        ),
        CheckItem(
            "dead-letters",
            "Poison and exhausted messages go to a dead-letter queue",
            bool(t.dead_letter) and 2 <= t.max_attempts <= 20,
            f"{t.max_attempts} attempts, then {t.dead_letter}",
        ),
        CheckItem(
            "inbox",
            "Duplicates are suppressed by an inbox",
            s.inbox or not consumes,
            "inbox on" if s.inbox else "inbox off: a redelivered message applies its effect again",
        ),
        CheckItem(
            "pause",
            "The consumer pauses while the downstream breaker is open",
            s.pause_on_open_breaker or not consumes,
            "pause" if s.pause_on_open_breaker else "drain: a downstream outage fills the dead-letter queue",
        ),
        _capacity(spec) if consumes else CheckItem("capacity", "Consumers keep up with arrivals", True, "no consumer"),
    ]


def _capacity(spec: QueueSpec) -> CheckItem:
    """Whether ``concurrency`` handlers at each scenario's normal ``processing_time`` apply messages faster than
    they arrive (a slow-consumer window may fall behind: the backlog it builds must drain after it)."""
    concurrency = spec.settings.concurrency
    headroom = min(concurrency / (s.processing_time * s.rate) for s in spec.scenarios)
    worst = min(spec.scenarios, key=lambda s: concurrency / (s.processing_time * s.rate))
    return CheckItem(
        "capacity",
        "Consumers keep up with arrivals",
        headroom > 1,
        f"{concurrency} handlers at {worst.processing_time:g} s apply {concurrency / worst.processing_time:g} a second "
        f"against {worst.rate:g} arriving in {worst.name!r} ({headroom:.1f}x)",
    )


def queue_design_document(spec: QueueSpec) -> str:
    """The design document of a queue integration, in Markdown."""
    t, s = spec.topology, spec.settings
    rows = [
        ("broker", spec.broker),
        ("queue / stream", t.name),
        ("exchange", spec.exchange or "(default)"),
        ("routing key", spec.routing_key or "(none)"),
        ("prefetch", str(spec.prefetch)),
        ("concurrency", str(s.concurrency)),
        ("retry delays", ", ".join(f"{d:g} s" for d in t.retry_delays)),
        ("max attempts", str(t.max_attempts)),
        ("dead-letter queue", t.dead_letter),
        ("outbox", "on" if s.outbox else "off"),
        ("inbox", "on" if s.inbox else "off"),
        ("downstream breaker", "pause" if s.pause_on_open_breaker else "drain"),
    ]
    lines = [f"# {spec.name}", "", spec.description, "", f"Role: {spec.role}. Owner: {spec.owner or '-'}.", ""]
    lines += ["| setting | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows), "", "## Checklist", ""]
    lines += [f"- {i.mark} {i.title}: {i.detail}" for i in queue_checklist(spec)]
    lines += ["", "## Objectives", "", *(f"- {k} <= {v:g}" for k, v in spec.objectives.items())]
    return "\n".join(lines) + "\n"


def judge(spec: QueueSpec, figures: Mapping[str, float | int]) -> list[Objective]:
    """The spec's objectives, each with the run's value."""
    return [Objective(k, v, float(figures[k]) if k in figures else None) for k, v in spec.objectives.items()]
