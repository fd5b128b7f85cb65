"""Webhook integration specs: ``kind = "webhook-in"`` (a partner calls us) and ``kind = "webhook-out"`` (we call
subscribers), their checklist and their design document.

A spec is one TOML file in ``data/integrations`` like the HTTP ones, validated the same way: an unknown field is an
error naming the file and the field. Secrets are given by the *names* of environment variables, never by value.
Every field is documented in ``data/README.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

from integration_kit.errors import ConfigurationError
from integration_kit.playbook.kinds.files import read_spec
from integration_kit.playbook.kinds.protocol import CheckItem, env_presence
from integration_kit.policies.tables import check_table
from integration_kit.server.inbox import DEFAULT_DEDUP_WINDOW
from integration_kit.server.signatures import DEFAULT_MAX_BODY_BYTES, DEFAULT_TOLERANCE
from integration_kit.webhooks.schedule import SVIX_SCHEDULE, RetrySchedule

__all__ = [
    "WEBHOOK_KINDS",
    "HandlerSettings",
    "ReceiverSettings",
    "SenderSettings",
    "WebhookObjectives",
    "WebhookScenario",
    "WebhookSpec",
    "load_webhook_spec",
    "webhook_checklist",
    "webhook_design_document",
]

WebhookKind = Literal["webhook-in", "webhook-out"]
WEBHOOK_KINDS: tuple[str, ...] = get_args(WebhookKind)
SchemeName = Literal["standard-webhooks", "stripe", "github", "hmac"]
InboxKind = Literal["sqlite", "redis"]

#: The longest schedule the checklist accepts (seconds): 3 days, so a delivery never outlives the receivers'
#: deduplication windows (GitHub's redelivery window and the inbox default are 3 days).
MAX_SCHEDULE_SPAN = 3 * 86400.0


def _number(owner: str, name: str, value: object, *, low: float = 0.0, strict: bool = True) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value <= low if strict else value < low):  # type: ignore[operator]
        message = f"{owner}.{name} must be a number {'>' if strict else '>='} {low:g}, got {value!r}"
        raise ConfigurationError(message, field=name)


def _env_names(owner: str, value: object) -> tuple[str, ...]:
    names = (value,) if isinstance(value, str) else value
    message = f"{owner}.secret_env must name one or two environment variables, got {value!r}"
    if not isinstance(names, (list, tuple)) or not names:
        raise ConfigurationError(message, field="secret_env")
    for index, env in enumerate(names):
        if not (isinstance(env, str) and env.isidentifier()):
            raise ConfigurationError(message, field="secret_env" if isinstance(value, str) else f"secret_env[{index}]")
    if len(names) > 2:
        message = f"{owner}.secret_env holds at most two names (the secret and, during a rotation, the next)"
        raise ConfigurationError(message, field="secret_env")
    return tuple(names)


@dataclass(frozen=True, slots=True)
class ReceiverSettings:
    """How we receive: the signature ``scheme``, the env vars of its secrets (two during a rotation), the replay
    ``tolerance`` (seconds), the ``dedup_window`` (seconds), the ``inbox`` backend and the body limit (bytes)."""

    scheme: SchemeName = "standard-webhooks"
    secret_env: tuple[str, ...] = ("WEBHOOK_SECRET",)
    tolerance: float = DEFAULT_TOLERANCE
    dedup_window: float = DEFAULT_DEDUP_WINDOW
    inbox: InboxKind = "sqlite"
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    def __post_init__(self) -> None:
        if self.scheme not in get_args(SchemeName):
            choices = ", ".join(get_args(SchemeName))
            raise ConfigurationError(f"receiver.scheme must be one of {choices}, got {self.scheme!r}", field="scheme")
        if self.inbox not in get_args(InboxKind):
            raise ConfigurationError(f"receiver.inbox must be sqlite or redis, got {self.inbox!r}", field="inbox")
        object.__setattr__(self, "secret_env", _env_names("receiver", self.secret_env))
        _number("receiver", "tolerance", self.tolerance)
        _number("receiver", "dedup_window", self.dedup_window)
        _number("receiver", "max_body_bytes", self.max_body_bytes)


@dataclass(frozen=True, slots=True)
class HandlerSettings:
    """How the handler runs behind the inbox: tries before the dead letters, backoff (seconds), deadline (seconds)."""

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0
    deadline: float = 120.0

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            message = f"handler.max_attempts must be an integer >= 1, got {self.max_attempts!r}"
            raise ConfigurationError(message, field="max_attempts")
        _number("handler", "base_delay", self.base_delay, strict=False)
        _number("handler", "max_delay", self.max_delay)
        _number("handler", "deadline", self.deadline)


@dataclass(frozen=True, slots=True)
class SenderSettings:
    """How we send: the subscriber ``url``, its secrets' env vars, the retry ``delays`` (seconds, Svix's by
    default), ``disable_after`` (seconds failing before the endpoint is disabled), per-attempt ``timeout``
    (seconds), the endpoint's bulkhead (``max_concurrent``) and breaker (``breaker_failures`` in a row), and
    ``allow_private`` (the SSRF guard lets private addresses through)."""

    url: str = ""
    secret_env: tuple[str, ...] = ("WEBHOOK_SECRET",)
    delays: tuple[float, ...] = SVIX_SCHEDULE
    disable_after: float = 5 * 86400.0
    timeout: float = 15.0
    max_concurrent: int = 10
    breaker_failures: int = 5
    allow_private: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.url, str) or not self.url.startswith(("https://", "http://")):
            raise ConfigurationError(f"sender.url must be an http(s) URL, got {self.url!r}", field="url")
        object.__setattr__(self, "secret_env", _env_names("sender", self.secret_env))
        object.__setattr__(self, "delays", tuple(self.delays))
        for index, delay in enumerate(self.delays):
            _number("sender", f"delays[{index}]", delay, strict=False)
        _number("sender", "disable_after", self.disable_after)
        try:
            self.schedule()  # validates the delays
        except ValueError as exc:
            raise ConfigurationError(str(exc), field="delays") from None
        _number("sender", "timeout", self.timeout)
        _number("sender", "max_concurrent", self.max_concurrent)
        _number("sender", "breaker_failures", self.breaker_failures)
        if not isinstance(self.allow_private, bool):
            message = f"sender.allow_private must be a bool, got {self.allow_private!r}"
            raise ConfigurationError(message, field="allow_private")

    def schedule(self) -> RetrySchedule:
        """The retry schedule these settings describe."""
        return RetrySchedule(self.delays, disable_after=self.disable_after)


@dataclass(frozen=True, slots=True)
class WebhookScenario:
    """One scenario, played in virtual time by :mod:`integration_kit.playbook.kinds.webhook.sim`.

    Traffic: ``events`` at ``rate`` per second, with a ``burst_factor`` times faster burst in the middle fifth.
    For ``webhook-in``: the fractions of deliveries that are ``duplicates`` (a sender retry), ``replays`` (an old
    delivery resent outside the tolerance), ``forged`` (a wrong secret); ``rotate_at`` (a fraction of the stream)
    switches the sender to the next secret; the handler fails with ``handler_failure_rate``, takes
    ``handler_latency`` seconds, and fails every call during ``handler_outage`` ``[start, end]`` seconds.
    For ``webhook-out``: the endpoint is ``down`` (answers 503) during ``[start, end]`` windows, answers in
    ``latency`` seconds, flaps (fails ``failure_rate`` of attempts), or answers 410 from ``gone_at`` seconds.
    """

    name: str
    description: str
    events: int = 200
    rate: float = 10.0
    burst_factor: float = 1.0
    duplicates: float = 0.0
    replays: float = 0.0
    forged: float = 0.0
    rotate_at: float | None = None
    handler_failure_rate: float = 0.0
    handler_latency: float = 0.01
    handler_outage: tuple[float, float] | None = None
    down: tuple[tuple[float, float], ...] = ()
    latency: float = 0.05
    failure_rate: float = 0.0
    gone_at: float | None = None

    def __post_init__(self) -> None:
        owner = f"scenario {self.name!r}"
        if not isinstance(self.description, str) or not self.description.strip():
            raise ConfigurationError(f"{owner}: description must say what happens", field="description")
        _number(owner, "events", self.events)
        _number(owner, "rate", self.rate)
        _number(owner, "burst_factor", self.burst_factor)
        for name in ("duplicates", "replays", "forged", "handler_failure_rate", "failure_rate"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 <= value <= 1):
                raise ConfigurationError(f"{owner}.{name} must be a fraction in [0, 1], got {value!r}", field=name)
        if self.rotate_at is not None and not 0 < self.rotate_at < 1:
            message = f"{owner}.rotate_at must be a fraction in (0, 1), got {self.rotate_at!r}"
            raise ConfigurationError(message, field="rotate_at")
        if self.handler_outage is not None:
            object.__setattr__(self, "handler_outage", _window(owner, "handler_outage", self.handler_outage))
        object.__setattr__(self, "down", tuple(_window(owner, f"down[{i}]", w) for i, w in enumerate(self.down)))


def _window(owner: str, name: str, value: Any) -> tuple[float, float]:
    if not (isinstance(value, (list, tuple)) and len(value) == 2 and 0 <= value[0] < value[1]):
        message = f"{owner}.{name} windows must be [start, end] seconds with start < end, got {value!r}"
        raise ConfigurationError(message, field=name)
    return float(value[0]), float(value[1])


@dataclass(frozen=True, slots=True)
class WebhookObjectives:
    """What a run must show: no event lost, no forged event accepted, no event processed twice, and processing
    lag (``webhook-in``) or time to deliver after recovery (``webhook-out``) at p99 under ``max_lag`` seconds."""

    max_lost: int = 0
    max_forged_accepted: int = 0
    max_lag: float = 60.0

    def __post_init__(self) -> None:
        _number("objectives", "max_lag", self.max_lag)


@dataclass(frozen=True, slots=True)
class WebhookSpec:
    """A webhook integration: its kind, what it is for, its receiver or sender settings, scenarios, objectives."""

    kind: WebhookKind
    name: str
    description: str
    owner: str
    scenarios: tuple[WebhookScenario, ...]
    receiver: ReceiverSettings | None = None
    handler: HandlerSettings = HandlerSettings()
    sender: SenderSettings | None = None
    objectives: WebhookObjectives = WebhookObjectives()
    path: Path | None = None
    sources: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_mapping(  # noqa: C901 - one validation pass, field by field
        cls, data: Mapping[str, Any], *, source: str = "<inline>", path: Path | None = None
    ) -> WebhookSpec:
        """Build and validate a spec from parsed TOML; every error names ``source``, the field and the reason."""

        def fail(name: str, reason: str) -> ConfigurationError:
            return ConfigurationError(f"{source}: {name}: {reason}", field=name)

        kind = data.get("kind")
        if kind not in WEBHOOK_KINDS:
            raise fail("kind", f"must be one of {', '.join(WEBHOOK_KINDS)}, got {kind!r}")
        side = "receiver" if kind == "webhook-in" else "sender"
        allowed = {"kind", "name", "description", "owner", "scenario", "objectives", side}
        if kind == "webhook-in":
            allowed.add("handler")
        if unknown := sorted(set(data) - allowed):
            raise fail(unknown[0], f"unknown field for {kind} (expected one of {', '.join(sorted(allowed))})")
        name = data.get("name")
        if not isinstance(name, str) or not name or not name.replace("-", "").replace("_", "").isalnum():
            raise fail("name", f"must be lower-case letters, digits, '-' or '_', got {name!r}")
        description = data.get("description", "")
        if not isinstance(description, str) or not description.strip():
            raise fail("description", "must say what the integration is for")
        owner = data.get("owner", "")
        if not isinstance(owner, str):
            raise fail("owner", "must be a string")
        tables = {
            "receiver": (ReceiverSettings, kind == "webhook-in"),
            "handler": (HandlerSettings, False),
            "sender": (SenderSettings, kind == "webhook-out"),
            "objectives": (WebhookObjectives, False),
        }
        built: dict[str, Any] = {}
        for key, (settings, required) in tables.items():
            if key not in allowed:
                continue
            value = data.get(key)
            if value is None and required:
                raise fail(key, f"a {kind} spec needs a [{key}] table")
            built[key] = _table(settings, value, key, fail)
        raw = data.get("scenario", [])
        if not isinstance(raw, list) or not raw:
            raise fail("scenario", "list at least one scenario in [[scenario]] tables")
        if bad := [i for i, t in enumerate(raw) if not isinstance(t, Mapping)]:
            raise fail(f"scenario[{bad[0]}]", f"must be a table ([[scenario]]), got {type(raw[bad[0]]).__name__}")
        scenarios = tuple(_table(WebhookScenario, t, f"scenario[{i}]", fail) for i, t in enumerate(raw))
        if len({s.name for s in scenarios}) != len(scenarios):
            raise fail("scenario", "scenario names must be unique")
        sources = {f"{key}.{sub}": "spec" for key in tables for sub in (data.get(key) or {})}
        return cls(kind, name, description.strip(), owner, scenarios, path=path, sources=sources, **built)

    def source(self, setting: str) -> str:
        """``"spec"`` when the file set ``setting`` (``"receiver.tolerance"``), else ``"default"``."""
        return self.sources.get(setting, "default")

    def scenario(self, name: str) -> WebhookScenario:
        """One of the spec's scenarios by name."""
        for s in self.scenarios:
            if s.name == name:
                return s
        raise ConfigurationError(f"integration {self.name!r} has no scenario {name!r}")


def _table(cls: type[Any], value: object, key: str, fail: Any) -> Any:
    if value is None:
        return cls()
    if not isinstance(value, Mapping):
        raise fail(key, f"must be a table, got {type(value).__name__}")
    known = {f.name for f in fields(cls)}
    if unknown := sorted(set(value) - known):
        raise fail(f"{key}.{unknown[0]}", f"unknown field (expected one of {', '.join(sorted(known))})")
    if missing := [f.name for f in fields(cls) if f.default is MISSING and f.name not in value]:
        raise fail(f"{key}.{missing[0]}", "is required")
    try:
        value = {k: (v,) if k == "secret_env" and isinstance(v, str) else v for k, v in value.items()}  # one name
        check_table(cls, value, owner=key)
        return cls(**{k: tuple(tuple(w) for w in v) if k == "down" else v for k, v in value.items()})
    except ConfigurationError as exc:
        located = exc.under(key)
        raise fail(located.field or key, located.reason) from None


def webhook_checklist(spec: WebhookSpec) -> list[CheckItem]:
    """The webhook checklist: signature scheme and tolerance, dedup window, durable inbox, dead letters, SSRF guard,
    a bounded schedule, secrets from the environment, rotation ready, failure scenarios."""
    items = [
        CheckItem(
            "secrets",
            "Secrets come from the environment, with room for a rotation",
            True,
            env_presence(_secret_env(spec))
            + ("; two active: rotation in progress" if len(_secret_env(spec)) == 2 else ""),
        )
    ]
    if spec.receiver is not None:
        r, h = spec.receiver, spec.handler
        items += [
            CheckItem("signature", "Every delivery is verified (signature scheme)", True, f"{r.scheme}, constant-time"),
            CheckItem(
                "tolerance",
                "Replays are refused (timestamp tolerance at most 10 minutes)",
                r.scheme == "github" or r.tolerance <= 600,
                "GitHub signs no timestamp: replays are caught by deduplication"
                if r.scheme == "github"
                else f"{r.tolerance:g} s",
            ),
            CheckItem(
                "dedup",
                "Duplicates are suppressed for longer than senders retry (dedup window >= 1 day)",
                r.dedup_window >= 86400,
                f"{r.dedup_window / 3600:g} h",
            ),
            CheckItem(
                "inbox",
                "Acknowledged only after the event is durable (inbox)",
                True,
                f"{r.inbox} inbox, 2xx after commit",
            ),
            CheckItem(
                "dead_letters",
                "A failing event ends in dead letters after bounded tries",
                h.max_attempts <= 10,
                f"{h.max_attempts} tries within {h.deadline:g} s, then dead letters (integration-kit webhooks replay)",
            ),
        ]
    if spec.sender is not None:
        s = spec.sender
        schedule = s.schedule()
        items += [
            CheckItem(
                "ssrf",
                "Destinations are checked (SSRF guard, no redirects)",
                not s.allow_private or s.url.startswith(("http://127.", "http://localhost")),
                "private addresses allowed" if s.allow_private else "private, loopback and metadata addresses refused",
            ),
            CheckItem(
                "schedule",
                "The retry schedule is bounded (at most 3 days, durable)",
                schedule.span <= MAX_SCHEDULE_SPAN,
                f"{schedule.max_attempts} attempts over {schedule.span / 3600:.1f} h",
            ),
            CheckItem(
                "https", "Deliveries use HTTPS", s.url.startswith("https://") or s.allow_private, s.url.split("?")[0]
            ),
            CheckItem(
                "isolation",
                "Each endpoint is isolated (breaker, bulkhead, timeout)",
                True,
                f"breaker after {s.breaker_failures} failures, {s.max_concurrent} concurrent, {s.timeout:g} s",
            ),
        ]
    names = {sc.name for sc in spec.scenarios}
    failing = [
        sc.name
        for sc in spec.scenarios
        if sc.down or sc.gone_at or sc.handler_failure_rate or sc.handler_outage or sc.forged or sc.failure_rate
    ]
    items.append(
        CheckItem(
            "scenarios",
            "Scenarios cover failures, not only the happy path",
            bool(failing),
            f"{len(names)} scenarios; with failures: {', '.join(failing) or 'none'}",
        )
    )
    return items


def _secret_env(spec: WebhookSpec) -> tuple[str, ...]:
    side = spec.receiver if spec.receiver is not None else spec.sender
    return side.secret_env if side is not None else ()


def webhook_design_document(spec: WebhookSpec) -> str:
    """The design document of a webhook integration, in Markdown."""
    lines = [f"# {spec.name} ({spec.kind})", "", spec.description, "", f"Owner: {spec.owner or 'unassigned'}", ""]
    if spec.receiver is not None:
        r, h = spec.receiver, spec.handler
        lines += [
            "## Receiving",
            "",
            "An ASGI `WebhookReceiver` verifies each delivery on its raw body, deduplicates it by event id in the "
            "inbox, commits it and only then answers 2xx; a `WebhookProcessor` runs the handler behind the inbox "
            "under the call engine's retry and deadline.",
            "",
            "| setting | value | source |",
            "|---|---|---|",
            *(f"| receiver.{f.name} | {getattr(r, f.name)} | {spec.source('receiver.' + f.name)} |" for f in fields(r)),
            *(f"| handler.{f.name} | {getattr(h, f.name)} | {spec.source('handler.' + f.name)} |" for f in fields(h)),
            "",
        ]
    if spec.sender is not None:
        s = spec.sender
        lines += [
            "## Sending",
            "",
            "`WebhookSender.send` stores the message; each attempt is signed (Standard Webhooks, same `webhook-id` on "
            "every retry), made by the endpoint's engine (timeouts, breaker, bulkhead) over the SSRF-guarded "
            "transport, and logged; the schedule lives in the store and survives restarts.",
            "",
            "| setting | value | source |",
            "|---|---|---|",
            *(f"| sender.{f.name} | {getattr(s, f.name)} | {spec.source('sender.' + f.name)} |" for f in fields(s)),
            "",
        ]
    lines += ["## Scenarios", ""] + [f"- **{sc.name}**: {sc.description}" for sc in spec.scenarios]
    lines += ["", "## Checklist", ""] + [f"- {i.mark} {i.title}: {i.detail}" for i in webhook_checklist(spec)]
    return "\n".join(lines) + "\n"


def load_webhook_spec(name: str | Path, *, directory: str | Path | None = None) -> WebhookSpec:
    """Load and validate a webhook spec by name (``data/integrations/<name>.toml``) or by path.

    Raises :class:`~integration_kit.errors.ConfigurationError` for a bad or unknown name (see
    :func:`~integration_kit.playbook.kinds.files.spec_path`), an invalid spec or one of another kind.
    """
    return read_spec(name, WebhookSpec.from_mapping, directory=directory)
