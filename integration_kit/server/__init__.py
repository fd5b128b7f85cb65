"""Server-side pieces: what runs when a partner calls *us*.

``idempotency`` holds the records and the guard; ``middleware`` the ASGI ``IdempotencyMiddleware``; ``keyed``
``@idempotent`` for plain functions.

Receiving webhooks: ``signatures`` (Standard Webhooks, Stripe, GitHub and generic HMAC, sign and verify),
``webhook_receiver`` (the ASGI ``WebhookReceiver``: verify, deduplicate, store durably, then acknowledge),
``inbox`` and ``redis_inbox`` (the durable inbox, SQLite or Redis), ``webhook_processor`` (the handler behind the
inbox under the engine's retry, dead letters, replay, the ordering guard).
"""

__all__: list[str] = []
