"""Webhook sending: signed deliveries on a durable retry schedule, per-endpoint isolation, an SSRF guard.

``sender`` (``WebhookSender``, ``Endpoint``, ``GuardedTransport``), ``schedule`` (``RetrySchedule``, Svix's by
default), ``delivery_store`` (messages, deliveries and the attempt log in SQLite), ``ssrf`` (resolve once, check,
connect to the checked address). Signing comes from :mod:`integration_kit.server.signatures`.

The receiving side (verification, deduplication, the durable inbox) lives in :mod:`integration_kit.server`.
"""

__all__: list[str] = []
