"""Queue integration specs (``kind = "queue"``): the spec, its checklist, design document, objectives and run.

A queue spec (``data/integrations/order-events-consumer.toml`` is the bundled one; ``data/README.md`` documents
every field) says which broker and queue, the role (publisher, consumer or both), prefetch and concurrency, the
retry schedule and max attempts, the dead-letter queue, whether the outbox and the inbox are on, whether the
consumer pauses on an open breaker, the objectives, and the scenarios. :func:`run_queue_playbook` simulates every
scenario in virtual time (:func:`~integration_kit.queues.sim.simulate_queue`), judges the objectives (messages
lost = 0 and effects applied twice = 0 always apply) and writes the design document, the summary, the charts and
an HTML report into the run folder.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from integration_kit.errors import ConfigurationError
from integration_kit.playbook.design import CheckItem
from integration_kit.playbook.spec import is_name, read_spec
from integration_kit.policies.tables import check_table
from integration_kit.queues.broker import Topology
from integration_kit.queues.errors import BrokerUnavailable
from integration_kit.queues.sim import QueueResult, QueueScenario, QueueSettings, simulate_queue

if TYPE_CHECKING:
    from integration_kit.playbook.runner import PlaybookRun

__all__ = [
    "FIGURES",
    "LIVE_TIME_SCALE",
    "Objective",
    "QueueSpec",
    "judge",
    "load_queue_spec",
    "queue_checklist",
    "queue_design_document",
    "run_queue",
    "run_queue_playbook",
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
        raise fail(exc.under("queue").field or "queue", exc.message) from None
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
    :func:`~integration_kit.playbook.spec.spec_path`), an invalid spec or one of another kind.
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


def run_queue_playbook(
    spec: QueueSpec,
    run_dir: Path,
    *,
    seed: int = 0,
    play: Callable[[QueueScenario], QueueResult] | None = None,
    live: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Play every scenario, judge the objectives, write design.md, summary.json, charts and report.html.

    ``play`` plays one scenario; default: simulated in virtual time (:func:`~integration_kit.queues.sim.simulate_queue`
    with ``seed``). ``live`` describes a live run for the summary and the report (broker, time scale, message cap).
    Returns the summary (also in ``summary.json``): per scenario its figures, the share of its messages played
    (``thinning``) and its objectives, and ``ok``.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "design.md").write_text(queue_design_document(spec))
    results: dict[str, QueueResult] = {}
    mode = "simulate" if play is None else "live"
    summary: dict[str, Any] = {"integration": spec.name, "kind": "queue", "mode": mode, "scenarios": {}}
    if live is not None:
        summary["live"] = dict(live)
    ok = True
    for scenario in spec.scenarios:
        result = play(scenario) if play is not None else simulate_queue(scenario, spec.settings, seed=seed)
        results[scenario.name] = result
        figures = result.figures()
        verdict = judge(spec, figures)
        ok = ok and all(o.met for o in verdict)
        summary["scenarios"][scenario.name] = {
            **figures,
            "calls": figures["messages"],  # the columns of the run table, in queue terms
            "success_rate": figures["applied"] / max(1, figures["messages"] - figures["poison"]),
            "rejected": figures["dead_letters"],
            "amplification": (figures["messages"] + figures["redeliveries"]) / max(1, figures["messages"]),
            "thinning": result.thinning,
            "objectives": [{"figure": o.figure, "limit": o.limit, "value": o.value, "met": o.met} for o in verdict],
        }
    summary["ok"] = ok
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    images = _charts(results, run_dir)
    (run_dir / "report.html").write_text(_report(spec, summary, images))
    return summary


#: How many times faster than real time a live queue run plays its scenarios by default (20: a 3-minute scenario
#: in 9 s); HTTP and webhook runs default to 10.
LIVE_TIME_SCALE = 20.0


def run_queue(
    spec: QueueSpec,
    *,
    mode: str,
    out: str | Path,
    seed: int,
    strict: bool,
    run_id: str | None,
    time_scale: float | None = None,
    scenario: str = "all",
    duration: float | None = None,
    max_messages: int = 400,
) -> PlaybookRun:
    """:func:`~integration_kit.playbook.runner.run_playbook` for a queue spec, into ``<out>/<name>/<run id>/``;
    the run fails when an objective is not met (always: lost and applied twice must be 0). ``strict`` also fails it
    on a checklist item. ``scenario`` picks one of the spec's scenarios (default all); ``duration`` (scenario
    seconds) replaces each scenario's. ``mode`` ``"simulate"`` plays the scenarios in virtual time; ``"live"``
    plays each on the spec's broker (:func:`~integration_kit.playbook.queue_live.play_on_broker`:
    ``INTEGRATION_KIT_AMQP_URL`` or ``INTEGRATION_KIT_NATS_URL``, a uniquely named topology created and deleted),
    ``time_scale`` times faster than real time (default :data:`LIVE_TIME_SCALE`), with at most ``max_messages``
    messages per scenario (bigger scenarios are thinned: :func:`~integration_kit.playbook.queue_live.thin`).
    Raises ``ConfigurationError`` for another mode, an unknown scenario, a duration or time scale that is not
    positive, and in live mode without the ``queues`` extra installed or when the broker cannot be reached."""
    from integration_kit.playbook.runner import PlaybookRun, new_run_id

    if mode not in ("simulate", "live"):
        raise ConfigurationError(f"{spec.name}: a queue integration runs in simulate or live mode, got {mode!r}")
    spec = _chosen(spec, scenario, duration)
    if mode == "live":
        try:
            import integration_kit.playbook.queue_live  # noqa: F401 - the brokers' clients, before any run starts
        except ImportError as exc:
            raise ConfigurationError(
                f"{spec.name}: live mode needs the queues extra (aio-pika, nats-py): "
                f"pip install -e '.[queues]' ({exc.name or exc} is missing)"
            ) from None
    scale = LIVE_TIME_SCALE if time_scale is None else time_scale
    if not scale > 0:
        raise ConfigurationError(f"{spec.name}: time_scale must be a positive number, got {time_scale!r}")
    run_dir = Path(out) / spec.name / (run_id or new_run_id())
    play = _live_player(spec, run_dir, 1.0 / scale, seed, max_messages) if mode == "live" else None
    live = {"broker": spec.broker, "time_scale": scale, "max_messages": max_messages} if mode == "live" else None
    try:
        summary = run_queue_playbook(spec, run_dir, seed=seed, play=play, live=live)
    except BrokerUnavailable as exc:
        raise ConfigurationError(f"{spec.name}: live mode needs its {spec.broker} broker: {exc}") from exc
    error = None if summary["ok"] else "objectives not met (see report.html)"
    failed = [item.key for item in queue_checklist(spec) if not item.passed]
    if strict and failed:
        error = f"checklist items failed: {', '.join(failed)}"
    return PlaybookRun(spec.name, run_dir, summary, run_dir / "report.html", error)


def _chosen(spec: QueueSpec, scenario: str, duration: float | None) -> QueueSpec:
    """``spec`` with only ``scenario`` (``"all"``: every one), each lasting ``duration`` seconds when given."""
    scenarios = spec.scenarios
    if scenario != "all":
        scenarios = tuple(s for s in scenarios if s.name == scenario)
        if not scenarios:
            names = ", ".join(s.name for s in spec.scenarios)
            raise ConfigurationError(f"{spec.name}: no scenario {scenario!r} (the spec has: {names})")
    if duration is not None:
        if not (isinstance(duration, (int, float)) and duration > 0):
            raise ConfigurationError(f"{spec.name}: duration must be a positive number of seconds, got {duration!r}")
        scenarios = tuple(replace(s, duration=float(duration)) for s in scenarios)
    return replace(spec, scenarios=scenarios)


def _live_player(
    spec: QueueSpec, run_dir: Path, time_scale: float, seed: int, max_messages: int
) -> Callable[[QueueScenario], QueueResult]:
    """Play one scenario live on the spec's broker, its SQLite files under ``<run_dir>/live/<scenario>/``."""
    from integration_kit.playbook.queue_live import play_on_broker

    def play(scenario: QueueScenario) -> QueueResult:
        folder = run_dir / "live" / scenario.name
        return play_on_broker(
            spec.broker,
            spec.topology,
            scenario,
            spec.settings,
            folder=folder,
            time_scale=time_scale,
            seed=seed,
            max_messages=max_messages,
        )

    return play


def _charts(results: Mapping[str, QueueResult], run_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    for name, result in results.items():
        fig, (depth, lag) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
        t = [row["t"] for row in result.series]
        depth.plot(t, [row["depth"] for row in result.series], label="queue depth")
        depth.plot(t, [row["outbox"] for row in result.series], label="outbox depth")
        depth.legend(loc="upper right")
        depth.set_ylabel("messages")
        lag.plot(t, [row["lag"] for row in result.series], color="tab:red")
        lag.set_ylabel("consumer lag (s)")
        lag.set_xlabel("virtual time (s)")
        fig.suptitle(f"{name}: depth and lag")
        file = f"{name}-depth.png"
        fig.savefig(run_dir / file, dpi=80)
        plt.close(fig)
        names.append(file)
    fig, (redelivered, settled, latency) = plt.subplots(1, 3, figsize=(12, 3.5))
    labels = list(results)
    attempts = sorted({a for r in results.values() for a in r.redeliveries})
    width = 0.8 / max(1, len(labels))
    for i, (name, result) in enumerate(results.items()):
        redelivered.bar(
            [a + i * width for a in attempts], [result.redeliveries[a] for a in attempts], width, label=name
        )
    redelivered.set_title("redeliveries by attempt")
    redelivered.set_xlabel("attempt")
    redelivered.legend(fontsize="x-small")
    x = range(len(labels))
    settled.bar([i - 0.2 for i in x], [r.dead_poison + r.dead_good for r in results.values()], 0.4, label="dead")
    settled.bar([i + 0.2 for i in x], [r.duplicates_suppressed for r in results.values()], 0.4, label="duplicates")
    settled.set_title("dead letters, duplicates suppressed")
    settled.set_xticks(list(x), labels, rotation=20, fontsize="x-small")
    settled.legend(fontsize="x-small")
    figures = [r.figures() for r in results.values()]
    latency.bar([i - 0.2 for i in x], [f["latency_p50"] for f in figures], 0.4, label="p50")
    latency.bar([i + 0.2 for i in x], [f["latency_p99"] for f in figures], 0.4, label="p99")
    latency.set_title("end-to-end latency (s)")
    latency.set_xticks(list(x), labels, rotation=20, fontsize="x-small")
    latency.legend(fontsize="x-small")
    fig.tight_layout()
    fig.savefig(run_dir / "summary.png", dpi=80)
    plt.close(fig)
    return ["summary.png", *names]


def _report(spec: QueueSpec, summary: Mapping[str, Any], images: list[str]) -> str:
    verdict = "all objectives met" if summary["ok"] else "objectives NOT met"
    rows = []
    for name, figures in summary["scenarios"].items():
        for o in figures["objectives"]:
            value = "-" if o["value"] is None else f"{o['value']:.4g}"
            rows.append(
                f"<tr><td>{html.escape(name)}</td><td>{html.escape(o['figure'])}</td>"
                f"<td>{value}</td><td>&le; {o['limit']:g}</td><td>{'met' if o['met'] else 'NOT met'}</td></tr>"
            )
    mode = html.escape(str(summary.get("mode", "simulate")))
    live = summary.get("live")
    if live:
        mode += (
            f" on {html.escape(str(live['broker']))}, {live['time_scale']:g} times faster than real time, at most "
            f"{live['max_messages']:,} messages per scenario"
        )
    thinned = [
        f"{html.escape(name)}: {f['thinning']:.1%} of its messages"
        for name, f in summary["scenarios"].items()
        if f.get("thinning", 1.0) < 1.0
    ]
    if thinned:
        mode += (
            ". Thinned (arrivals and backlog cut, processing stretched, so utilisation, lag and latency are the "
            "scenario's, while counts and depths are that share of it): " + "; ".join(thinned)
        )
    body = "\n".join(rows)
    pictures = "\n".join(f'<p><img src="{html.escape(i)}" alt="{html.escape(i)}"></p>' for i in images)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(spec.name)}</title></head><body>"
        f"<h1>{html.escape(spec.name)}: {verdict}</h1><p>{html.escape(spec.description)}</p>"
        f"<p>mode: {mode}</p><p>Latencies and lag in seconds.</p>"
        "<table border='1'><tr><th>scenario</th><th>figure</th><th>value</th><th>objective</th><th></th></tr>"
        f"{body}</table>{pictures}<pre>{html.escape(queue_design_document(spec))}</pre></body></html>\n"
    )
