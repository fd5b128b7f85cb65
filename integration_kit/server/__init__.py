"""Server-side pieces: what runs when a partner calls *us*.

``idempotency`` holds the idempotency guard, the ASGI ``IdempotencyMiddleware`` and ``@idempotent``.
"""

__all__: list[str] = []
