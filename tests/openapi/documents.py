"""Small OpenAPI documents for the tests, written to files: the shipped payments one, and variants of it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml

__all__ = ["PAYMENTS", "payments", "write"]

#: The bundled payments partner's document.
PAYMENTS = Path(__file__).resolve().parents[2] / "data" / "openapi" / "payments.yaml"


def payments() -> dict[str, Any]:
    """A fresh copy of the payments document's data, to modify."""
    return copy.deepcopy(yaml.safe_load(PAYMENTS.read_text(encoding="utf-8")))


def write(folder: Path, data: dict[str, Any] | str, name: str = "doc.json") -> Path:
    """``data`` written to ``folder/name`` (as JSON, or the text as given); return the path."""
    path = folder / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path
