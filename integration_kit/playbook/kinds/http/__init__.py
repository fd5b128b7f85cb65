"""The HTTP kind: a partner's API called through the resilient HTTP client (spec, design, exercise, judge, charts)."""

__all__: list[str] = []
