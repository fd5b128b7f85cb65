"""A Grafana dashboard (JSON model) for one integration's metrics, with its objectives drawn as thresholds.

:func:`dashboard` returns the dashboard as plain data (``json.dumps`` it, or import it in Grafana); the queries
read the same Prometheus names as the alert rules (:mod:`integration_kit.telemetry.alerts`). A ``datasource``
variable picks the Prometheus data source; rates use Grafana's ``$__rate_interval``.
"""

from __future__ import annotations

from typing import Any

from integration_kit.telemetry import conventions as c
from integration_kit.telemetry.alerts import AlertThresholds

__all__ = ["dashboard", "panel_queries"]

_CALLS = c.CALL_DURATION.prometheus
_ATTEMPTS = c.HTTP_DURATION.prometheus
_RATE = "$__rate_interval"


def panel_queries(integration: str) -> dict[str, list[tuple[str, str]]]:
    """Each panel's title and its ``(legend, PromQL)`` queries, for ``integration``."""
    sel = c.integration_selector(integration)
    calls = f"sum(rate({_CALLS}_count{{{sel}}}[{_RATE}]))"
    ok = f'{c.prometheus_label(c.CALL_OUTCOME)}="success"'
    label = c.prometheus_label
    return {
        "Success rate": [
            ("success rate", f"(sum(rate({_CALLS}_count{{{sel},{ok}}}[{_RATE}])) or vector(0)) / {calls}"),
        ],
        "Call latency": [
            (f"p{q}", f"histogram_quantile(0.{q}, sum by (le) (rate({_CALLS}_bucket{{{sel}}}[{_RATE}])))")
            for q in ("50", "95", "99")
        ],
        "Attempts per call": [("amplification", f"sum(rate({_ATTEMPTS}_count{{{sel}}}[{_RATE}])) / {calls}")],
        "Attempts by answer": [
            (
                "{{%s}}{{%s}}" % (label(c.STATUS_CODE), label(c.ERROR_TYPE)),  # noqa: UP031 - Grafana's braces
                f"sum by ({label(c.STATUS_CODE)}, {label(c.ERROR_TYPE)}) (rate({_ATTEMPTS}_count{{{sel}}}[{_RATE}]))",
            )
        ],
        "Retries": [
            (
                "scheduled {{%s}}" % label(c.RETRY_REASON),  # noqa: UP031
                f"sum by ({label(c.RETRY_REASON)}) (rate({c.RETRIES_SCHEDULED.prometheus}{{{sel}}}[{_RATE}]))",
            ),
            (
                "refused {{%s}}" % label(c.REFUSAL),  # noqa: UP031
                f"sum by ({label(c.REFUSAL)}) (rate({c.RETRIES_REFUSED.prometheus}{{{sel}}}[{_RATE}]))",
            ),
        ],
        "Rejected calls": [
            (
                "{{%s}}" % label(c.REJECTION),  # noqa: UP031
                f"sum by ({label(c.REJECTION)}) (rate({c.CALLS_REJECTED.prometheus}{{{sel}}}[{_RATE}]))",
            )
        ],
        "Breaker state": [
            (
                "{{%s}}" % label(c.BREAKER_STATE),  # noqa: UP031
                f"max by ({label(c.BREAKER_STATE)}) ({c.BREAKER.prometheus}{{{sel}}})",
            )
        ],
        "Retry budget tokens": [("tokens", f"min({c.BUDGET.prometheus}{{{sel}}})")],
    }


def dashboard(integration: str, thresholds: AlertThresholds | None = None) -> dict[str, Any]:
    """The Grafana dashboard JSON model for ``integration``; objectives from ``thresholds`` are drawn as red
    threshold lines on the success rate, latency and attempts-per-call panels."""
    t = thresholds or AlertThresholds()
    limits: dict[str, tuple[float, str, str]] = {
        "Success rate": (t.success_rate, "percentunit", "below"),
        "Attempts per call": (t.amplification, "none", "above"),
    }
    if t.p99_latency is not None:
        limits["Call latency"] = (t.p99_latency, "s", "above")
    units = {"Breaker state": "none", "Retry budget tokens": "none", "Call latency": "s"}
    panels = []
    for n, (title, queries) in enumerate(panel_queries(integration).items()):
        limit = limits.get(title)
        unit = limit[1] if limit else units.get(title, "reqps")
        panel: dict[str, Any] = {
            "id": n + 1,
            "type": "timeseries",
            "title": title,
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "gridPos": {"h": 8, "w": 12, "x": 12 * (n % 2), "y": 8 * (n // 2)},
            "targets": [
                {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend}
                for i, (legend, expr) in enumerate(queries)
            ],
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        }
        if limit is not None:
            value, _, side = limit
            steps = (
                [{"color": "red", "value": None}, {"color": "green", "value": value}]
                if side == "below"
                else [{"color": "green", "value": None}, {"color": "red", "value": value}]
            )
            panel["fieldConfig"]["defaults"]["thresholds"] = {"mode": "absolute", "steps": steps}
            panel["fieldConfig"]["defaults"]["custom"] = {"thresholdsStyle": {"mode": "line"}}
        panels.append(panel)
    return {
        "title": f"integration_kit: {integration}",
        "uid": f"integration-kit-{integration}"[:40],
        "tags": ["integration_kit"],
        "timezone": "utc",
        "schemaVersion": 39,
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [{"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"}]
        },
        "panels": panels,
    }
