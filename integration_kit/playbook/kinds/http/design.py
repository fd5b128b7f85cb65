"""An integration's design document and checklist, derived from its spec.

:func:`checklist` checks the spec against the rules every integration must meet (HTTPS base URL from config,
credentials from the environment, timeouts, bounded retries, a retry schedule that fits in the deadline, a
breaker, idempotency keys on writes, a fallback,
scenarios for errors and timeouts). :func:`design_document` renders the design document in Markdown: client
implementation, configuration (setting, value, source, why), resilience patterns, security, testing strategy, the
checklist and the objectives. Both are pure functions of the spec.
"""

from __future__ import annotations

from dataclasses import fields
from urllib.parse import urlsplit

from integration_kit.http.auth import BasicAuth, BearerAuth, HeaderAuth
from integration_kit.http.config import is_loopback
from integration_kit.playbook.kinds.http.notes import setting_notes
from integration_kit.playbook.kinds.http.objectives import Objectives
from integration_kit.playbook.kinds.http.operations import operations_section
from integration_kit.playbook.kinds.http.spec import IntegrationSpec
from integration_kit.playbook.kinds.protocol import CheckItem, env_presence
from integration_kit.policies.config import IDEMPOTENT_METHODS
from integration_kit.sim.scenarios import Scenario

__all__ = [
    "CheckItem",
    "checklist",
    "configuration_rows",
    "design_document",
    "objectives_section",
    "failed_items",
]

#: A retry count above this is a retry storm waiting to happen, whatever the budget.
MAX_SANE_ATTEMPTS = 10


def checklist(spec: IntegrationSpec) -> list[CheckItem]:
    """Check ``spec`` against the integration checklist, one :class:`CheckItem` per rule."""
    c = spec.client
    parts = urlsplit(c.base_url)
    host = parts.hostname or ""
    https = parts.scheme == "https"
    t = c.timeouts
    unset = [f.name for f in fields(t) if getattr(t, f.name) is None]
    writes = spec.exercise.method not in IDEMPOTENT_METHODS or bool(c.idempotency_methods)
    keyed = {"POST", "PATCH"} & set(c.idempotency_methods)
    return [
        CheckItem(
            "base_url",
            "Base URL comes from config and uses HTTPS",
            https or is_loopback(host),
            f"{c.base_url} ({'https' if https else 'plain http to loopback' if is_loopback(host) else 'plain http'})",
        ),
        CheckItem(
            "credentials",
            "Credentials come from the environment",
            c.auth is not None,
            f"{_auth_text(spec)}: {env_presence(_auth_env(spec))}" if c.auth is not None else "no auth configured",
        ),
        CheckItem(
            "timeouts",
            "Every timeout is set",
            not unset,
            f"connect {t.connect}s, read {t.read}s, write {t.write}s, pool {t.pool}s"
            + (f"; unset: {', '.join(unset)}" if unset else ""),
        ),
        CheckItem(
            "deadline",
            "A deadline bounds the whole call",
            c.deadline is not None and (t.read is None or c.deadline > t.read),
            f"deadline {c.deadline}s" + (f" vs read timeout {t.read}s" if t.read is not None else ""),
        ),
        CheckItem(
            "retries",
            "Retries are bounded and budgeted",
            c.retry.max_attempts <= MAX_SANE_ATTEMPTS and c.budget is not None,
            f"{c.retry.max_attempts} attempts, {c.retry.jitter} jitter up to {c.retry.max_delay}s, "
            + ("retry budget on" if c.budget is not None else "no retry budget"),
        ),
        CheckItem(
            "breaker",
            "A circuit breaker is configured",
            c.breaker is not None,
            _breaker_text(spec) if c.breaker is not None else "no breaker",
        ),
        CheckItem(
            "idempotency",
            "Write methods carry idempotency keys",
            not writes or bool(keyed),
            f"keys on {', '.join(sorted(c.idempotency_methods))}"
            if c.idempotency_methods
            else "read-only integration: no write methods"
            if not writes
            else f"{spec.exercise.method} is not idempotent and carries no key",
        ),
        CheckItem(
            "retry_schedule",
            "The retry schedule fits in the deadline",
            c.deadline is None or not _longer_than_deadline(spec),
            f"max_delay {c.retry.max_delay}s, max_retry_after {c.retry.max_retry_after}s, deadline {c.deadline}s"
            + (
                f"; longer than the deadline: {', '.join(_longer_than_deadline(spec))}"
                if _longer_than_deadline(spec)
                else ""
            ),
        ),
        CheckItem(
            "fallback",
            "A fallback is defined",
            spec.fallback.defined,
            f"{spec.fallback.kind}: {spec.fallback.description}" if spec.fallback.defined else "none",
        ),
        CheckItem(
            "error_scenarios",
            "Scenarios cover errors",
            any(_has_errors(s) for s in spec.scenarios),
            ", ".join(s.name for s in spec.scenarios if _has_errors(s)) or "no scenario injects errors",
        ),
        CheckItem(
            "timeout_scenarios",
            "Scenarios cover timeouts",
            any(_has_timeouts(s, t.read) for s in spec.scenarios),
            ", ".join(s.name for s in spec.scenarios if _has_timeouts(s, t.read)) or "no scenario hangs or stalls",
        ),
    ]


def failed_items(spec: IntegrationSpec) -> list[CheckItem]:
    """The checklist items ``spec`` fails."""
    return [item for item in checklist(spec) if not item.passed]


def _longer_than_deadline(spec: IntegrationSpec) -> list[str]:
    """The retry waits that could never run because they reach the deadline (``max_delay``, ``max_retry_after``)."""
    c = spec.client
    if c.deadline is None:
        return []
    waits = {"max_delay": c.retry.max_delay}
    if c.retry.respect_retry_after:
        waits["max_retry_after"] = c.retry.max_retry_after
    return [name for name, value in waits.items() if value >= c.deadline]


def _has_errors(scenario: Scenario) -> bool:
    return any(p.errors.total > 0.01 for p in scenario.phases)


def _has_timeouts(scenario: Scenario, read_timeout: float | None) -> bool:
    for phase in scenario.phases:
        if phase.errors.hang > 0:
            return True
        lat = phase.latency
        slowest = max(lat.value, lat.high, lat.p99, max(lat.samples, default=0.0))
        if read_timeout is not None and slowest >= read_timeout:
            return True
    return False


def _auth_text(spec: IntegrationSpec) -> str:
    auth = spec.client.auth
    if isinstance(auth, BearerAuth):
        return f"bearer token from env {auth.env}"
    if isinstance(auth, HeaderAuth):
        return f"header {auth.header} from env {auth.env}"
    if isinstance(auth, BasicAuth):
        return f"basic auth from env {auth.username_env} / {auth.password_env}"
    return "none"


def _auth_env(spec: IntegrationSpec) -> tuple[str, ...]:
    auth = spec.client.auth
    if isinstance(auth, BearerAuth | HeaderAuth):
        return (auth.env,)
    if isinstance(auth, BasicAuth):
        return (auth.username_env, auth.password_env)
    return ()


def _breaker_text(spec: IntegrationSpec) -> str:
    b = spec.client.breaker
    if b is None:
        return "none"
    modes = []
    if b.failure_threshold is not None:
        modes.append(f"{b.failure_threshold} consecutive failures")
    if b.failure_rate_threshold is not None:
        window = f"last {b.window_size} calls" if b.window_type == "count" else f"last {b.window_size}s"
        modes.append(f"failure rate >= {b.failure_rate_threshold:.0%} over the {window} (min {b.minimum_calls})")
    if b.slow_call_duration is not None:
        modes.append(f"slow calls (>= {b.slow_call_duration}s) >= {b.slow_call_rate_threshold:.0%}")
    return (
        "opens on "
        + " or ".join(modes)
        + f"; open {b.wait_in_open}s"
        + (
            f" (x{b.wait_in_open_multiplier:g} per re-trip, max {b.max_wait_in_open}s)"
            if b.wait_in_open_multiplier > 1
            else ""
        )
        + f", then {b.half_open_max_calls} probe(s)"
    )


def configuration_rows(spec: IntegrationSpec) -> list[tuple[str, str, str]]:
    """The configuration table: (setting, value, source) for every client setting."""
    c = spec.client
    rows: list[tuple[str, str, str]] = [("base_url", c.base_url, spec.source("base_url"))]
    rows.append(("auth", _auth_text(spec), "env var named in the spec" if c.auth else spec.source("auth")))
    for group in ("timeouts", "retry", "budget", "breaker", "limits"):
        value = getattr(c, group)
        if value is None:
            rows.append((group, "off", spec.source(group)))
            continue
        for f in fields(value):
            item = getattr(value, f.name)
            if isinstance(item, frozenset):
                item = ", ".join(str(v) for v in sorted(item)) or "-"
            rows.append((f"{group}.{f.name}", "-" if item is None else str(item), spec.source(f"{group}.{f.name}")))
    for name in (
        "deadline",
        "idempotency_methods",
        "max_response_bytes",
        "follow_redirects",
        "verify",
        "allow_insecure_http",
    ):
        item = getattr(c, name)
        if isinstance(item, frozenset):
            item = ", ".join(sorted(item)) or "-"
        rows.append((name, "-" if item is None else str(item), spec.source(name)))
    return rows


def design_document(spec: IntegrationSpec) -> str:
    """The integration's design document and checklist, in Markdown.

    The configuration table's *Why* column and the objectives' reasons are the comments the spec file gives each
    setting (:func:`~integration_kit.playbook.kinds.http.notes.setting_notes`).
    """
    c = spec.client
    notes = setting_notes(spec.path) if spec.path is not None and spec.path.is_file() else {}
    r = c.retry
    lines = [
        f"# {spec.name}: integration design",
        "",
        spec.description,
        "",
        "## 1. Client implementation",
        "",
        f"- Protocol: {spec.protocol}; base URL `{c.base_url}` pinned: no request may leave its origin.",
        f"- Client: `integration_kit.ResilientClient` (or `AsyncResilientClient`) built from "
        f"`data/integrations/{spec.name}.toml`; owner: {spec.owner or 'unassigned'}.",
        f"- Typical call: `{spec.exercise.method} {spec.exercise.path}`.",
        "",
        "## 2. Configuration",
        "",
        "| Setting | Value | Source | Why |",
        "|---|---|---|---|",
        *(
            f"| {s} | {v.replace('|', '/')} | {src} | {notes.get(s, '').replace('|', '/')} |"
            for s, v, src in configuration_rows(spec)
        ),
        "",
        "## 3. Resilience patterns",
        "",
        f"- **Timeouts**: connect {c.timeouts.connect}s, read {c.timeouts.read}s, write {c.timeouts.write}s, "
        f"pool {c.timeouts.pool}s; deadline {c.deadline}s for the whole call, retries and waits included.",
        f"- **Retry**: up to {r.max_attempts} attempts, exponential backoff from {r.base_delay}s x{r.multiplier:g} "
        f"capped at {r.max_delay}s with {r.jitter} jitter, on {', '.join(map(str, sorted(r.retry_on_status)))}; "
        + (f"Retry-After honoured up to {r.max_retry_after}s." if r.respect_retry_after else "Retry-After ignored."),
        "- **Retry budget**: "
        + (
            f"{c.budget.max_tokens:g} tokens, {c.budget.token_ratio:g} back per success (gRPC A6): retries stop "
            "when failures dominate."
            if c.budget is not None
            else "none."
        ),
        f"- **Circuit breaker**: {_breaker_text(spec)}.",
        "- **Limits**: "
        + (
            ", ".join(
                part
                for part in (
                    f"at most {c.limits.max_concurrent} concurrent calls" if c.limits.max_concurrent else "",
                    f"{c.limits.rate:g} calls/s (burst {c.limits.burst})" if c.limits.rate else "",
                )
                if part
            )
            or "none"
        )
        + ".",
        "- **Idempotency**: "
        + (
            f"an `Idempotency-Key` on every {', '.join(sorted(c.idempotency_methods))}, the same on every retry."
            if c.idempotency_methods
            else "read-only; no keys needed."
        ),
        f"- **Fallback**: {spec.fallback.kind}" + (f": {spec.fallback.description}." if spec.fallback.defined else "."),
        "",
        *operations_section(spec.operations),
        "## 4. Security",
        "",
        f"- Auth: {_auth_text(spec)}; the secret is read once when the client is built, held in a masked "
        "`Secret`, and never written to logs, events, errors or notebooks.",
        "- TLS verification "
        + ("on" if c.verify else "OFF")
        + "; plain http refused for non-loopback hosts"
        + (" (overridden: allow_insecure_http)" if c.allow_insecure_http else "")
        + ".",
        f"- Redirects {'followed (auth dropped across origins)' if c.follow_redirects else 'not followed'}; "
        f"responses capped at {c.max_response_bytes} bytes; secret-looking query parameters masked.",
        "",
        "## 5. Testing strategy",
        "",
        "- Simulated (virtual time, deterministic per seed) and live (real HTTP against the local flaky upstream) "
        "runs of each scenario:",
        *(f"  - `{s.name}`: {s.description or ', '.join(p.name or '?' for p in s.phases)}" for s in spec.scenarios),
        "- Success rate, load amplification, latency percentiles and breaker transitions are recorded per run "
        "and charted (notebooks 02 and 03).",
        "",
        "## 6. Checklist",
        "",
        *(f"- {item.mark} {item.title}: {item.detail}" for item in checklist(spec)),
        "",
        *objectives_section(spec, notes),
    ]
    return "\n".join(lines)


def objectives_section(spec: IntegrationSpec, notes: dict[str, str] | None = None) -> list[str]:
    """The design document's objectives section (Markdown lines): each objective's target for every scenario,
    the per-scenario overrides, and why, from the spec's comments."""
    notes = notes if notes is not None else {}
    declared = spec.objective_set.declared
    lines = [
        "## 7. Objectives",
        "",
        "Every run ends in a verdict against these targets (`integration-kit run` fails when one is missed); how "
        "each is measured is in `data/README.md`.",
        "",
        "| Objective | Target | Source | Overrides | Why |",
        "|---|---|---|---|---|",
    ]
    for name in Objectives.names():
        overrides = ", ".join(
            f"{scenario}: {getattr(spec.objectives_for(scenario), name):g}"
            for scenario in spec.objective_set.per_scenario
            if f"{scenario}.{name}" in declared
        )
        why = "; ".join(
            text
            for key, text in notes.items()
            if key == f"objectives.{name}" or (key.startswith("scenario_objectives.") and key.endswith(f".{name}"))
        )
        source = "spec" if f"objectives.{name}" in declared else "default"
        lines.append(
            f"| {name} | {getattr(spec.objectives, name):g} | {source} | {overrides or '-'} | {why.replace('|', '/')} |"
        )
    lines += ["| deadline_overruns | 0 | always | - | a call never outlives its deadline |", ""]
    return lines
