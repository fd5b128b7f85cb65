"""WebSocket integration specs (``kind = "websocket"``): the spec, its checklist, design document and objectives.

A WebSocket spec (``data/integrations/market-prices.toml`` is the bundled one) says where the feed is (``url``),
the *name* of the environment variable holding its token (``auth_env``), keepalive (``ping_interval``,
``ping_timeout``) and staleness (``stale_after``), the reconnect policy
(:class:`~integration_kit.websocket.reconnect.ReconnectPolicy`), the feed (subscription messages, the sequence
field, the gap strategy: ``resume``, ``resync`` or ``none``, the outgoing queue), the objectives and the scenarios
(:class:`WsScenario`: a restart of many clients, in the terms of
:class:`~integration_kit.sim.ws_herd.HerdScenario`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

from integration_kit.errors import ConfigurationError
from integration_kit.playbook.kinds.files import is_name
from integration_kit.playbook.kinds.protocol import CheckItem, env_presence
from integration_kit.sim.ws_herd import HerdScenario
from integration_kit.websocket.config import WebSocketConfig
from integration_kit.websocket.reconnect import ReconnectPolicy

__all__ = ["FIGURES", "GapStrategy", "WebSocketSpec", "WsScenario", "ws_checklist", "ws_design_document"]

GapStrategy = Literal["resume", "resync", "none"]

#: The figures a run measures, each a possible objective (a ceiling), with its unit.
FIGURES: dict[str, str] = {
    "messages_lost": "count",
    "duplicates_delivered": "count",
    "disconnected_p99": "s",
    "stall_detect": "s",
    "peak_handshakes": "count",
}
_TOP = {"kind", "name", "description", "owner", "url", "auth_env", "keepalive", "reconnect", "feed", "objectives"}
_KEEPALIVE = {"ping_interval", "ping_timeout", "stale_after"}
_FEED = {"subscribe", "sequence_field", "gap_strategy", "outgoing_limit", "outgoing"}
#: Where a field of the client's configuration sits in the spec file.
_WHERE = {
    "ping_interval": "keepalive.ping_interval",
    "ping_timeout": "keepalive.ping_timeout",
    "stale_after": "keepalive.stale_after",
    "sequence": "feed.sequence_field",
    "subscribe": "feed.subscribe",
    "outgoing_limit": "feed.outgoing_limit",
    "outgoing": "feed.outgoing",
}
_SCENARIO = {
    "name",
    "description",
    "clients",
    "rate",
    "restart_at",
    "downtime",
    "accept_rate",
    "retry_after",
    "horizon",
}


@dataclass(frozen=True, slots=True)
class WsScenario:
    """A scenario: ``name`` and ``description``, and the restart it plays (:class:`HerdScenario`)."""

    name: str
    description: str
    herd: HerdScenario


@dataclass(frozen=True, slots=True)
class WebSocketSpec:
    """One WebSocket integration, loaded and validated (see the module docstring)."""

    name: str
    description: str
    owner: str
    url: str
    auth_env: str | None
    ping_interval: float | None
    ping_timeout: float | None
    stale_after: float | None
    reconnect: ReconnectPolicy
    subscribe: tuple[str, ...]
    sequence_field: str | None
    gap_strategy: GapStrategy
    outgoing_limit: int
    outgoing: str
    objectives: Mapping[str, float]
    scenarios: tuple[WsScenario, ...]
    path: Path | None = None
    kind: str = field(default="websocket")

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], *, source: str = "<inline>", path: Path | None = None
    ) -> WebSocketSpec:
        """Build and validate a spec; every error is a ConfigurationError naming the source and the field."""
        return _build(data, source, path)

    def client_config(self, url: str | None = None) -> WebSocketConfig:
        """The client's :class:`~integration_kit.websocket.WebSocketConfig` (``url`` replaces the spec's, for a
        live run against the flaky feed)."""
        return WebSocketConfig(
            url=url or self.url,
            name=self.name,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            stale_after=self.stale_after,
            reconnect=self.reconnect,
            subscribe=self.subscribe,
            sequence=self.sequence_field,
            outgoing_limit=self.outgoing_limit,
            outgoing="fail" if self.outgoing == "fail" else "wait",
        )


def _build(data: Mapping[str, Any], source: str, path: Path | None) -> WebSocketSpec:  # noqa: C901 - one check per field
    def fail(name: str, reason: str) -> ConfigurationError:
        return ConfigurationError(f"{source}: {name}: {reason}", field=name)

    def table(name: str, allowed: set[str]) -> Mapping[str, Any]:
        value = data.get(name, {})
        if not isinstance(value, Mapping):
            raise fail(name, "must be a table")
        if extra := sorted(set(value) - allowed):
            raise fail(f"{name}.{extra[0]}", f"unknown field (expected one of {', '.join(sorted(allowed))})")
        return value

    if unknown := sorted(set(data) - _TOP - {"scenario"}):
        raise fail(unknown[0], f"unknown field (expected one of {', '.join(sorted(_TOP | {'scenario'}))})")
    if data.get("kind") != "websocket":
        raise fail("kind", f"must be 'websocket' for a WebSocket spec, got {data.get('kind', 'http')!r}")
    name = data.get("name")
    if not is_name(name):
        raise fail("name", f"must be lower-case letters, digits, '-' or '_', got {name!r}")
    auth_env = data.get("auth_env")
    if auth_env is not None and (not isinstance(auth_env, str) or not auth_env.isidentifier()):
        raise fail("auth_env", f"must name an environment variable, got {auth_env!r}")
    keepalive = table("keepalive", _KEEPALIVE)
    feed = table("feed", _FEED)
    reconnect_table = table("reconnect", set(ReconnectPolicy.__dataclass_fields__))
    try:
        reconnect = ReconnectPolicy.from_mapping(reconnect_table)
    except ConfigurationError as exc:
        raise fail(exc.under("reconnect").field or "reconnect", exc.reason) from None
    gap = feed.get("gap_strategy", "resume")
    if gap not in get_args(GapStrategy):
        raise fail("feed.gap_strategy", f"must be one of {', '.join(get_args(GapStrategy))}, got {gap!r}")
    sequence_field = feed.get("sequence_field")
    if sequence_field is not None and (not isinstance(sequence_field, str) or not sequence_field):
        raise fail("feed.sequence_field", f"must name a field of the messages, got {sequence_field!r}")
    subscribe = feed.get("subscribe", [])
    if not isinstance(subscribe, list) or not all(isinstance(m, str) for m in subscribe):
        raise fail("feed.subscribe", "must be a list of text messages")
    spec = WebSocketSpec(
        name=name,
        description=str(data.get("description", "")).strip(),
        owner=str(data.get("owner", "")),
        url=str(data.get("url", "")),
        auth_env=auth_env,
        ping_interval=keepalive.get("ping_interval", 20.0),
        ping_timeout=keepalive.get("ping_timeout", 20.0),
        stale_after=keepalive.get("stale_after"),
        reconnect=reconnect,
        subscribe=tuple(subscribe),
        sequence_field=sequence_field,
        gap_strategy=gap,
        outgoing_limit=feed.get("outgoing_limit", 1000),
        outgoing=feed.get("outgoing", "wait"),
        objectives=_objectives(data.get("objectives", {}), fail),
        scenarios=_scenarios(data.get("scenario"), fail),
        path=path,
    )
    try:
        spec.client_config()
    except ConfigurationError as exc:
        raise fail(_WHERE.get(exc.field or "url", exc.field or "url"), exc.reason) from None
    if gap != "none" and spec.sequence_field is None:
        raise fail("feed.sequence_field", f"gap_strategy {gap!r} needs the sequence field that numbers messages")
    return spec


def _objectives(given: object, fail: Any) -> dict[str, float]:
    if not isinstance(given, Mapping):
        raise fail("objectives", "must be a table of figure = highest allowed value")
    objectives: dict[str, float] = {}
    for key, limit in given.items():
        if key not in FIGURES:
            raise fail(f"objectives.{key}", f"unknown figure (expected one of {', '.join(FIGURES)})")
        if isinstance(limit, bool) or not isinstance(limit, int | float) or not limit >= 0:
            raise fail(f"objectives.{key}", f"must be a number >= 0, got {limit!r}")
        objectives[key] = float(limit)
    return objectives


def _scenarios(raw: object, fail: Any) -> tuple[WsScenario, ...]:
    if not isinstance(raw, list) or not raw:
        raise fail("scenario", "list at least one [[scenario]] to exercise the integration against")
    scenarios: list[WsScenario] = []
    herd_fields = {f.name for f in fields(HerdScenario)}
    for i, entry in enumerate(raw):
        label = f"scenario[{i}]"
        bad = sorted(set(entry) - _SCENARIO) if isinstance(entry, Mapping) else ["(not a table)"]
        if bad:
            raise fail(f"{label}.{bad[0]}", f"unknown field (expected one of {', '.join(sorted(_SCENARIO))})")
        scenario_name = entry.get("name")
        if not is_name(scenario_name):
            raise fail(f"{label}.name", f"must be lower-case letters, digits, '-' or '_', got {scenario_name!r}")
        if any(s.name == scenario_name for s in scenarios):
            raise fail(f"{label}.name", f"another scenario has this name ({scenario_name})")
        values = {k: v for k, v in entry.items() if k in herd_fields}
        try:
            herd = HerdScenario(**values)
        except ConfigurationError as exc:
            raise fail(f"{label}.{exc.field}", exc.reason) from None
        if herd.horizon <= herd.restart_at:
            raise fail(f"{label}.horizon", f"must be after restart_at ({herd.restart_at:g} s), got {herd.horizon:g}")
        scenarios.append(WsScenario(scenario_name, str(entry.get("description", "")), herd))
    return tuple(scenarios)


def ws_checklist(spec: WebSocketSpec) -> list[CheckItem]:
    """The WebSocket checklist: one item per rule, each checked against the spec."""
    r = spec.reconnect
    auth = env_presence([spec.auth_env]) if spec.auth_env else "no credential named (a public feed)"
    return [
        CheckItem(
            "keepalive",
            "Keepalive is set (a ping interval and a pong timeout)",
            spec.ping_interval is not None and spec.ping_timeout is not None,
            f"ping every {spec.ping_interval} s, pong within {spec.ping_timeout} s",
        ),
        CheckItem(
            "staleness",
            "A staleness timeout catches an open but silent socket",
            spec.stale_after is not None,
            f"no message for {spec.stale_after} s means reconnect" if spec.stale_after else "no staleness timeout",
        ),
        CheckItem(
            "reconnect",
            "Reconnects are bounded and jittered",
            r.jitter != "none" and r.first_delay > 0 and r.max_delay <= 300 and r.max_attempts <= 50,
            f"first wait 0-{r.first_delay:g} s, then {r.jitter} jitter from {r.base_delay:g} s up to "
            f"{r.max_delay:g} s, {r.max_attempts} attempts",
        ),
        CheckItem(
            "gaps",
            "A gap strategy is defined (resume or resync, by a sequence field)",
            spec.gap_strategy != "none" and spec.sequence_field is not None,
            f"{spec.gap_strategy} by {spec.sequence_field!r}" if spec.sequence_field else "no sequence field",
        ),
        CheckItem(
            "outgoing",
            "The outgoing queue is bounded",
            spec.outgoing_limit <= 100_000,
            f"{spec.outgoing_limit} messages, then {spec.outgoing}",
        ),
        CheckItem("tls", "TLS (wss://) or loopback", True, f"{spec.client_config().shown_url}; {auth}"),
    ]


def ws_design_document(spec: WebSocketSpec) -> str:
    """The design document of a WebSocket integration, in Markdown."""
    r = spec.reconnect
    rows = [
        ("url", spec.client_config().shown_url),
        ("credential", f"env {spec.auth_env}" if spec.auth_env else "(none)"),
        ("keepalive", f"ping {spec.ping_interval} s, pong timeout {spec.ping_timeout} s (websockets default 20/20)"),
        ("staleness", f"{spec.stale_after} s" if spec.stale_after else "off"),
        ("first reconnect", f"uniform(0, {r.first_delay:g}) s (RFC 6455 section 7.2.3)"),
        ("handshake backoff", f"{r.jitter} jitter, {r.base_delay:g} s x{r.multiplier:g} up to {r.max_delay:g} s"),
        ("handshake attempts", str(r.max_attempts)),
        ("subscriptions", str(len(spec.subscribe))),
        ("sequence field", spec.sequence_field or "(none)"),
        ("gap strategy", spec.gap_strategy),
        ("outgoing queue", f"{spec.outgoing_limit} messages, {spec.outgoing} when full"),
    ]
    lines = [f"# {spec.name}", "", spec.description, "", f"Kind: websocket. Owner: {spec.owner or '-'}.", ""]
    lines += ["| setting | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows), ""]
    lines += [
        "## Resilience",
        "",
        "- The handshake is a call of the engine: retried with jittered backoff, 401/403 permanent, 429/503 wait "
        "their Retry-After.",
        "- Close codes: 1000/1001 end the stream; 1006/1011/1012/1013 reconnect; 1003/1008/4000-4999 are permanent.",
        "- After every reconnect: the resume request from the last sequence number, then the subscriptions, then "
        "the queued outgoing messages; duplicates are dropped by sequence number.",
        "",
        "## Checklist",
        "",
    ]
    lines += [f"- {i.mark} {i.title}: {i.detail}" for i in ws_checklist(spec)]
    lines += ["", "## Objectives", "", *(f"- {k} <= {v:g}" for k, v in spec.objectives.items())]
    return "\n".join(lines) + "\n"
