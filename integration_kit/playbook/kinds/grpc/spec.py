"""The gRPC spec (``kind = "grpc"``): a partner's gRPC service, its per-method policies, and what it must achieve.

A spec names the ``target`` (``host:port``), whether it uses ``tls`` (default true), the environment variable that
holds its credential (``credential_env``, sent as ``authorization: Bearer ...``), the gRPC service config (a JSON
file beside the spec, ``service_config = "x.json"``, or inline as a ``[service_config]`` table with the same keys),
a ``[breaker]`` per service (the kit's :class:`~integration_kit.policies.config.BreakerPolicy` fields), each
``[[method]]`` with its idempotency level (``NO_SIDE_EFFECTS``, ``IDEMPOTENT`` or ``IDEMPOTENCY_UNKNOWN``), whether
its calls carry a request id, and the rate the exercise offers it; scenarios (bundled names in ``scenarios``,
``[[scenario]]`` tables for new ones), ``[objectives]`` and ``[scenario_objectives.<name>]``.

Every mistake is a :class:`~integration_kit.errors.ConfigurationError` naming the file and the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from integration_kit.errors import ConfigurationError
from integration_kit.grpc.config import Idempotency, ServiceConfig
from integration_kit.grpc.security import MetadataCredential, is_loopback, split_target
from integration_kit.grpc.status import REFUSING_CODES
from integration_kit.playbook.kinds.files import is_name, scenario_search
from integration_kit.playbook.kinds.protocol import CheckItem, env_presence
from integration_kit.policies.config import BreakerPolicy
from integration_kit.policies.tables import check_table
from integration_kit.sim.scenarios import Scenario, load_scenario

__all__ = ["OBJECTIVES", "GrpcMethod", "GrpcSpec", "grpc_checklist", "grpc_design_document"]

#: The objectives a spec may set, each ``(default, floor?, unit)``: a floor is met at or above its target.
OBJECTIVES: dict[str, tuple[float, bool, str]] = {
    "success_rate": (0.95, True, "ratio"),
    "latency_p99": (2.0, False, "s"),
    "amplification": (2.0, False, "x"),
}
_TOP = {
    "kind", "name", "description", "owner", "target", "tls", "credential_env", "service_config", "breaker",
    "method", "scenarios", "scenario", "objectives", "scenario_objectives",
}  # fmt: skip
_METHOD = {"name", "idempotency", "request_id", "rate"}


@dataclass(frozen=True, slots=True)
class GrpcMethod:
    """One method of the spec: ``name`` (``package.Service/Method``), its ``idempotency`` level, whether its calls
    carry a request id (``request_id``), and the calls per second the exercise offers it (``rate``)."""

    name: str
    idempotency: Idempotency = Idempotency.UNKNOWN
    request_id: bool = False
    rate: float = 10.0

    @property
    def service(self) -> str:
        """The method's service (``package.Service``)."""
        return self.name.partition("/")[0]

    @property
    def short(self) -> str:
        """The method's own name (``GetItem``)."""
        return self.name.partition("/")[2]


@dataclass(frozen=True, slots=True)
class GrpcSpec:
    """A validated gRPC spec (see the module docstring)."""

    name: str
    description: str
    target: str
    service_config: ServiceConfig
    methods: tuple[GrpcMethod, ...]
    scenarios: tuple[Scenario, ...]
    objectives: Mapping[str, float]
    scenario_objectives: Mapping[str, Mapping[str, float]]
    tls: bool = True
    credential_env: str | None = None
    breaker: BreakerPolicy | None = None
    owner: str = ""
    path: Path | None = None
    kind: str = "grpc"

    @property
    def idempotency(self) -> dict[str, Idempotency]:
        """Each method's idempotency level, as the channel takes it."""
        return {m.name: m.idempotency for m in self.methods}

    def objectives_for(self, scenario: str) -> dict[str, float]:
        """The objectives of ``scenario``: the spec's, overridden by its ``[scenario_objectives.<name>]``."""
        return {**self.objectives, **self.scenario_objectives.get(scenario, {})}

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "<spec>", path: Path | None = None) -> GrpcSpec:
        """Validate a parsed spec file; raises ConfigurationError naming ``source`` and the field."""

        def fail(field: str, reason: str) -> ConfigurationError:
            return ConfigurationError(f"{source}: {field}: {reason}", field=field)

        unknown = sorted(set(data) - _TOP)
        if unknown:
            raise fail(unknown[0], f"unknown key; expected one of {', '.join(sorted(_TOP))}")
        name, description, target, tls, credential = _header(data, fail)
        config = _service_config(data.get("service_config"), path, fail)
        methods = _methods(data.get("method"), fail)
        breaker = _breaker(data["breaker"], fail) if "breaker" in data else None
        scenarios = _scenarios(data, source, fail, path)
        objectives = _objectives("objectives", data.get("objectives", {}), fail, defaults=True)
        per_scenario = data.get("scenario_objectives", {})
        if not isinstance(per_scenario, Mapping):
            raise fail("scenario_objectives", "must be a table of tables")
        known = {s.name for s in scenarios}
        overrides = {}
        for key, table in per_scenario.items():
            if key not in known:
                raise fail(f"scenario_objectives.{key}", f"no such scenario (the spec has {', '.join(sorted(known))})")
            overrides[key] = _objectives(f"scenario_objectives.{key}", table, fail, defaults=False)
        owner = data.get("owner", "")
        if not isinstance(owner, str):
            raise fail("owner", f"must be a string, got {owner!r}")
        return cls(
            name, description, target, config, methods, scenarios, objectives, overrides,
            tls, credential, breaker, owner, path,
        )  # fmt: skip


def _header(data: Mapping[str, Any], fail: Any) -> tuple[str, str, str, bool, str | None]:
    """The spec's name, description, target, tls and credential_env, checked."""
    name = data.get("name")
    if not is_name(name):
        raise fail("name", f"must be an integration name, got {name!r}")
    description = data.get("description")
    if not isinstance(description, str) or not description.strip():
        raise fail("description", "is required: say what the integration is for")
    target = data.get("target")
    if not isinstance(target, str) or split_target(target)[1] is None:
        raise fail("target", f"must be host:port, got {target!r}")
    tls = data.get("tls", True)
    if not isinstance(tls, bool):
        raise fail("tls", f"must be true or false, got {tls!r}")
    if not tls and not is_loopback(split_target(target)[0]):
        raise fail("tls", "plaintext is only for a loopback target; a partner's gRPC goes over TLS")
    credential = data.get("credential_env")
    if credential is not None:
        try:
            MetadataCredential(credential)
        except ConfigurationError as exc:
            raise fail("credential_env", exc.message) from None
    return name, description, target, tls, credential


def _breaker(value: object, fail: Any) -> BreakerPolicy:
    if not isinstance(value, Mapping):
        raise fail("breaker", "must be a table of BreakerPolicy fields")
    try:
        check_table(BreakerPolicy, value, owner="breaker")
        return BreakerPolicy(**value)
    except ConfigurationError as exc:
        nested = exc.under("breaker")
        raise fail(nested.field or "breaker", nested.reason) from None
    except (TypeError, ValueError) as exc:
        raise fail("breaker", str(exc)) from None


def _service_config(value: object, path: Path | None, fail: Any) -> ServiceConfig:
    if value is None:
        raise fail("service_config", "is required: a JSON file beside the spec, or a [service_config] table")
    if isinstance(value, str):
        file = (path.parent if path is not None else Path.cwd()) / value
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise fail("service_config", f"cannot read {file}: {exc.strerror or exc}") from None
        value = text
    elif not isinstance(value, Mapping):
        raise fail("service_config", f"must be a file name or a table, got {type(value).__name__}")
    try:
        return ServiceConfig.parse(value if isinstance(value, str) else json.loads(json.dumps(value)))
    except ConfigurationError as exc:
        field = f"service_config.{exc.field}" if exc.field else "service_config"
        raise fail(field, exc.reason) from None


def _methods(value: object, fail: Any) -> tuple[GrpcMethod, ...]:
    if not isinstance(value, list) or not value:
        raise fail("method", 'list the methods in [[method]] tables (name = "package.Service/Method")')
    methods = []
    for i, table in enumerate(value):
        at = f"method[{i}]"
        if not isinstance(table, Mapping):
            raise fail(at, "must be a table")
        unknown = sorted(set(table) - _METHOD)
        if unknown:
            raise fail(f"{at}.{unknown[0]}", f"unknown key; expected one of {', '.join(sorted(_METHOD))}")
        name = table.get("name")
        if not isinstance(name, str) or name.count("/") != 1 or not all(name.split("/")):
            raise fail(f"{at}.name", f"must be package.Service/Method, got {name!r}")
        try:
            level = Idempotency(table.get("idempotency", "IDEMPOTENCY_UNKNOWN"))
        except ValueError:
            choices = ", ".join(i.value for i in Idempotency)
            raise fail(f"{at}.idempotency", f"must be one of {choices}, got {table.get('idempotency')!r}") from None
        request_id = table.get("request_id", False)
        if not isinstance(request_id, bool):
            raise fail(f"{at}.request_id", f"must be true or false, got {request_id!r}")
        rate = table.get("rate", 10.0)
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 10_000:
            raise fail(f"{at}.rate", f"must be calls per second in (0, 10000], got {rate!r}")
        methods.append(GrpcMethod(name.lstrip("/"), level, request_id, float(rate)))
    return tuple(methods)


def _scenarios(data: Mapping[str, Any], source: str, fail: Any, path: Path | None) -> tuple[Scenario, ...]:
    found = []
    names = data.get("scenarios", [])
    if not isinstance(names, list):
        raise fail("scenarios", "must be a list of scenario names")
    search = scenario_search(path) if path is not None else ()
    for i, name in enumerate(names):
        if not is_name(name):
            raise fail(f"scenarios[{i}]", f"{name!r} is not a scenario name")
        try:
            found.append(load_scenario(name, search=search))
        except ConfigurationError as exc:
            raise fail(f"scenarios[{i}]", exc.message) from None
    inline = data.get("scenario", [])
    if not isinstance(inline, list):
        raise fail("scenario", "must be an array of tables ([[scenario]])")
    found += [Scenario.from_mapping(t, source=source, at=f"scenario[{i}]") for i, t in enumerate(inline)]
    if not found:
        raise fail("scenarios", "list at least one scenario to exercise the integration against")
    if len({s.name for s in found}) != len(found):
        raise fail("scenarios", "a scenario is listed twice")
    return tuple(found)


def _objectives(at: str, value: object, fail: Any, *, defaults: bool) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise fail(at, "must be a table")
    chosen = {k: v[0] for k, v in OBJECTIVES.items()} if defaults else {}
    for key, target in value.items():
        if key not in OBJECTIVES:
            raise fail(f"{at}.{key}", f"unknown objective; expected one of {', '.join(OBJECTIVES)}")
        if isinstance(target, bool) or not isinstance(target, int | float) or target < 0:
            raise fail(f"{at}.{key}", f"must be a number >= 0, got {target!r}")
        if key == "success_rate" and target > 1:
            raise fail(f"{at}.{key}", f"is a ratio in [0, 1], got {target!r}")
        chosen[key] = float(target)
    return chosen


def grpc_checklist(spec: GrpcSpec) -> list[CheckItem]:
    """The gRPC checklist: TLS, credential, a deadline on every method, retries only on listed statuses,
    throttling, hedging only on idempotent methods, a breaker per service, request ids on unsafe methods."""
    config = spec.service_config
    per_method = {m.name: config.method(f"/{m.name}") for m in spec.methods}
    no_deadline = [n for n, c in per_method.items() if c.timeout is None]
    refusing = sorted(
        {f"{n}: {code.name}" for n, c in per_method.items() for code in c.retryable if code in REFUSING_CODES}
    )
    unlisted = [n for n, c in per_method.items() if c.retry is not None and not c.retryable]
    unsafe_hedges = [n for n, c in per_method.items() if c.hedging is not None and not spec.idempotency[n].safe]
    unkeyed = [m.name for m in spec.methods if not m.idempotency.safe and not m.request_id and per_method[m.name].retry]
    host = split_target(spec.target)[0]
    items = [
        CheckItem("tls", "TLS to the partner", spec.tls or is_loopback(host),
                  "TLS on" if spec.tls else f"plaintext to loopback {host}"),
        CheckItem("credential", "the credential is named, never written",
                  spec.credential_env is not None,
                  env_presence([spec.credential_env]) if spec.credential_env else "no credential_env"),
        CheckItem("deadline", "a deadline on every method", not no_deadline,
                  "every method has a timeout" if not no_deadline else "no timeout: " + ", ".join(no_deadline)),
        CheckItem("retry-statuses", "retries only on listed, retryable statuses", not refusing and not unlisted,
                  "; ".join(refusing + unlisted) or "retryableStatusCodes list only transient codes"),
        CheckItem("throttling", "retry throttling set (retryThrottling)", config.throttling is not None,
                  f"maxTokens {config.throttling.max_tokens:g}, tokenRatio {config.throttling.token_ratio:g}"
                  if config.throttling else "no retryThrottling: retries are unbounded across calls"),
        CheckItem("hedging", "hedging only on idempotent methods", not unsafe_hedges,
                  "hedged but not idempotent: " + ", ".join(unsafe_hedges) if unsafe_hedges else "ok"),
        CheckItem("breaker", "a circuit breaker per service", spec.breaker is not None,
                  "one breaker per service: " + ", ".join(sorted({m.service for m in spec.methods}))
                  if spec.breaker else "no [breaker]"),
        CheckItem("request-id", "retried non-idempotent methods carry a request id", not unkeyed,
                  "retried without a request id: " + ", ".join(unkeyed) if unkeyed else "ok"),
    ]  # fmt: skip
    return items


def grpc_design_document(spec: GrpcSpec) -> str:
    """The design document of a gRPC spec, in Markdown."""
    config = spec.service_config
    lines = [
        f"# {spec.name}: design", "", spec.description, "",
        f"- target `{spec.target}` over {'TLS' if spec.tls else 'plaintext (loopback)'}",
        f"- credential from `{spec.credential_env}` as `authorization` metadata" if spec.credential_env else
        "- no credential",
        "- retry budget: "
        + (f"gRFC A6 throttling, {config.throttling.max_tokens:g} tokens, {config.throttling.token_ratio:g} back per "
           "success, shared by every method of the channel" if config.throttling else "none"),
        "- circuit breaker: " + ("one per service (the kit's addition to A6)" if spec.breaker else "none"),
        "", "| method | idempotency | deadline | policy | retried on |", "|---|---|---|---|---|",
    ]  # fmt: skip
    for m in spec.methods:
        c = config.method(f"/{m.name}")
        policy = (
            f"hedge x{c.hedging.max_attempts} every {c.hedging.delay:g} s" if c.hedging
            else f"retry x{c.retry.max_attempts}, backoff {c.retry.base_delay:g}-{c.retry.max_delay:g} s" if c.retry
            else "one attempt"
        )  # fmt: skip
        codes = ", ".join(sorted(code.name for code in (c.hedging.non_fatal if c.hedging else c.retryable))) or "-"
        deadline = f"{c.timeout:g} s" if c.timeout else "none"
        key = " + request id" if m.request_id else ""
        lines.append(f"| `{m.name}` | {m.idempotency.value}{key} | {deadline} | {policy} | {codes} |")
    lines += [
        "", "Non-idempotent methods retry only what never reached the server, unless their calls carry a request id.",
        "Each attempt is sent with what is left of the deadline as its gRPC timeout; server pushback is honoured.",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"
