"""Prometheus alerting rules for one integration, derived from its objectives.

:func:`alert_rules` returns the rule file as plain data and :func:`render_rules` as YAML (``promtool check rules``
accepts it). The rules read the metrics of either hook (:mod:`~integration_kit.telemetry.otel` through the
OpenTelemetry Prometheus exporter, or :mod:`~integration_kit.telemetry.prometheus`), by their Prometheus names:

==========================================  ======================================================================
``IntegrationSuccessRateBelowObjective``    successful calls / calls over ``window`` < ``success_rate``
``IntegrationLatencyP99AboveObjective``     p99 of the call duration over ``window`` > ``p99_latency`` seconds
``IntegrationAmplificationAboveObjective``  attempts / calls over ``window`` > ``amplification``
``IntegrationBreakerOpen``                  the breaker not closed (open, half-open or forced open) for
                                            ``breaker_open_for`` seconds
``IntegrationRetryBudgetExhausted``         the retry budget refused a retry within ``window``
==========================================  ======================================================================

Each rule but the breaker's waits ``recovery_time`` seconds (its ``for``) before firing: a dip shorter than the
time the integration is allowed to take to recover is expected, not an incident. This module knows nothing of
the playbook: the CLI hands it a spec's objectives as :class:`AlertThresholds` (see :func:`thresholds_from`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, fields
from typing import Any

from integration_kit.telemetry import conventions as c

__all__ = ["AlertThresholds", "alert_rules", "render_rules", "thresholds_from", "to_yaml"]

_CALLS = c.CALL_DURATION.prometheus + "_count"
_BUCKETS = c.CALL_DURATION.prometheus + "_bucket"
_ATTEMPTS = c.HTTP_DURATION.prometheus + "_count"
_INTEGRATION = c.prometheus_label(c.INTEGRATION)
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True)
class AlertThresholds:
    """The bounds the rules alert on; the defaults are the playbook's default objectives.

    ``success_rate`` (0..1, default 0.99), ``p99_latency`` (seconds; ``None``: no latency rule; the CLI passes the
    spec's objective, else its deadline), ``amplification`` (attempts per logical call, default 1.5),
    ``recovery_time`` (seconds a breach may last before alerting, default 30), ``breaker_open_for`` (seconds,
    default 300), ``window`` (the rate window, a Prometheus duration, default ``"5m"``). Raises ``ValueError`` on
    a value out of range.
    """

    success_rate: float = 0.99
    p99_latency: float | None = None
    amplification: float = 1.5
    recovery_time: float = 30.0
    breaker_open_for: float = 300.0
    window: str = "5m"

    def __post_init__(self) -> None:
        if not 0.0 < self.success_rate <= 1.0:
            raise ValueError(f"AlertThresholds.success_rate must be in (0, 1], got {self.success_rate!r}")
        if self.p99_latency is not None and not (math.isfinite(self.p99_latency) and self.p99_latency > 0):
            raise ValueError(f"AlertThresholds.p99_latency must be > 0 seconds or None, got {self.p99_latency!r}")
        if not (math.isfinite(self.amplification) and self.amplification >= 1.0):
            raise ValueError(f"AlertThresholds.amplification must be >= 1, got {self.amplification!r}")
        for name in ("recovery_time", "breaker_open_for"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"AlertThresholds.{name} must be >= 0 seconds, got {value!r}")
        if not self.window or not self.window[0].isdigit():
            raise ValueError(f"AlertThresholds.window must be a Prometheus duration such as '5m', got {self.window!r}")


def thresholds_from(objectives: Any = None, *, deadline: float | None = None) -> AlertThresholds:
    """Thresholds from any object with some of the attributes ``success_rate``, ``p99_latency``,
    ``amplification`` and ``recovery_time`` (a spec's objectives; ``None`` values and missing ones keep the
    defaults); ``p99_latency`` falls back to ``deadline``."""
    values: dict[str, Any] = {}
    names = {f.name for f in fields(AlertThresholds)}
    for name in ("success_rate", "p99_latency", "amplification", "recovery_time"):
        value = getattr(objectives, name, None) if objectives is not None else None
        if value is not None and name in names:
            values[name] = float(value)
    if values.get("p99_latency") is None and deadline is not None:
        values["p99_latency"] = float(deadline)
    return AlertThresholds(**values)


def alert_rules(integration: str, thresholds: AlertThresholds | None = None) -> dict[str, Any]:
    """The Prometheus rule file (as data) for ``integration``: one group, one rule per objective."""
    t = thresholds or AlertThresholds()
    sel = c.integration_selector(integration)
    w = t.window
    calls = f"sum(rate({_CALLS}{{{sel}}}[{w}]))"
    ok = f'{c.prometheus_label(c.CALL_OUTCOME)}="success"'
    succeeded = f"(sum(rate({_CALLS}{{{sel},{ok}}}[{w}])) or vector(0))"
    pending = _duration(t.recovery_time)
    rules: list[dict[str, Any]] = [
        _rule(
            "IntegrationSuccessRateBelowObjective",
            f"{succeeded} / {calls} < {_num(t.success_rate)}",
            pending,
            integration,
            "critical",
            f"{integration}: success rate below {t.success_rate:.4g}",
            f"Fewer than {t.success_rate:.2%} of the logical calls to {integration} succeeded over {w} "
            f"(the objective), for longer than the recovery time ({pending}).",
        )
    ]
    if t.p99_latency is not None:
        rules.append(
            _rule(
                "IntegrationLatencyP99AboveObjective",
                f"histogram_quantile(0.99, sum by (le) (rate({_BUCKETS}{{{sel}}}[{w}]))) > {_num(t.p99_latency)}",
                pending,
                integration,
                "warning",
                f"{integration}: p99 latency above {t.p99_latency:g}s",
                f"The 99th percentile of logical call durations to {integration} over {w} is above "
                f"{t.p99_latency:g} seconds.",
            )
        )
    rules += [
        _rule(
            "IntegrationAmplificationAboveObjective",
            f"sum(rate({_ATTEMPTS}{{{sel}}}[{w}])) / {calls} > {_num(t.amplification)}",
            pending,
            integration,
            "warning",
            f"{integration}: more than {t.amplification:g} attempts per call",
            f"Retries multiply the load on {integration}: attempts per logical call over {w} passed "
            f"{t.amplification:g}.",
        ),
        _rule(
            "IntegrationBreakerOpen",
            f'max({c.BREAKER.prometheus}{{{sel},{c.prometheus_label(c.BREAKER_STATE)}=~"open|half_open|forced_open"}})'
            " == 1",
            _duration(t.breaker_open_for),
            integration,
            "critical",
            f"{integration}: circuit breaker open",
            f"The circuit breaker of {integration} has not been closed for {_duration(t.breaker_open_for)}: "
            "calls are being rejected.",
        ),
        _rule(
            "IntegrationRetryBudgetExhausted",
            f'sum(increase({c.RETRIES_REFUSED.prometheus}{{{sel},{c.prometheus_label(c.REFUSAL)}="budget"}}[{w}])) > 0',
            pending,
            integration,
            "warning",
            f"{integration}: retry budget exhausted",
            f"The retry budget of {integration} refused retries within {w}: failures are no longer retried.",
        ),
    ]
    return {"groups": [{"name": f"integration_kit.{integration}", "rules": rules}]}


def render_rules(integration: str, thresholds: AlertThresholds | None = None) -> str:
    """:func:`alert_rules` as YAML text, with a header comment."""
    header = f"# Prometheus alerting rules for the integration {integration!r}, generated by integration_kit.\n"
    return header + to_yaml(alert_rules(integration, thresholds))


def to_yaml(data: Any, indent: int = 0) -> str:
    """Plain data (dicts, lists, strings, numbers, booleans) as block-style YAML; strings are double-quoted
    (JSON escapes are valid YAML), so no value is ever misread."""
    pad = "  " * indent
    if isinstance(data, dict):
        if not data:
            return pad + "{}\n"
        out = []
        for key, value in data.items():
            if isinstance(value, dict | list) and value:
                out.append(f"{pad}{_key(str(key))}:\n{to_yaml(value, indent + 1)}")
            else:
                out.append(f"{pad}{_key(str(key))}: {_scalar(value)}\n")
        return "".join(out)
    if isinstance(data, list):
        if not data:
            return pad + "[]\n"
        out = []
        for item in data:
            text = to_yaml(item, indent + 1) if isinstance(item, dict | list) and item else f"{pad}  {_scalar(item)}\n"
            out.append(f"{pad}- {text.lstrip()}")
        return "".join(out)
    return pad + _scalar(data) + "\n"


def _key(key: str) -> str:
    return key if _PLAIN_KEY.fullmatch(key) else json.dumps(key)


def _scalar(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    if isinstance(value, bool) or value is None or isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(str(value))


def _rule(
    name: str, expr: str, pending: str, integration: str, severity: str, summary: str, description: str
) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": pending,
        "labels": {"severity": severity, _INTEGRATION: integration},
        "annotations": {"summary": summary, "description": description},
    }


def _duration(seconds: float) -> str:
    """A Prometheus duration: ``"5m"``, ``"30s"``, or milliseconds when needed."""
    if float(seconds).is_integer():
        whole = int(seconds)
        for unit, size in (("h", 3600), ("m", 60)):
            if whole and whole % size == 0:
                return f"{whole // size}{unit}"
        return f"{whole}s"
    return f"{round(seconds * 1000)}ms"


def _num(value: float) -> str:
    return repr(float(value))
