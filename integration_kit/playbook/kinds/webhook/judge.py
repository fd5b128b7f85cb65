"""Judging a webhook integration's scenario: its counts against the spec's objectives, as verdict checks.

Receiving (``webhook-in``): no event lost, no forged delivery accepted, no event processed twice, and the processing
lag's p99 within ``objectives.max_lag``. Sending (``webhook-out``): no event lost, one payload per event id, the
delivery log matching what went on the wire, and delivery within ``objectives.max_lag`` of the endpoint's recovery
(p99). The simulator and the live run both judge with :func:`checks_of`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from integration_kit.playbook.kinds.webhook.spec import WebhookSpec
from integration_kit.playbook.verdict.verdict import Check, Unit

__all__ = ["checks_of"]


def checks_of(spec: WebhookSpec, scenario: str, counts: Mapping[str, float]) -> list[Check]:
    """The checks of one scenario run of ``spec`` from its ``counts`` and figures (``WebhookRun.counts``)."""
    o = spec.objectives

    def check(objective: str, measured: float, target: float, unit: Unit = "count") -> Check:
        return Check(scenario, objective, "whole run", float(target), float(measured), unit=unit)

    lost = check("events_lost", counts.get("lost", 0.0), o.max_lost)
    if spec.kind == "webhook-in":
        return [
            lost,
            check("forged_accepted", counts.get("forged_accepted", 0.0), o.max_forged_accepted),
            check("processed_twice", counts.get("processed_twice", 0.0), 0.0),
            check("lag_p99", counts.get("lag_p99", math.nan), o.max_lag, "s"),
        ]
    return [
        lost,
        check("payloads_per_event_id", counts.get("payloads_per_id_max", 0.0), 1.0),
        check("delivery_log_mismatches", 0.0 if counts.get("wire_matches_log", 0.0) else 1.0, 0.0),
        check(
            "delivered_after_recovery_p99", counts.get("time_to_deliver_after_recovery_p99", math.nan), o.max_lag, "s"
        ),
    ]
