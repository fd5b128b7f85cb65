"""The HTTP drivers of the engine: ``ResilientClient`` and ``AsyncResilientClient`` over httpx.

``client`` sends and sleeps; ``exchange`` turns one httpx attempt into an ``Outcome`` at one boundary;
``config`` holds ``ClientConfig`` (origin pinning, TLS, size limits); ``auth`` reads credentials from the
environment into masked secrets; ``redact`` keeps secrets out of URLs, headers, events, logs and errors.
"""

__all__: list[str] = []
