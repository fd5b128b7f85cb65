"""The WebSocket kind (``kind = "websocket"``): a partner's live feed, its reconnects, resumes and herds."""

__all__: list[str] = []
