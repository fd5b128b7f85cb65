"""Server-side pieces: what runs when a partner calls *us*.

``idempotency`` holds the records and the guard; ``middleware`` the ASGI ``IdempotencyMiddleware``; ``keyed``
``@idempotent`` for plain functions.
"""

__all__: list[str] = []
