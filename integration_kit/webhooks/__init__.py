"""Webhook sending: signed deliveries on a durable retry schedule, per-endpoint isolation, an SSRF guard.

The receiving side (verification, deduplication, the durable inbox) lives in :mod:`integration_kit.server`.
"""

__all__: list[str] = []
