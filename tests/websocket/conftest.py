"""Fixtures for the WebSocket tests: the asyncio backend (the ``websockets`` asyncio client runs on asyncio only).
Helpers shared by the tests are in ``ws_kit.py``."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
